package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testClientID = "0b3c7e3e-2f5c-4c55-9d0c-6a1d2f2b7a10"

// env is the environment of kv on top of the two required settings.
func env(kv map[string]string) func(string) string {
	all := map[string]string{ClientIDSetting: testClientID, ScheduleSetting: "0 0 * * * *"}
	for k, v := range kv {
		all[k] = v
	}
	return func(k string) string { return all[k] }
}

func TestLoadAppliesDefaults(t *testing.T) {
	c, err := Load(env(map[string]string{ClientIDSetting: testClientID}))
	require.NoError(t, err)

	assert.Equal(t, 8080, c.Port)
	assert.Equal(t, testClientID, c.ClientID)
	assert.Equal(t, "https://graph.microsoft.com", c.GraphEndpoint.String())
	assert.Equal(t, []string{"id", "displayName", "userPrincipalName", "mail"}, c.Select)
	assert.Empty(t, c.Filter)
	assert.Equal(t, 999, c.PageSize)
	assert.True(t, c.LogEach)
	assert.Equal(t, slog.LevelInfo, c.LogLevel)
}

func TestLoadReadsEverySetting(t *testing.T) {
	c, err := Load(env(map[string]string{
		PortSetting:          "40123",
		ClientIDSetting:      strings.ToUpper(testClientID),
		GraphEndpointSetting: "https://graph.microsoft.us/",
		SelectSetting:        "displayName, jobTitle,displayName",
		FilterSetting:        "startswith(displayName,'A')",
		PageSizeSetting:      "250",
		LogEachSetting:       "false",
		ScheduleSetting:      "0 */5 * * * *",
		LogLevelSetting:      "DEBUG",
	}))
	require.NoError(t, err)

	assert.Equal(t, 40123, c.Port)
	assert.Equal(t, testClientID, c.ClientID, "client IDs are compared in lower case")
	assert.Equal(t, "https://graph.microsoft.us", c.GraphEndpoint.String(), "the trailing slash goes")
	assert.Equal(t, []string{"id", "displayName", "jobTitle"}, c.Select, "id comes first and duplicates go")
	assert.Equal(t, "startswith(displayName,'A')", c.Filter)
	assert.Equal(t, 250, c.PageSize)
	assert.False(t, c.LogEach)
	assert.Equal(t, "0 */5 * * * *", c.Schedule)
	assert.Equal(t, slog.LevelDebug, c.LogLevel)
}

func TestLoadAcceptsLoopbackHTTPForLocalFakes(t *testing.T) {
	for _, endpoint := range []string{"http://127.0.0.1:7172", "http://localhost:7172", "http://[::1]:7172", "http://127.0.0.2"} {
		c, err := Load(env(map[string]string{ClientIDSetting: testClientID, GraphEndpointSetting: endpoint}))
		require.NoError(t, err, endpoint)
		assert.Equal(t, endpoint, c.GraphEndpoint.String())
	}
}

