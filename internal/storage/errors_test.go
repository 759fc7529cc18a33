package storage

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/azurite"
)

// azureError is a Blob Storage error as Azure sends it: XML after a UTF-8
// byte order mark, which Content-Length counts, and the code in
// x-ms-error-code too unless withoutHeader.
type azureError struct {
	status        int
	code, message string
	withoutHeader bool
}

func (e azureError) write(w http.ResponseWriter) {
	body := "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>" + e.code + "</Code><Message>" + e.message +
		"\nRequestId:5f1c4b9e-e01e-0051-2d6c-3c0a5e000000\nTime:2025-06-02T08:15:30.1234567Z</Message></Error>"
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Server", "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0")
	h.Set("x-ms-request-id", "5f1c4b9e-e01e-0051-2d6c-3c0a5e000000")
	h.Set("x-ms-version", "2025-11-05")
	if !e.withoutHeader {
		h.Set("x-ms-error-code", e.code)
	}
	w.WriteHeader(e.status)
	_, _ = w.Write([]byte(body))
}

// faultProxy stands in front of Azurite and answers the requests fault
// picks with an Azure error instead, as Azurite never sends one: a BOM
// before the XML.
type faultProxy struct {
	fault atomic.Pointer[func(*http.Request) *azureError]
	URL   string
}

func newFaultProxy(t *testing.T, s *azurite.Server) *faultProxy {
	t.Helper()
	target, err := url.Parse(s.BlobEndpoint())
	require.NoError(t, err)
	target.Path = ""
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &faultProxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := p.fault.Load(); f != nil {
			if e := (*f)(r); e != nil {
				e.write(w)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL + "/" + azurite.AccountName
	return p
}

func (p *faultProxy) on(f func(*http.Request) *azureError) { p.fault.Store(&f) }

const authFailed = "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature."

func TestStorageErrorsAreReadAsAzureSendsThem(t *testing.T) {
	s := azurite.Start(t)
	p := newFaultProxy(t, s)
	conn, err := ParseConnection("AzureWebJobsStorage", env(map[string]string{
		"AzureWebJobsStorage": "AccountName=" + azurite.AccountName + ";AccountKey=" + azurite.AccountKey + ";BlobEndpoint=" + p.URL,
	}), "")
	require.NoError(t, err)
	c, err := Open(conn, "errors", nil)
	require.NoError(t, err)
	ctx := testContext(t)
	require.NoError(t, c.Create(ctx))
	_, err = c.Put(ctx, "state/F.json", []byte(`{}`), "")
	require.NoError(t, err)

	for _, withoutHeader := range []bool{false, true} {
		name := "with x-ms-error-code"
		if withoutHeader {
			name = "with the code in the body alone"
		}
		t.Run("403 AuthenticationFailed "+name, func(t *testing.T) {
			p.on(func(r *http.Request) *azureError {
				if strings.HasSuffix(r.URL.Path, "/state/F.json") {
					return &azureError{status: http.StatusForbidden, code: "AuthenticationFailed", message: authFailed, withoutHeader: withoutHeader}
				}
				return nil
			})
			defer p.on(nil)
			_, _, err := c.Get(ctx, "state/F.json")
			var se *Error
			require.ErrorAs(t, err, &se)
			assert.Equal(t, "AuthenticationFailed", se.Code)
			assert.ErrorIs(t, err, ErrAuthentication)
			assert.NotErrorIs(t, err, ErrForbidden, "a refused key is not a missing role")
			assert.Equal(t, SharedKey, se.Auth, "the refused request was signed with the account key")
			assert.Equal(t, azurite.AccountName, se.Account)
			assert.Equal(t, "5f1c4b9e-e01e-0051-2d6c-3c0a5e000000", se.RequestID)
			assert.Contains(t, err.Error(), "get errors/state/F.json: storage answered 403 Forbidden (AuthenticationFailed)")
			assert.NotContains(t, err.Error(), azurite.AccountKey)
		})
		t.Run("412 LeaseIdMissing "+name, func(t *testing.T) {
			p.on(func(r *http.Request) *azureError {
				if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/state/F.json") {
					return &azureError{status: http.StatusPreconditionFailed, code: "LeaseIdMissing",
						message: "There is currently a lease on the blob and no lease ID was specified in the request.", withoutHeader: withoutHeader}
				}
				return nil
			})
			defer p.on(nil)
			_, etag, err := c.Get(ctx, "state/F.json")
			require.NoError(t, err)
			_, err = c.Put(ctx, "state/F.json", []byte(`{"v":2}`), etag)
			var se *Error
			require.ErrorAs(t, err, &se)
			assert.Equal(t, "LeaseIdMissing", se.Code)
			assert.ErrorIs(t, err, ErrLeased)
			assert.NotErrorIs(t, err, ErrConflict, "nobody wrote the blob: it is held")
		})
	}
}

func TestAWriteToALeasedBlobIsErrLeased(t *testing.T) {
	s := azurite.Start(t)
	c := openContainer(t, s)
	ctx := testContext(t)
	etag, err := c.Put(ctx, "state/F.json", []byte(`{}`), "")
	require.NoError(t, err)

	lc, err := lease.NewBlobClient(c.client.NewBlobClient("state/F.json"), nil)
	require.NoError(t, err)
	_, err = lc.AcquireLease(ctx, -1, nil)
	require.NoError(t, err)

	_, err = c.Put(ctx, "state/F.json", []byte(`{"v":2}`), etag)
	var se *Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusPreconditionFailed, se.StatusCode)
	assert.Equal(t, "LeaseIdMissing", se.Code)
	assert.ErrorIs(t, err, ErrLeased)
	assert.NotErrorIs(t, err, ErrConflict)

	_, err = lc.BreakLease(ctx, &lease.BlobBreakOptions{BreakPeriod: to(int32(0))})
	require.NoError(t, err)
	_, err = c.Put(ctx, "state/F.json", []byte(`{"v":2}`), etag)
	assert.NoError(t, err, "a broken lease lets the write through")
}
