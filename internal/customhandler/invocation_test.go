package customhandler

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readInvocation(t *testing.T, name string) Invocation {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "invocations", name))
	require.NoError(t, err)
	inv, err := DecodeInvocation(b)
	require.NoError(t, err)
	return inv
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestDecodeInvocationReadsEachHostPayload(t *testing.T) {
	tests := []struct {
		file      string
		pastDue   bool
		status    *ScheduleStatus
		retry     *RetryContext
		utcNow    time.Time
		adjustDST bool
	}{
		{
			file:      "timer.json",
			status:    &ScheduleStatus{Last: Time{utc("2026-11-27T19:00:00.0021348Z")}, Next: Time{utc("2026-11-27T20:00:00Z")}, LastUpdated: Time{utc("2026-11-27T19:00:00.0021348Z")}},
			utcNow:    utc("2026-11-27T20:00:00.0132215Z"),
			adjustDST: true,
		},
		{
			file:      "timer-monitor-off.json",
			utcNow:    utc("2026-11-27T20:00:00.5Z"),
			adjustDST: true,
		},
		{
			file:      "timer-past-due-first-run.json",
			pastDue:   true,
			status:    &ScheduleStatus{Next: Time{utc("2026-11-27T20:00:00Z")}},
			utcNow:    utc("2026-11-27T20:03:11.1234567Z"),
			adjustDST: true,
		},
		{
			file:      "timer-retry.json",
			status:    &ScheduleStatus{Last: Time{utc("2026-11-27T19:00:00Z")}, Next: Time{utc("2026-11-27T20:00:00Z")}, LastUpdated: Time{utc("2026-11-27T19:00:00Z")}},
			retry:     &RetryContext{RetryCount: 1, MaxRetryCount: 3},
			utcNow:    utc("2026-11-27T20:00:10.0000001Z"),
			adjustDST: true,
		},
		{
			file:   "timer-unknown-fields.json",
			status: &ScheduleStatus{Last: Time{utc("2026-11-27T18:00:00.12Z")}},
			utcNow: utc("2026-11-27T20:00:00Z"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			inv := readInvocation(t, tt.file)
			timer, ok := inv.Timer("timer")
			require.True(t, ok)

			assert.Equal(t, tt.pastDue, timer.IsPastDue)
			assert.Equal(t, tt.adjustDST, timer.Schedule.AdjustForDST)
			assert.Equal(t, tt.status, timer.ScheduleStatus)
			assert.Equal(t, "GraphUsersTimer", inv.Metadata.Sys.MethodName)
			assert.True(t, tt.utcNow.Equal(inv.Metadata.Sys.UtcNow.Time), "UtcNow %v", inv.Metadata.Sys.UtcNow)
			if tt.retry == nil {
				assert.Nil(t, inv.Metadata.RetryContext)
			} else {
				require.NotNil(t, inv.Metadata.RetryContext)
				assert.Equal(t, tt.retry.RetryCount, inv.Metadata.RetryContext.RetryCount)
				assert.Equal(t, tt.retry.MaxRetryCount, inv.Metadata.RetryContext.MaxRetryCount)
				assert.Contains(t, string(inv.Metadata.RetryContext.Exception), "Functions.GraphUsersTimer")
			}
		})
	}
}

func TestTimerTakesTheBindingNameFromFunctionJSON(t *testing.T) {
	inv, err := DecodeInvocation([]byte(`{"Data":{"myTimer":{"IsPastDue":true}},"Metadata":{}}`))
	require.NoError(t, err)

	timer, ok := inv.Timer("myTimer")
	require.True(t, ok)
	assert.True(t, timer.IsPastDue)

	_, ok = inv.Timer("timer")
	assert.False(t, ok, "another binding's name finds nothing")
}

func TestTimerReadsAStringEncodedTimer(t *testing.T) {
	inv, err := DecodeInvocation([]byte(`{"Data":{"timer":"{\"IsPastDue\":true,\"ScheduleStatus\":null}"}}`))
	require.NoError(t, err)

	timer, ok := inv.Timer("timer")
	require.True(t, ok)
	assert.True(t, timer.IsPastDue)
	assert.Nil(t, timer.ScheduleStatus)
}

func TestTimerThatDoesNotParseNeverFailsTheInvocation(t *testing.T) {
	for _, body := range []string{
		`{"Data":{"timer":42}}`,
		`{"Data":{"timer":"not json"}}`,
		`{"Data":{"timer":{"IsPastDue":"yes"}}}`,
		`{"Data":{}}`,
		`{}`,
	} {
		inv, err := DecodeInvocation([]byte(body))
		require.NoError(t, err, body)
		timer, ok := inv.Timer("timer")
		assert.False(t, ok, body)
		assert.Equal(t, Timer{}, timer, body)
	}
}

func TestDecodeInvocationRejectsWhatIsNotAnObject(t *testing.T) {
	for _, body := range []string{``, `[]`, `{"Data":`, `nul`, `"x"`} {
		_, err := DecodeInvocation([]byte(body))
		assert.Error(t, err, body)
	}
}

func TestTimeReadsDotNetTimestamps(t *testing.T) {
	tests := map[string]time.Time{
		`"2026-11-27T19:00:00.0021348+00:00"`: utc("2026-11-27T19:00:00.0021348Z"),
		`"2026-11-27T14:00:00-05:00"`:         utc("2026-11-27T19:00:00Z"),
		`"2026-11-27T19:00:00Z"`:              utc("2026-11-27T19:00:00Z"),
		`"2026-11-27T19:00:00.1234567"`:       utc("2026-11-27T19:00:00.1234567Z"),
		`"0001-01-01T00:00:00"`:               {},
		`"0001-01-01T00:00:00+00:00"`:         {},
		`"0001-01-01T00:00:00-05:00"`:         {},
		`null`:                                {},
		`"yesterday"`:                         {},
		`17`:                                  {},
	}
	for in, want := range tests {
		var got Time
		require.NoError(t, got.UnmarshalJSON([]byte(in)), in)
		assert.True(t, want.Equal(got.Time), "%s read as %v", in, got.Time)
	}
}