func TestLoadRejectsEachBadSettingByName(t *testing.T) {
	tests := []struct {
		name    string
		setting string
		value   string
		want    string
	}{
		{"a port that is not a number", PortSetting, "http", "not a TCP port"},
		{"a port out of range", PortSetting, "70000", "not a TCP port"},
		{"a client ID that is not a GUID", ClientIDSetting, "my-identity", "not a client ID"},
		{"plain http to a remote Graph", GraphEndpointSetting, "http://graph.microsoft.com", "plain http"},
		{"plain http to a private address", GraphEndpointSetting, "http://10.0.0.4", "plain http"},
		{"a Graph endpoint with a path", GraphEndpointSetting, "https://graph.microsoft.com/v1.0", "Graph root alone"},
		{"a Graph endpoint with credentials", GraphEndpointSetting, "https://u:p@graph.microsoft.com", "credentials"},
		{"a Graph endpoint that is not a URL", GraphEndpointSetting, "graph.microsoft.com", "not an absolute URL"},
		{"a Graph endpoint of another scheme", GraphEndpointSetting, "ftp://graph.microsoft.com", "https URL"},
		{"a select list with a bad name", SelectSetting, "displayName,$expand=manager", "not a comma-separated list"},
		{"a select list with an empty entry", SelectSetting, "displayName,,mail", "not a comma-separated list"},
		{"a page size of zero", PageSizeSetting, "0", "1 to 999"},
		{"a page size over Graph's limit", PageSizeSetting, "1000", "1 to 999"},
		{"a log switch that is not boolean", LogEachSetting, "sometimes", "not true or false"},
		{"a 5-field cron schedule", ScheduleSetting, "0 * * * *", "6-field NCRONTAB"},
		{"six fields that are not NCRONTAB", ScheduleSetting, "a b c d e f", "the second field"},
		{"an hour out of range", ScheduleSetting, "0 0 24 * * *", "outside 0-23"},
		{"no schedule", ScheduleSetting, " ", "required"},
		{"a port in a Graph endpoint out of range", GraphEndpointSetting, "https://graph.microsoft.com:70000", "not a TCP port"},
		{"an unknown log level", LogLevelSetting, "verbose", "debug, info, warn, error"},
		{"a run timeout that is not a duration", RunTimeoutSetting, "soon", "positive duration"},
		{"a negative run timeout", RunTimeoutSetting, "-5m", "positive duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(env(map[string]string{ClientIDSetting: testClientID, tt.setting: tt.value}))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.setting+": ")
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestLoadReportsEveryBadSettingAtOnce(t *testing.T) {
	_, err := Load(env(map[string]string{
		ClientIDSetting:      "",
		PortSetting:          "0",
		GraphEndpointSetting: "http://example.com",
		PageSizeSetting:      "lots",
		LogLevelSetting:      "loud",
	}))
	require.Error(t, err)
	msg := err.Error()
	for _, name := range []string{PortSetting, ClientIDSetting, GraphEndpointSetting, PageSizeSetting, LogLevelSetting} {
		assert.Contains(t, msg, name+": ", "the message names %s", name)
	}
	assert.Contains(t, msg, "required")
	assert.Len(t, strings.Split(msg, "\n"), 6, "a heading and one line per bad setting")
}

func TestLoadAcceptsTimeSpanSchedules(t *testing.T) {
	c, err := Load(env(map[string]string{ClientIDSetting: testClientID, ScheduleSetting: "01:00:00"}))
	require.NoError(t, err)
	assert.Equal(t, "01:00:00", c.Schedule)
}

func TestParseDurationReadsGoAndTimeSpanForms(t *testing.T) {
	tests := map[string]time.Duration{
		"4m30s":        4*time.Minute + 30*time.Second,
		"00:04:30":     4*time.Minute + 30*time.Second,
		"00:10:00":     10 * time.Minute,
		"01:00":        time.Hour,
		"1.00:00:00":   24 * time.Hour,
		" 00:00:30.5 ": 30*time.Second + 500*time.Millisecond,
		"1:02:03:04":   26*time.Hour + 3*time.Minute + 4*time.Second,
		"250ms":        250 * time.Millisecond,
	}
	for in, want := range tests {
		got, err := ParseDuration(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "ten minutes", "00:61:00", "24:00:00", "1:2:3:4:5", "1e3s"} {
		_, err := ParseDuration(bad)
		assert.Error(t, err, bad)
	}
}

func TestRunTimeoutStopsBeforeTheHostsFunctionTimeout(t *testing.T) {
	tests := []struct {
		name            string
		setting         string
		functionTimeout time.Duration
		want            time.Duration
	}{
		{"Consumption's maximum", "", 10 * time.Minute, 9*time.Minute + 30*time.Second},
		{"a short timeout keeps half", "", 40 * time.Second, 20 * time.Second},
		{"a minute keeps half", "", time.Minute, 30 * time.Second},
		{"no limit", "", 0, 0},
		{"the setting overrides host.json", "2m", 10 * time.Minute, 2 * time.Minute},
		{"the setting as a TimeSpan", "00:01:30", 0, 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(env(map[string]string{RunTimeoutSetting: tt.setting}))
			require.NoError(t, err)
			got, err := c.RunTimeoutWithin(tt.functionTimeout)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRunTimeoutRefusesOneTheHostWouldCutShort(t *testing.T) {
	for _, setting := range []string{"10m", "00:12:00"} {
		c, err := Load(env(map[string]string{RunTimeoutSetting: setting}))
		require.NoError(t, err)
		_, err = c.RunTimeoutWithin(10 * time.Minute)
		require.Error(t, err, setting)
		assert.Contains(t, err.Error(), RunTimeoutSetting+": ")
		assert.Contains(t, err.Error(), "functionTimeout of 10m0s")
	}
}

func TestCheckScheduleAcceptsWhatTheTimerTriggerAccepts(t *testing.T) {
	for _, s := range []string{"0 0 * * * *", "0 */5 * * * *", "30 15 9-17 * * MON-FRI", "0 0 2 1,15 * 0", "0 0 0 1 jan-mar sun", "01:00:00", "1.00:00:00"} {
		assert.NoError(t, CheckSchedule(s), s)
	}
	for _, s := range []string{"0 * * * *", "0 0 * * * * *", "60 * * * * *", "0 0 24 * * *", "0 0 0 0 * *",
		"0 0 * * 13 *", "x * * * * *", "a b c d e f", "*/0 * * * * *", "5-1 * * * * *", "0 0 * * * MON-", "00:00:00", "25:00:00"} {
		assert.Error(t, CheckSchedule(s), s)
	}
}

func TestLoadReadsTheStorageConnectionWhenDeltaOrExportsNeedIt(t *testing.T) {
	c, err := Load(env(map[string]string{ModeSetting: "DELTA", "AzureWebJobsStorage": "UseDevelopmentStorage=true", ContainerSetting: "users-state"}))
	require.NoError(t, err)
	assert.Equal(t, ModeDelta, c.Mode)
	assert.Equal(t, "users-state", c.Container)
	assert.Equal(t, "http://127.0.0.1:10000/devstoreaccount1", c.Storage.Endpoint)

	c, err = Load(env(map[string]string{ExportSetting: "true", StorageSetting: "JobStore",
		"JobStore__blobServiceUri": "https://acct.blob.core.windows.net", "JobStore__clientId": testClientID}))
	require.NoError(t, err)
	assert.True(t, c.Export)
	assert.Equal(t, "https://acct.blob.core.windows.net", c.Storage.Endpoint)
	assert.Equal(t, testClientID, c.Storage.ClientID)

	c, err = Load(env(nil))
	require.NoError(t, err)
	assert.Equal(t, ModeList, c.Mode)
	assert.Empty(t, c.Storage.Endpoint, "list mode without exports reads no storage")
}

func TestLoadRefusesDeltaOrExportsWithoutStorage(t *testing.T) {
	const key = "c2VjcmV0LWtleS1ub3QtdG8tYmUtcHJpbnRlZA=="
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"delta with no connection", map[string]string{ModeSetting: "delta"}, []string{StorageSetting + ": GRAPH_USERS_MODE=delta needs a storage connection", "AzureWebJobsStorage"}},
		{"exports with no connection", map[string]string{ExportSetting: "true", StorageSetting: "Missing"}, []string{StorageSetting + ": GRAPH_USERS_EXPORT=true needs a storage connection", "Missing"}},
		{"a connection string without an account", map[string]string{ModeSetting: "delta", "AzureWebJobsStorage": "AccountKey=" + key}, []string{StorageSetting + ": "}},
		{"an unknown mode", map[string]string{ModeSetting: "changes"}, []string{ModeSetting + ": \"changes\" is not list or delta"}},
		{"a container name storage refuses", map[string]string{ContainerSetting: "Users_State"}, []string{ContainerSetting + ": "}},
		{"an export switch that is not boolean", map[string]string{ExportSetting: "sometimes"}, []string{ExportSetting + ": "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(env(tt.env))
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), key, "a key is never repeated")
		})
	}
}

func TestLoadRefusesAFilterInDeltaMode(t *testing.T) {
	_, err := Load(env(map[string]string{ModeSetting: "delta", FilterSetting: "accountEnabled eq true", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), FilterSetting+": GRAPH_USERS_MODE=delta cannot apply a filter")

	c, err := Load(env(map[string]string{ModeSetting: "list", FilterSetting: "accountEnabled eq true"}))
	require.NoError(t, err, "a listing applies it")
	assert.Equal(t, "accountEnabled eq true", c.Filter)
}
