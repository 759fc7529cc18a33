package usersjob_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

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
	tn := fakeazure.NewTenant(t, fakeazure.TenantOptions{Graph: fakeazure.GraphOptions{Users: users}})
	c, err := graph.NewClient(tn.URL, tn.Credential(t), &graph.ClientOptions{Transport: tn.Transport()})
	require.NoError(t, err)
	return c
}

func TestRunWithoutUserLinesLogsTheSummaryAlone(t *testing.T) {
	var stdout, stderr bytes.Buffer
	job := usersjob.New(newClient(t, 450), joblog.New(&stdout, &stderr, slog.LevelInfo), usersjob.Options{
		Query: graph.Query{Select: []string{"id"}, PageSize: 100},
	})
	logs, err := job.Run(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(stdout.String(), "\n"), "one line: %s", stdout.String())
	var summary struct {
		Msg, Mode    string
		Users, Pages int
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &summary))
	assert.Equal(t, "users listed", summary.Msg)
	assert.Equal(t, "full", summary.Mode)
	assert.Equal(t, 450, summary.Users)
	assert.Equal(t, 5, summary.Pages)
	assert.NotContains(t, stdout.String(), `"msg":"user"`)
	assert.Empty(t, stderr.String())
	require.Len(t, logs, 1)
	assert.Contains(t, logs[0], "Listed 450 users on 5 pages")
}

func TestRunLogsProgressEveryNPages(t *testing.T) {
	var stdout bytes.Buffer
	job := usersjob.New(newClient(t, 95), joblog.New(&stdout, &bytes.Buffer{}, slog.LevelInfo), usersjob.Options{
		Query: graph.Query{Select: []string{"id"}, PageSize: 10}, ProgressEvery: 3,
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
		Query: graph.Query{Select: []string{"id", "displayName"}, PageSize: 999}, LogEach: true,
	})
	_, err := job.Run(context.Background())
	require.Error(t, err, "a listing whose lines are lost is not a success")
	assert.Contains(t, err.Error(), "broken pipe")
}
