package usersjob_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/fakeazure"
	"graphuserstimer/internal/graph"
	"graphuserstimer/internal/joblog"
	"graphuserstimer/internal/usersjob"
)

// newClient is a Graph client on a fake tenant over TLS, through the real
// managed identity credential and a fake IMDS.
func newClient(t *testing.T, users int) *graph.Client {
	t.Helper()
	for _, k := range []string{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"} {
		t.Setenv(k, "")
	}
	clientID, token := fakeazure.NewClientID(), "tok-"+fakeazure.NewClientID()
	gs := httptest.NewTLSServer(fakeazure.NewGraph(fakeazure.GraphOptions{Users: users, Token: token}))
	t.Cleanup(gs.Close)
	is := httptest.NewServer(fakeazure.NewIdentity(fakeazure.IdentityOptions{ClientID: clientID, Token: token}))
	t.Cleanup(is.Close)
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ID:            azidentity.ClientID(clientID),
		ClientOptions: azcore.ClientOptions{Transport: fakeazure.IMDSTransport(is.URL)},
	})
	require.NoError(t, err)
	u, err := url.Parse(gs.URL)
	require.NoError(t, err)
	c, err := graph.NewClient(u, cred, &graph.ClientOptions{Transport: gs.Client()})
	require.NoError(t, err)
	return c
}

func TestRunWithoutUserLinesLogsTheSummaryAlone(t *testing.T) {
	var stdout, stderr bytes.Buffer
	job := usersjob.New(newClient(t, 450), joblog.New(&stdout, &stderr, slog.LevelInfo), usersjob.Options{
		Query: graph.Query{Select: []string{"id"}, Top: 100},
	})
	logs, err := job.Run(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(stdout.String(), "\n"), "one line: %s", stdout.String())
	assert.Contains(t, stdout.String(), `"msg":"users listed","users":450,"pages":5`)
	assert.NotContains(t, stdout.String(), `"msg":"user"`)
	assert.Empty(t, stderr.String())
	require.Len(t, logs, 1)
	assert.Contains(t, logs[0], "Listed 450 users on 5 pages")
}

func TestRunLogsProgressEveryNPages(t *testing.T) {
	var stdout bytes.Buffer
	job := usersjob.New(newClient(t, 95), joblog.New(&stdout, &bytes.Buffer{}, slog.LevelInfo), usersjob.Options{
		Query: graph.Query{Select: []string{"id"}, Top: 10}, ProgressEvery: 3,
	})
	_, err := job.Run(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 3, strings.Count(stdout.String(), `"msg":"progress"`), "after pages 3, 6 and 9 of 10")
	assert.Contains(t, stdout.String(), `"msg":"progress","users":90,"pages":9`)
}

// brokenWriter fails every write, as a closed stdout would.
type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestRunFailsWhenUserLinesCannotBeWritten(t *testing.T) {
	var stderr bytes.Buffer
	job := usersjob.New(newClient(t, 2000), joblog.New(brokenWriter{}, &stderr, slog.LevelInfo), usersjob.Options{
		Query: graph.Query{Select: []string{"id", "displayName"}, Top: 999}, LogEach: true,
	})
	_, err := job.Run(context.Background())
	require.Error(t, err, "a listing whose lines are lost is not a success")
	assert.Contains(t, err.Error(), "broken pipe")
}
