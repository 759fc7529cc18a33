package storage

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/azurite"
)

// TestManagedIdentity signs in with a token, as a managed identity does in
// Azure, against Azurite checking tokens (--oauth basic, over https with a
// certificate made for the test). The connection comes from identity-based
// settings, read as the host reads them.
func TestManagedIdentity(t *testing.T) {
	t.Parallel()
	s := azurite.StartWith(t, azurite.Options{OAuth: true})
	conn, err := ParseConnection("AzureWebJobsStorage", env(map[string]string{
		"AzureWebJobsStorage__blobServiceUri": s.BlobEndpoint(),
		"AzureWebJobsStorage__credential":     "managedidentity",
		"AzureWebJobsStorage__clientId":       defaultClientID,
	}), "")
	require.NoError(t, err)
	require.Equal(t, ManagedIdentity, conn.Auth)

	t.Run("a token for storage's audience reads and writes", func(t *testing.T) {
		t.Parallel()
		cred := &entraToken{}
		c, err := Open(conn, "with-a-token", &Options{Transport: s.Client(), Credential: cred})
		require.NoError(t, err)
		ctx := testContext(t)

		require.NoError(t, c.Create(ctx))
		etag, err := c.Put(ctx, "state.json", []byte(`{"deltaLink":"x"}`), "")
		require.NoError(t, err)
		_, err = c.Put(ctx, "state.json", []byte(`{}`), "")
		assert.ErrorIs(t, err, ErrConflict)
		data, got, err := c.Get(ctx, "state.json")
		require.NoError(t, err)
		assert.JSONEq(t, `{"deltaLink":"x"}`, string(data))
		assert.Equal(t, etag, got)

		w, err := c.NewBlobWriter(ctx, "users.jsonl", "application/x-test")
		require.NoError(t, err)
		_, err = w.Write(record(7))
		require.NoError(t, err)
		done, err := w.Commit(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, len(record(7)), done.Bytes)
		assert.Equal(t, string(record(7)), string(download(t, c, "users.jsonl").data))

		assert.Positive(t, cred.asked.Load(), "the credential was asked for tokens")
	})

	t.Run("a token for another audience is refused with the facts", func(t *testing.T) {
		t.Parallel()
		c, err := Open(conn, "wrong-audience", &Options{Transport: s.Client(), Credential: &entraToken{audience: "https://graph.microsoft.com"}})
		require.NoError(t, err)

		err = c.Create(testContext(t))
		var se *Error
		require.ErrorAs(t, err, &se)
		assert.Equal(t, http.StatusForbidden, se.StatusCode)
		assert.Equal(t, "AuthenticationFailed", se.Code)
		assert.NotErrorIs(t, err, ErrForbidden, "a bad token is not a missing role")
	})
}
