package usersjob_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/azurite"
	"graphuserstimer/internal/graph"
	"graphuserstimer/internal/joblog"
	"graphuserstimer/internal/storage"
	"graphuserstimer/internal/usersjob"
)

// deltaJob is a delta mode job of function F keeping its state in
// container name of the account behind endpoint, read as the connection
// AzureWebJobsStorage.
func deltaJob(t *testing.T, endpoint, name string) *usersjob.Job {
	t.Helper()
	conn, err := storage.ParseConnection("AzureWebJobsStorage", func(k string) string {
		if k == "AzureWebJobsStorage" {
			return "AccountName=" + azurite.AccountName + ";AccountKey=" + azurite.AccountKey + ";BlobEndpoint=" + endpoint
		}
		return ""
	}, "")
	require.NoError(t, err)
	store, err := storage.Open(conn, name, nil)
	require.NoError(t, err)
	return usersjob.New(newClient(t, 150), joblog.New(&bytes.Buffer{}, &bytes.Buffer{}, slog.LevelInfo), usersjob.Options{
		Query:          graph.Query{Select: []string{"id"}, PageSize: 100},
		Mode:           usersjob.Delta,
		Store:          store,
		StorageSetting: conn.Setting,
		Function:       "F",
		HostID:         "app",
	})
}

func containerClient(t *testing.T, s *azurite.Server, name string) *container.Client {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(azurite.AccountName, azurite.AccountKey)
	require.NoError(t, err)
	c, err := container.NewClientWithSharedKeyCredential(s.BlobEndpoint()+"/"+name, cred, nil)
	require.NoError(t, err)
	return c
}

func TestALeaseOnTheStateBlobSaysHowToBreakIt(t *testing.T) {
	s := azurite.Start(t)
	ctx := context.Background()
	cc := containerClient(t, s, "leased")
	_, err := cc.Create(ctx, nil)
	require.NoError(t, err)
	// A state whose link is too old to use: the run lists every user and
	// then writes the state over it.
	old := `{"version":1,"link":"https://graph.microsoft.com/v1.0/users/delta?$deltatoken=old","linkSince":"2020-01-01T00:00:00Z"}`
	_, err = cc.NewBlockBlobClient("state/app/F.json").UploadBuffer(ctx, []byte(old), nil)
	require.NoError(t, err)
	lc, err := lease.NewBlobClient(cc.NewBlobClient("state/app/F.json"), nil)
	require.NoError(t, err)
	_, err = lc.AcquireLease(ctx, -1, nil)
	require.NoError(t, err)

	_, err = deltaJob(t, s.BlobEndpoint(), "leased").Run(ctx)
	require.Error(t, err)
	msg := err.Error()
	assert.ErrorIs(t, err, storage.ErrLeased)
	assert.Contains(t, msg, "leased/state/app/F.json")
	assert.Contains(t, msg, "AzureWebJobsStorage (GRAPH_USERS_STORAGE names it)")
	assert.Contains(t, msg, "a lease is held on the blob leased/state/app/F.json")
	assert.Contains(t, msg, "az storage blob lease break --account-name devstoreaccount1 --container-name leased --blob-name state/app/F.json")
	assert.NotContains(t, msg, "someone else wrote it", "nobody wrote it: it is held")

	_, err = lc.BreakLease(ctx, &lease.BlobBreakOptions{BreakPeriod: ptr(int32(0))})
	require.NoError(t, err)
	_, err = deltaJob(t, s.BlobEndpoint(), "leased").Run(ctx)
	assert.NoError(t, err, "with the lease broken, as the error says, the next run saves its state")
}

func ptr[T any](v T) *T { return &v }

// refusingProxy stands in front of Azurite and answers every request for
// a blob under state/ as Azure answers a refused account key: 403
// AuthenticationFailed, XML after a byte order mark, with the code in
// x-ms-error-code unless withoutHeader.
func refusingProxy(t *testing.T, s *azurite.Server, withoutHeader bool) string {
	t.Helper()
	target, err := url.Parse(s.BlobEndpoint())
	require.NoError(t, err)
	target.Path = ""
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/state/") {
			rp.ServeHTTP(w, r)
			return
		}
		body := "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code>" +
			"<Message>Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.\n" +
			"RequestId:5f1c4b9e-e01e-0051-2d6c-3c0a5e000000\nTime:" + time.Now().UTC().Format("2006-01-02T15:04:05.0000000Z") + "</Message></Error>"
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Header().Set("x-ms-request-id", "5f1c4b9e-e01e-0051-2d6c-3c0a5e000000")
		if !withoutHeader {
			w.Header().Set("x-ms-error-code", "AuthenticationFailed")
		}
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/" + azurite.AccountName
}

func TestARefusedAccountKeySaysWhichSettingToFix(t *testing.T) {
	s := azurite.Start(t)
	for _, withoutHeader := range []bool{false, true} {
		t.Run("x-ms-error-code left out: "+strconv.FormatBool(withoutHeader), func(t *testing.T) {
			name := "refused-" + strconv.FormatBool(withoutHeader)
			_, err := deltaJob(t, refusingProxy(t, s, withoutHeader), name).Run(context.Background())
			require.Error(t, err)
			msg := err.Error()
			assert.ErrorIs(t, err, storage.ErrAuthentication)
			assert.Contains(t, msg, name+"/state/app/F.json")
			assert.Contains(t, msg, "(AuthenticationFailed)")
			assert.Contains(t, msg, "storage refused the account key of AzureWebJobsStorage (GRAPH_USERS_STORAGE names it)")
			assert.NotContains(t, msg, "Storage Blob Data Contributor", "no role is missing")
			assert.NotContains(t, msg, azurite.AccountKey)
		})
	}
}
