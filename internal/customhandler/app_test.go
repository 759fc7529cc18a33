package customhandler

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFindTimerFunctionReadsTheRepositoryApp(t *testing.T) {
	fn, err := FindTimerFunction(filepath.Join("..", ".."))
	require.NoError(t, err)
	assert.Equal(t, Function{Name: "GraphUsersTimer", Binding: "timer", Schedule: "%GRAPH_USERS_SCHEDULE%"}, fn)
}

func writeFunction(t *testing.T, root, name, body string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(root, name), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, name, "function.json"), []byte(body), 0o644))
}

func TestFindTimerFunctionNamesTheFunctionByItsFolder(t *testing.T) {
	root := t.TempDir()
	writeFunction(t, root, "Nightly", `{"bindings":[{"type":"timerTrigger","direction":"in","name":"clock","schedule":"0 0 2 * * *"}]}`)
	writeFunction(t, root, "Hook", `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req"}]}`)

	fn, err := FindTimerFunction(root)
	require.NoError(t, err)
	assert.Equal(t, Function{Name: "Nightly", Binding: "clock", Schedule: "0 0 2 * * *"}, fn)
}

func TestFindTimerFunctionSaysWhatIsWrong(t *testing.T) {
	tests := []struct {
		name  string
		setup func(root string)
		want  string
	}{
		{"an empty app root", func(string) {}, "FUNCTIONS_APP_ROOT_PATH"},
		{"a function.json that is not JSON", func(root string) { writeFunction(t, root, "Bad", `{`) }, "parse"},
		{"a timer binding without a name", func(root string) {
			writeFunction(t, root, "T", `{"bindings":[{"type":"timerTrigger","direction":"in"}]}`)
		}, "no name"},
		{"two timer functions", func(root string) {
			writeFunction(t, root, "A", `{"bindings":[{"type":"timerTrigger","direction":"in","name":"t"}]}`)
			writeFunction(t, root, "B", `{"bindings":[{"type":"timerTrigger","direction":"in","name":"t"}]}`)
		}, "more than one timer function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			tt.setup(root)
			_, err := FindTimerFunction(root)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestLoadAppReadsFunctionTimeoutAsTheHostDoes(t *testing.T) {
	tests := []struct {
		hostJSON string
		want     time.Duration
	}{
		{`{"functionTimeout":"00:10:00"}`, 10 * time.Minute},
		{`{"functionTimeout":" 00:05:00 "}`, 5 * time.Minute},
		{`{"functionTimeout":"00:04:30.5"}`, 4*time.Minute + 30*time.Second + 500*time.Millisecond},
		{`{"functionTimeout":"1.00:00:00"}`, 24 * time.Hour},
		{`{"functionTimeout":"-1"}`, 0},
		{`{"version":"2.0"}`, DefaultFunctionTimeout},
		{"", DefaultFunctionTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.hostJSON, func(t *testing.T) {
			root := t.TempDir()
			writeFunction(t, root, "T", `{"bindings":[{"type":"timerTrigger","direction":"in","name":"t"}]}`)
			if tt.hostJSON != "" {
				require.NoError(t, os.WriteFile(filepath.Join(root, "host.json"), []byte(tt.hostJSON), 0o644))
			}
			app, err := LoadApp(root)
			require.NoError(t, err)
			assert.Equal(t, tt.want, app.FunctionTimeout)
			assert.Equal(t, "T", app.Function.Name)
		})
	}
	for _, bad := range []string{`{"functionTimeout":"ten minutes"}`, `{"functionTimeout":"00:00:00"}`, `{"functionTimeout":"00:61:00"}`} {
		root := t.TempDir()
		writeFunction(t, root, "T", `{"bindings":[{"type":"timerTrigger","direction":"in","name":"t"}]}`)
		require.NoError(t, os.WriteFile(filepath.Join(root, "host.json"), []byte(bad), 0o644))
		_, err := LoadApp(root)
		assert.ErrorContains(t, err, "functionTimeout", bad)
	}
}
