package joblog

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func lines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), "line %q", l)
		out = append(out, m)
	}
	return out
}

func TestInfoGoesToStdoutAndWarningsToStderr(t *testing.T) {
	var stdout, stderr bytes.Buffer
	log := New(&stdout, &stderr, slog.LevelDebug).Logger()
	log.Debug("d")
	log.Info("i", "n", 1)
	log.Warn("w")
	log.Error("e")

	out := lines(t, &stdout)
	require.Len(t, out, 2)
	assert.Equal(t, []any{"debug", "info"}, []any{out[0]["level"], out[1]["level"]})
	errs := lines(t, &stderr)
	require.Len(t, errs, 2)
	assert.Equal(t, []any{"warn", "error"}, []any{errs[0]["level"], errs[1]["level"]})
	assert.Contains(t, strings.Split(stderr.String(), "\n")[0], "warn", "the host files a stderr line as a warning when it says warn")
}

func TestLevelHidesWhatIsBelowIt(t *testing.T) {
	var stdout, stderr bytes.Buffer
	out := New(&stdout, &stderr, slog.LevelWarn)
	out.Logger().Info("hidden")
	out.Logger().Warn("shown")
	assert.Empty(t, stdout.String())
	assert.Len(t, lines(t, &stderr), 1)
}

func TestTheJobsOutputIsWrittenWhateverTheLevel(t *testing.T) {
	var stdout bytes.Buffer
	out := New(&stdout, &bytes.Buffer{}, slog.LevelError)
	users := out.Objects("user")
	require.NoError(t, users.Write([]byte(`{"id":"a"}`)))
	require.NoError(t, users.Flush())
	out.Results().Info("users listed", "users", 1)
	got := lines(t, &stdout)
	require.Len(t, got, 2)
	assert.Equal(t, "user", got[0]["msg"])
	assert.Equal(t, "users listed", got[1]["msg"])
	assert.Equal(t, "info", got[1]["level"])
}

func TestObjectWriterSplicesTheObjectIntoTheLine(t *testing.T) {
	var stdout bytes.Buffer
	ow := New(&stdout, &bytes.Buffer{}, slog.LevelInfo).Objects("user")
	require.NoError(t, ow.Write([]byte(`{"id":"1","displayName":"Zo\u00eb \"Z\"","n":[1,{"a":null}]}`)))
	require.NoError(t, ow.Write([]byte("{\n  \"id\" : \"2\",\r\n  \"mail\": null\n}")))
	require.NoError(t, ow.Write([]byte(`{}`)))
	require.NoError(t, ow.Write([]byte(`{ }`)))
	assert.Empty(t, stdout.String(), "lines are gathered until Flush")
	require.NoError(t, ow.Flush())

	got := lines(t, &stdout)
	require.Len(t, got, 4, "one line per object, newlines inside compacted away")
	for _, l := range got {
		assert.Equal(t, "user", l["msg"])
		assert.Equal(t, "info", l["level"])
		assert.NotEmpty(t, l["time"])
	}
	assert.Equal(t, `Zoë "Z"`, got[0]["displayName"])
	assert.Equal(t, []any{1.0, map[string]any{"a": nil}}, got[0]["n"])
	assert.Equal(t, "2", got[1]["id"])
	assert.Contains(t, got[1], "mail")
	assert.Len(t, got[2], 3)
	assert.Len(t, got[3], 3)
}

func TestObjectWriterRefusesWhatIsNotAnObject(t *testing.T) {
	ow := New(&bytes.Buffer{}, &bytes.Buffer{}, slog.LevelInfo).Objects("user")
	for _, bad := range []string{``, `[]`, `"x"`, `{`} {
		assert.Error(t, ow.Write([]byte(bad)), bad)
	}
}

func TestObjectWriterWritesLargeBatchesWhole(t *testing.T) {
	w := &countingWriter{}
	ow := New(w, &bytes.Buffer{}, slog.LevelInfo).Objects("user")
	obj := []byte(`{"id":"` + strings.Repeat("x", 1000) + `"}`)
	for range 200 {
		require.NoError(t, ow.Write(obj))
	}
	require.NoError(t, ow.Flush())
	assert.Greater(t, w.writes, 1, "a large batch is written before the end")
	assert.Less(t, w.writes, 10, "lines are batched, not written one by one")
	for _, p := range w.chunks {
		assert.True(t, strings.HasSuffix(p, "\n"), "every write ends at a line's end")
	}
}

type countingWriter struct {
	writes int
	chunks []string
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	c.chunks = append(c.chunks, string(p))
	return len(p), nil
}

