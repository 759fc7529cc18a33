package customhandler_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/config"
	"graphuserstimer/internal/customhandler"
)

// appRoot is the function app's root: this module's.
var appRoot = filepath.Join("..", "..")

// consumptionMaxTimeout is the longest functionTimeout the Consumption plan
// allows; Flex Consumption and the others allow more.
const consumptionMaxTimeout = 10 * time.Minute

func readJSON(t *testing.T, v any, elem ...string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{appRoot}, elem...)...))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v), "%s", filepath.Join(elem...))
}

func TestHostJSONHasWhatACustomHandlerAppNeeds(t *testing.T) {
	var host struct {
		Version         string
		FunctionTimeout string
		CustomHandler   *struct {
			Description struct {
				DefaultExecutablePath string
			}
		}
	}
	readJSON(t, &host, "host.json")

	assert.Equal(t, "2.0", host.Version, "the Functions v2+ host schema")
	require.NotNil(t, host.CustomHandler, "customHandler makes the host start the handler")
	exe := host.CustomHandler.Description.DefaultExecutablePath
	assert.NotEmpty(t, exe)
	assert.False(t, filepath.IsAbs(exe), "%q is relative to the app root, so the deployed app finds it", exe)
	assert.NotContains(t, exe, "..")

	timeout, err := customhandler.ParseTimeSpan(host.FunctionTimeout)
	require.NoError(t, err, "functionTimeout")
	assert.Positive(t, timeout)
	assert.LessOrEqual(t, timeout, consumptionMaxTimeout, "within the Consumption plan's maximum, so one host.json deploys to every plan")
}

func TestFunctionJSONDeclaresTheTimerTheHandlerServes(t *testing.T) {
	fn, err := customhandler.FindTimerFunction(appRoot)
	require.NoError(t, err)
	var fj struct {
		Bindings []map[string]any
	}
	readJSON(t, &fj, fn.Name, "function.json")

	require.Len(t, fj.Bindings, 1, "one trigger, nothing else: the handler writes no output binding")
	b := fj.Bindings[0]
	assert.Equal(t, "timerTrigger", b["type"])
	assert.Equal(t, "in", b["direction"])
	assert.Equal(t, fn.Binding, b["name"])
	assert.NotEmpty(t, b["name"])
	assert.Equal(t, fn.Schedule, b["schedule"])

	if setting, ok := strings.CutPrefix(fn.Schedule, "%"); ok {
		setting, ok = strings.CutSuffix(setting, "%")
		require.True(t, ok, "%q: an app setting reference is %%NAME%%", fn.Schedule)
		assert.Regexp(t, `^[A-Za-z_][A-Za-z0-9_]*$`, setting)
		assert.Equal(t, config.ScheduleSetting, setting, "the setting the handler validates is the one the host reads")

		var ls struct{ Values map[string]string }
		readJSON(t, &ls, "local.settings.json.example")
		require.Contains(t, ls.Values, setting, "func start needs the setting the schedule names")
		assert.NoError(t, config.CheckSchedule(ls.Values[setting]))
		return
	}
	assert.NoError(t, config.CheckSchedule(fn.Schedule))
}

func TestTheFunctionsFolderIsTheRouteTheHandlerServes(t *testing.T) {
	fn, err := customhandler.FindTimerFunction(appRoot)
	require.NoError(t, err)
	info, err := os.Stat(filepath.Join(appRoot, fn.Name, "function.json"))
	require.NoError(t, err)
	require.True(t, info.Mode().IsRegular())

	// No request below reaches the runner: a GET on the function's route is
	// answered before any run.
	srv := httptest.NewServer(customhandler.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), fn, nil))
	t.Cleanup(srv.Close)
	get := func(path string) *http.Response {
		resp, err := srv.Client().Get(srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}

	resp := get("/" + fn.Name)
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "the host POSTs to /%s, the folder's name as written", fn.Name)
	assert.Equal(t, http.MethodPost, resp.Header.Get("Allow"))
	assert.Equal(t, http.StatusNotFound, get("/"+fn.Name+"x").StatusCode)
	assert.Equal(t, http.StatusNotFound, get("/"+strings.ToLower(fn.Name)).StatusCode, "the route is case-sensitive, as the host sends it")
	assert.Equal(t, http.StatusOK, get("/").StatusCode, "the host's readiness probe")
}
