package azurite_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/azurite"
)

// answersAsAzurite checks that the server's blob service answers HTTP, as
// Azurite: an unsigned request is refused with Azurite's Server header.
func answersAsAzurite(t *testing.T, s *azurite.Server) {
	t.Helper()
	resp, err := s.Client().Get(s.BlobEndpoint() + "?comp=list")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "an unsigned request is refused")
	assert.Contains(t, resp.Header.Get("Server"), "Azurite-Blob", "the blob service answers")
}

// client is an azblob client on the server's connection string.
func client(t *testing.T, s *azurite.Server) *azblob.Client {
	t.Helper()
	c, err := azblob.NewClientFromConnectionString(s.ConnectionString(), &azblob.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: s.Client()},
	})
	require.NoError(t, err)
	return c
}

func TestStartServesTheBlobServiceStopEndsItAndRestartBringsItBack(t *testing.T) {
	t.Parallel()
	s := azurite.Start(t)

	assert.True(t, strings.HasPrefix(s.BlobEndpoint(), "http://127.0.0.1:"), s.BlobEndpoint())
	assert.True(t, strings.HasSuffix(s.BlobEndpoint(), "/"+azurite.AccountName), s.BlobEndpoint())
	answersAsAzurite(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := client(t, s).CreateContainer(ctx, "kept", nil)
	require.NoError(t, err, "the connection string signs requests azblob sends")
	port := s.Port()

	start := time.Now()
	s.Stop()
	assert.Less(t, time.Since(start), 10*time.Second, "stop is quick")
	assert.Error(t, s.Dial(), "a stopped server refuses connections")
	assert.Contains(t, s.Output(), "successfully closed", "Azurite closed gracefully")
	s.Stop() // again: nothing to do

	s.Restart()
	assert.Equal(t, port, s.Port(), "the same port")
	_, err = client(t, s).ServiceClient().NewContainerClient("kept").GetProperties(ctx, nil)
	assert.NoError(t, err, "the container made before the stop is still there")
	s.Restart() // again: nothing to do
}

func TestTwoServersRunAtOnceOnDifferentPortsOneWithOAuth(t *testing.T) {
	t.Parallel()
	plain := azurite.Start(t)
	oauth := azurite.StartWith(t, azurite.Options{OAuth: true})

	assert.NotEqual(t, plain.Port(), oauth.Port())
	answersAsAzurite(t, plain)
	answersAsAzurite(t, oauth)

	assert.True(t, strings.HasPrefix(oauth.BlobEndpoint(), "https://127.0.0.1:"), oauth.BlobEndpoint())
	require.NotNil(t, oauth.Certificate())
	assert.Nil(t, plain.Certificate())
	_, err := http.Get(oauth.BlobEndpoint())
	assert.Error(t, err, "a client that does not trust the certificate is refused")
}
