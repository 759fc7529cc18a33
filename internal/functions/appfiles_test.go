package functions

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/config"
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

// parseTimeSpan reads a .NET TimeSpan as host.json writes it: [d.]hh:mm:ss.
func parseTimeSpan(s string) (time.Duration, error) {
	m := regexp.MustCompile(`^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$`).FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a TimeSpan such as 00:10:00", s)
	}
	n := func(s string) time.Duration { v, _ := strconv.Atoi(s); return time.Duration(v) }
	hours, minutes, seconds := n(m[2]), n(m[3]), n(m[4])
	if hours > 23 || minutes > 59 || seconds > 59 {
		return 0, fmt.Errorf("%q has a field out of range", s)
	}
	return n(m[1])*24*time.Hour + hours*time.Hour + minutes*time.Minute + seconds*time.Second, nil
}

// ncrontabRanges are the bounds of the six NCRONTAB fields: second, minute,
// hour, day, month, day of week.
var ncrontabRanges = [6][2]int{{0, 59}, {0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 6}}

var ncrontabItem = regexp.MustCompile(`^(\*|(\d+)(?:-(\d+))?|[A-Za-z]{3}(?:-[A-Za-z]{3})?)(?:/(\d+))?$`)

// checkNCRONTAB checks a 6-field NCRONTAB expression, the timer trigger's
// format: the 5-field cron most tools use is refused, as the host refuses it.
func checkNCRONTAB(s string) error {
	fields := strings.Fields(s)
	if len(fields) != 6 {
		return fmt.Errorf("%q has %d fields, want 6: {second} {minute} {hour} {day} {month} {day-of-week}", s, len(fields))
	}
	for i, f := range fields {
		for item := range strings.SplitSeq(f, ",") {
			m := ncrontabItem.FindStringSubmatch(item)
			if m == nil {
				return fmt.Errorf("%q: field %d %q is not NCRONTAB", s, i+1, f)
			}
			for _, num := range []string{m[2], m[3]} {
				if num == "" {
					continue
				}
				if v, _ := strconv.Atoi(num); v < ncrontabRanges[i][0] || v > ncrontabRanges[i][1] {
					return fmt.Errorf("%q: field %d value %d is outside %d-%d", s, i+1, v, ncrontabRanges[i][0], ncrontabRanges[i][1])
				}
			}
		}
	}
	return nil
}

func TestCheckNCRONTABAcceptsWhatTheTimerTriggerAccepts(t *testing.T) {
	for _, s := range []string{"0 0 * * * *", "0 */5 * * * *", "30 15 9-17 * * MON-FRI", "0 0 2 1,15 * 0", config.DefaultSchedule} {
		assert.NoError(t, checkNCRONTAB(s), s)
	}
	for _, s := range []string{"0 * * * *", "0 0 * * * * *", "60 * * * * *", "0 0 24 * * *", "0 0 0 0 * *", "0 0 * * 13 *", "x * * * * *"} {
		assert.Error(t, checkNCRONTAB(s), s)
	}
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

	timeout, err := parseTimeSpan(host.FunctionTimeout)
	require.NoError(t, err, "functionTimeout")
	assert.Positive(t, timeout)
	assert.LessOrEqual(t, timeout, consumptionMaxTimeout, "within the Consumption plan's maximum, so one host.json deploys to every plan")
}

func TestFunctionJSONDeclaresTheTimerTheHandlerServes(t *testing.T) {
	fn, err := FindTimerFunction(appRoot)
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
		assert.Equal(t, config.Schedule, setting, "the setting the handler validates is the one the host reads")

		var ls struct{ Values map[string]string }
		readJSON(t, &ls, "local.settings.json.example")
		require.Contains(t, ls.Values, setting, "func start needs the setting the schedule names")
		assert.NoError(t, checkNCRONTAB(ls.Values[setting]))
		return
	}
	assert.NoError(t, checkNCRONTAB(fn.Schedule))
}

func TestTheFunctionsFolderIsTheRouteTheHandlerServes(t *testing.T) {
	fn, err := FindTimerFunction(appRoot)
	require.NoError(t, err)
	info, err := os.Stat(filepath.Join(appRoot, fn.Name, "function.json"))
	require.NoError(t, err)
	require.True(t, info.Mode().IsRegular())

	// No request below reaches the runner: a GET on the function's route is
	// answered before any run.
	srv := httptest.NewServer(NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), fn, nil))
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
