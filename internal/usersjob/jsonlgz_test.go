package usersjob

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJSONLinesGzipWritesOneObjectALine(t *testing.T) {
	var blob bytes.Buffer
	enc, err := jsonLinesGzip.newEncoder(&blob)
	require.NoError(t, err)
	require.NoError(t, enc.Encode([]byte(`{"id":"1"}`)))
	obj := []byte(`{"id":"2","displayName":"Zoë"}`)
	require.NoError(t, enc.Encode(obj))
	copy(obj, `{"id":"X"`) // the encoder kept nothing of the caller's
	assert.EqualError(t, enc.Encode([]byte("{\n}")), "a line must not hold a newline")
	assert.EqualError(t, enc.Encode(nil), "empty line")
	require.NoError(t, enc.Close())

	zr, err := gzip.NewReader(&blob)
	require.NoError(t, err, "the blob is one gzip file")
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Equal(t, "{\"id\":\"1\"}\n{\"id\":\"2\",\"displayName\":\"Zoë\"}\n", string(plain), "each line ends in a newline")
	assert.Equal(t, ".jsonl.gz", jsonLinesGzip.ext)
	assert.Equal(t, "application/gzip", jsonLinesGzip.contentType, "a gzip file, with no Content-Encoding to undo it")
}

func TestJSONLinesGzipOfNothingIsAnEmptyGzipFile(t *testing.T) {
	var blob bytes.Buffer
	enc, err := jsonLinesGzip.newEncoder(&blob)
	require.NoError(t, err)
	require.NoError(t, enc.Close())
	zr, err := gzip.NewReader(&blob)
	require.NoError(t, err)
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Empty(t, plain)
}
