package graph

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The bodies in testdata/graph are Graph's own, as its documentation shows
// them: the client must read them as they are.

func readPayload(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "graph", name))
	require.NoError(t, err)
	return b
}

func TestDecodePageReadsGraphsOwnPages(t *testing.T) {
	tests := []struct {
		file     string
		link     string
		ids      []string
		lastUser string
	}{
		{
			file: "users-page.json",
			link: "https://graph.microsoft.com/v1.0/users?$select=id%2cdisplayName%2cuserPrincipalName%2cmail&$top=2&$skiptoken=RFNwdAIAAQAAACY6QWRlbGVWQE0zNjV4MjE0MzU1Lm9ubWljcm9zb2Z0LmNvbSlVc2VyXzg3ZDM0OWVkLTQ0ZDctNDNlMS05YTgzLTVmMjQwNmRlZTViZLkAAAAAAAAAAAAA",
			ids:  []string{"87d349ed-44d7-43e1-9a83-5f2406dee5bd", "5bde3e51-d13b-4db1-9948-fe4b109d11a7"},
			// Escapes pass through as Graph sent them.
			lastUser: `{"id":"5bde3e51-d13b-4db1-9948-fe4b109d11a7","displayName":"Zo\u00eb \"DJ\" O'Neil","userPrincipalName":"ZoeO@contoso.onmicrosoft.com","mail":null}`,
		},
		{
			file:     "users-last-page.json",
			ids:      []string{"4782e723-f4f4-4af3-a76e-25e3bab0d896"},
			lastUser: `{"id":"4782e723-f4f4-4af3-a76e-25e3bab0d896","displayName":"Megan Bowen"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var link, last string
			var ids []string
			err := decodePage(bytes.NewReader(readPayload(t, tt.file)), pageHandler{
				link: func(s string, before bool) {
					link = s
					assert.True(t, before, "Graph writes the nextLink before the users")
				},
				user: func(u, id []byte) error {
					ids = append(ids, string(id))
					last = string(u)
					return nil
				},
			})
			require.NoError(t, err)
			assert.Equal(t, tt.link, link)
			assert.Equal(t, tt.ids, ids)
			assert.Equal(t, tt.lastUser, last)
		})
	}
}

func TestReadResponseErrorReadsGraphsOwnErrorBody(t *testing.T) {
	resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{},
		Body: io.NopCloser(bytes.NewReader(readPayload(t, "error-throttled.json")))}
	e := ReadResponseError(resp)
	assert.Equal(t, &ResponseError{StatusCode: 429, Code: "TooManyRequests", Message: "Too many requests.",
		RequestID: "d0c1a2b3-7e0f-4a4b-9c8d-6e5f4a3b2c1d"}, e)
}