func TestObjectWriterWritesEveryLineAsValidUTF8JSON(t *testing.T) {
	tests := []struct {
		name, obj string
		want      string // the displayName the line carries
		raw       string // what the line holds for it, byte for byte
	}{
		{"invalid bytes in a string", "{\"displayName\":\"a\xffb\xfe\"}", "a\ufffdb\ufffd", `a\ufffdb\ufffd`},
		{"a multibyte sequence cut short", "{\"displayName\":\"Zo\xc3\"}", "Zo\ufffd", `Zo\ufffd`},
		{"a three-byte sequence cut short", "{\"displayName\":\"x\xe2\x80\"}", "x\ufffd\ufffd", `x\ufffd\ufffd`},
		{"a surrogate encoded in UTF-8", "{\"displayName\":\"\xed\xa0\x80\"}", "\ufffd\ufffd\ufffd", `\ufffd\ufffd\ufffd`},
		{"an invalid byte after an escaped backslash", "{\"displayName\":\"\\\\\xff\"}", "\\\ufffd", `\\\ufffd`},
		{"line and paragraph separators", "{\"displayName\":\"a\u2028b\u2029c\"}", "a\u2028b\u2029c", `a\u2028b\u2029c`},
		{"valid text in other scripts", `{"displayName":"Zoë Ødegård 日本語 😀"}`, "Zoë Ødegård 日本語 😀", "Zoë Ødegård 日本語 😀"},
		{"escapes already there", `{"displayName":"\u00e9\u2028\ud83d\ude00"}`, "é\u2028😀", `\u00e9\u2028\ud83d\ude00`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout bytes.Buffer
			ow := New(&stdout, &bytes.Buffer{}, slog.LevelInfo).Objects("user")
			require.NoError(t, ow.Write([]byte(tt.obj)))
			require.NoError(t, ow.Flush())

			line := stdout.Bytes()
			require.True(t, bytes.HasSuffix(line, []byte("\n")))
			assert.Equal(t, 1, bytes.Count(line, []byte("\n")), "one line")
			assert.True(t, utf8.Valid(line), "%q is not valid UTF-8", line)
			assert.True(t, json.Valid(line), "%q is not JSON", line)
			assert.NotContains(t, string(line), "\u2028", "no raw line separator")
			assert.NotContains(t, string(line), "\u2029", "no raw paragraph separator")
			assert.Contains(t, string(line), `"displayName":"`+tt.raw+`"`)

			var got, fromJSON struct{ DisplayName string }
			require.NoError(t, json.Unmarshal(line, &got))
			assert.Equal(t, tt.want, got.DisplayName)
			require.NoError(t, json.Unmarshal([]byte(tt.obj), &fromJSON))
			assert.Equal(t, fromJSON.DisplayName, got.DisplayName, "the line says what encoding/json reads in the object")
		})
	}
}

func TestObjectWriterRepairsInvalidUTF8InANameToo(t *testing.T) {
	var stdout bytes.Buffer
	ow := New(&stdout, &bytes.Buffer{}, slog.LevelInfo).Objects("user")
	require.NoError(t, ow.Write([]byte("{\n \"k\xff\": 1}")))
	require.NoError(t, ow.Flush())
	assert.True(t, utf8.Valid(stdout.Bytes()))
	got := lines(t, &stdout)
	require.Len(t, got, 1)
	assert.Equal(t, 1.0, got[0]["k\ufffd"])
}

// BenchmarkObjectWriter writes ASCII users, as most Graph bodies are, to
// a discarding writer: the cost the job pays per user line.
func BenchmarkObjectWriter(b *testing.B) {
	user := []byte(`{"businessPhones":["+1 425 555 0109"],"displayName":"Adele Vance","givenName":"Adele","jobTitle":"Retail Manager","mail":"AdeleV@contoso.com","mobilePhone":null,"officeLocation":"18/2111","preferredLanguage":"en-US","surname":"Vance","userPrincipalName":"AdeleV@contoso.com","id":"87d349ed-44d7-43e1-9a83-5f2406dee5bd"}`)
	ow := New(io.Discard, io.Discard, slog.LevelInfo).Objects("user")
	b.SetBytes(int64(len(user)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ow.Write(user); err != nil {
			b.Fatal(err)
		}
	}
	require.NoError(b, ow.Flush())
}

func TestHasNonASCIIFindsAHighByteAnywhere(t *testing.T) {
	for n := range 80 {
		b := bytes.Repeat([]byte{'a'}, n)
		assert.False(t, hasNonASCII(b), "%d ASCII bytes", n)
		for i := range n {
			b[i] = 0x80
			assert.True(t, hasNonASCII(b), "byte %d of %d", i, n)
			b[i] = 'a'
		}
	}
}
