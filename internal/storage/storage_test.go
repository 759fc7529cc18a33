package storage

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/azurite"
)

func TestContainer(t *testing.T) {
	t.Parallel()
	s := azurite.Start(t)

	t.Run("create is fine when the container exists", func(t *testing.T) {
		t.Parallel()
		c := openContainer(t, s)
		assert.NoError(t, c.Create(testContext(t)))
	})

	t.Run("get of a missing blob is ErrNotFound", func(t *testing.T) {
		t.Parallel()
		c := openContainer(t, s)
		_, _, err := c.Get(testContext(t), "state.json")
		require.ErrorIs(t, err, ErrNotFound)
		var se *Error
		require.ErrorAs(t, err, &se)
		assert.Equal(t, http.StatusNotFound, se.StatusCode)
		assert.Equal(t, "BlobNotFound", se.Code)
		assert.Contains(t, err.Error(), "get "+c.Name()+"/state.json: storage answered 404 Not Found (BlobNotFound) [request-id ")
	})

	t.Run("get from a missing container is not ErrNotFound: the container should have been created", func(t *testing.T) {
		t.Parallel()
		conn, err := ParseConnection("AzureWebJobsStorage", env(map[string]string{"AzureWebJobsStorage": s.ConnectionString()}), "")
		require.NoError(t, err)
		c, err := Open(conn, "never-created", &Options{Transport: s.Client()})
		require.NoError(t, err)
		_, _, err = c.Get(testContext(t), "state.json")
		var se *Error
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "ContainerNotFound", se.Code)
		assert.NotErrorIs(t, err, ErrNotFound)
	})

	t.Run("put creates a blob once; a second create conflicts and overwrites nothing", func(t *testing.T) {
		t.Parallel()
		c := openContainer(t, s)
		ctx := testContext(t)
		etag, err := c.Put(ctx, "state.json", []byte(`{"n":1}`), "")
		require.NoError(t, err)
		assert.NotEmpty(t, etag)

		_, err = c.Put(ctx, "state.json", []byte(`{"n":2}`), "")
		require.ErrorIs(t, err, ErrConflict)
		assert.Contains(t, err.Error(), "put "+c.Name()+"/state.json: storage answered 409 Conflict (BlobAlreadyExists)")

		data, got, err := c.Get(ctx, "state.json")
		require.NoError(t, err)
		assert.JSONEq(t, `{"n":1}`, string(data), "the first write stands")
		assert.Equal(t, etag, got)
	})

	t.Run("put with the blob's etag replaces it; a stale etag conflicts and overwrites nothing", func(t *testing.T) {
		t.Parallel()
		c := openContainer(t, s)
		ctx := testContext(t)
		first, err := c.Put(ctx, "state.json", []byte(`{"n":1}`), "")
		require.NoError(t, err)
		second, err := c.Put(ctx, "state.json", []byte(`{"n":2}`), first)
		require.NoError(t, err)
		assert.NotEqual(t, first, second)

		_, err = c.Put(ctx, "state.json", []byte(`{"n":3}`), first)
		require.ErrorIs(t, err, ErrConflict)
		assert.Contains(t, err.Error(), "storage answered 412 Precondition Failed (ConditionNotMet)")

		data, etag, err := c.Get(ctx, "state.json")
		require.NoError(t, err)
		assert.JSONEq(t, `{"n":2}`, string(data))
		assert.Equal(t, second, etag)
	})

	t.Run("put writes application/json", func(t *testing.T) {
		t.Parallel()
		c := openContainer(t, s)
		_, err := c.Put(testContext(t), "state.json", []byte(`{}`), "")
		require.NoError(t, err)
		props, err := c.client.NewBlobClient("state.json").GetProperties(testContext(t), nil)
		require.NoError(t, err)
		assert.Equal(t, "application/json", *props.ContentType)
	})

	t.Run("put of more than MaxBlobSize fails before sending", func(t *testing.T) {
		t.Parallel()
		c := openContainer(t, s)
		_, err := c.Put(testContext(t), "state.json", make([]byte, MaxBlobSize+1), "")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "more than the 1048576 a state blob may have")
		assert.Empty(t, listed(t, c))
	})

	t.Run("get of a blob over MaxBlobSize fails clearly", func(t *testing.T) {
		t.Parallel()
		c := openContainer(t, s)
		_, err := c.client.NewBlockBlobClient("big.json").UploadBuffer(testContext(t), bytes.Repeat([]byte{' '}, MaxBlobSize+1), &blockblob.UploadBufferOptions{})
		require.NoError(t, err)
		_, _, err = c.Get(testContext(t), "big.json")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "get "+c.Name()+"/big.json: the blob has 1048577 bytes, more than the 1048576 a state blob may have")
	})

	t.Run("a wrong account key is refused with the facts", func(t *testing.T) {
		t.Parallel()
		conn, err := ParseConnection("AzureWebJobsStorage", env(map[string]string{
			"AzureWebJobsStorage": "AccountName=devstoreaccount1;AccountKey=" + testKey + ";BlobEndpoint=" + s.BlobEndpoint(),
		}), "")
		require.NoError(t, err)
		c, err := Open(conn, "wrong-key", &Options{Transport: s.Client()})
		require.NoError(t, err)

		err = c.Create(testContext(t))
		var se *Error
		require.ErrorAs(t, err, &se)
		assert.Equal(t, http.StatusForbidden, se.StatusCode)
		// Azurite answers a bad signature with AuthorizationFailure, which
		// Azure uses for requests its rules refuse.
		assert.ErrorIs(t, err, ErrForbidden)
		var re *azcore.ResponseError
		assert.ErrorAs(t, err, &re, "the SDK's error is there for whoever wants it")
		assert.NotContains(t, err.Error(), testKey)
	})

	t.Run("a token over plain http reaches a loopback endpoint", func(t *testing.T) {
		t.Parallel()
		conn, err := ParseConnection("AzureWebJobsStorage", env(map[string]string{
			"AzureWebJobsStorage__blobServiceUri": s.BlobEndpoint(),
		}), defaultClientID)
		require.NoError(t, err)
		c, err := Open(conn, "token-over-http", &Options{Transport: s.Client(), Credential: &entraToken{}})
		require.NoError(t, err)

		err = c.Create(testContext(t))
		var se *Error
		require.ErrorAs(t, err, &se, "azcore sent the request instead of refusing a token over http")
		// Without --oauth, Azurite does not take tokens; with it, only over
		// https (TestManagedIdentity).
		assert.NotZero(t, se.StatusCode)
	})
}

func TestOpenChecksItsInputs(t *testing.T) {
	conn, err := ParseConnection("AzureWebJobsStorage", env(map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true"}), "")
	require.NoError(t, err)
	for _, name := range []string{"", "ab", "Upper", "double--hyphen", "-start", "end-", "under_score", strings.Repeat("a", 64)} {
		_, err := Open(conn, name, nil)
		assert.ErrorContains(t, err, "is not valid: 3 to 63 lowercase letters", "container %q", name)
	}

	mi := Connection{Setting: "AzureWebJobsStorage", Endpoint: "https://a.blob.core.windows.net", AccountName: "a", Auth: ManagedIdentity}
	_, err = Open(mi, "graphuserstimer", nil)
	assert.ErrorContains(t, err, "signs in with a managed identity, but no credential was given")

	_, err = Open(Connection{}, "graphuserstimer", nil)
	assert.ErrorContains(t, err, "read it with ParseConnection")
}
