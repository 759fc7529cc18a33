package graph

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRetryAfterReadsEveryForm(t *testing.T) {
	now := time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
		named  bool
	}{
		{"whole seconds", http.Header{"Retry-After": {"3"}}, 3 * time.Second, true},
		{"fractional seconds as Graph sends them", http.Header{"Retry-After": {"2.128"}}, 2128 * time.Millisecond, true},
		{"seconds with space around them", http.Header{"Retry-After": {" 2.5\t"}}, 2500 * time.Millisecond, true},
		{"zero seconds", http.Header{"Retry-After": {"0"}}, 0, true},
		{"leading zeros", http.Header{"Retry-After": {"000000000000000000000000000012"}}, 12 * time.Second, true},
		{"more fractional digits than nanoseconds", http.Header{"Retry-After": {"1.0000000019"}}, time.Second + time.Nanosecond, true},
		{"an HTTP date", http.Header{"Retry-After": {"Fri, 27 Nov 2026 20:00:05 GMT"}}, 5 * time.Second, true},
		{"an RFC 850 date", http.Header{"Retry-After": {"Friday, 27-Nov-26 20:00:07 GMT"}}, 7 * time.Second, true},
		{"an ANSI C date", http.Header{"Retry-After": {"Fri Nov 27 20:00:09 2026"}}, 9 * time.Second, true},
		{"an HTTP date in the past", http.Header{"Retry-After": {"Fri, 27 Nov 2026 19:59:00 GMT"}}, 0, true},
		{"milliseconds", http.Header{"Retry-After-Ms": {"250"}}, 250 * time.Millisecond, true},
		{"fractional milliseconds", http.Header{"Retry-After-Ms": {"1.5"}}, 1500 * time.Microsecond, true},
		{"x-ms milliseconds", http.Header{"X-Ms-Retry-After-Ms": {"1500"}}, 1500 * time.Millisecond, true},
		{"milliseconds win over seconds", http.Header{"Retry-After-Ms": {"100"}, "Retry-After": {"9"}}, 100 * time.Millisecond, true},
		{"retry-after-ms wins over x-ms-retry-after-ms", http.Header{"Retry-After-Ms": {"100"}, "X-Ms-Retry-After-Ms": {"200"}}, 100 * time.Millisecond, true},
		{"milliseconds that are not a number leave the seconds", http.Header{"Retry-After-Ms": {"NaN"}, "Retry-After": {"9"}}, 9 * time.Second, true},
		{"nothing", http.Header{}, 0, false},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0, false},
		{"an empty value", http.Header{"Retry-After": {""}}, 0, false},
		{"only space", http.Header{"Retry-After": {"   "}}, 0, false},
		{"a negative value", http.Header{"Retry-After": {"-1"}}, 0, false},
		{"negative zero", http.Header{"Retry-After": {"-0"}}, 0, false},
		{"a plus sign", http.Header{"Retry-After": {"+1"}}, 0, false},
		{"NaN", http.Header{"Retry-After": {"NaN"}}, 0, false},
		{"nan", http.Header{"Retry-After": {"nan"}}, 0, false},
		{"Inf", http.Header{"Retry-After": {"Inf"}}, 0, false},
		{"+Inf", http.Header{"Retry-After": {"+Inf"}}, 0, false},
		{"Infinity", http.Header{"Retry-After": {"Infinity"}}, 0, false},
		{"an exponent", http.Header{"Retry-After": {"1e10"}}, 0, false},
		{"a capital exponent", http.Header{"Retry-After": {"1E3"}}, 0, false},
		{"a negative exponent", http.Header{"Retry-After": {"5e-1"}}, 0, false},
		{"underscores", http.Header{"Retry-After": {"1_0"}}, 0, false},
		{"hex", http.Header{"Retry-After": {"0x10"}}, 0, false},
		{"hex float", http.Header{"Retry-After": {"0x1p4"}}, 0, false},
		{"a trailing point", http.Header{"Retry-After": {"1."}}, 0, false},
		{"a leading point", http.Header{"Retry-After": {".5"}}, 0, false},
		{"two points", http.Header{"Retry-After": {"1.2.3"}}, 0, false},
		{"a decimal comma", http.Header{"Retry-After": {"1,5"}}, 0, false},
		{"a unit", http.Header{"Retry-After": {"5s"}}, 0, false},
		{"space inside", http.Header{"Retry-After": {"1 0"}}, 0, false},
		{"digits of another script", http.Header{"Retry-After": {"٣"}}, 0, false},
		{"milliseconds as NaN", http.Header{"Retry-After-Ms": {"NaN"}}, 0, false},
		{"milliseconds as Inf", http.Header{"X-Ms-Retry-After-Ms": {"Inf"}}, 0, false},
		{"milliseconds with an exponent", http.Header{"Retry-After-Ms": {"1e3"}}, 0, false},
		{"negative milliseconds", http.Header{"Retry-After-Ms": {"-5"}}, 0, false},
		{"milliseconds with underscores", http.Header{"Retry-After-Ms": {"1_000"}}, 0, false},
		{"milliseconds as a date", http.Header{"Retry-After-Ms": {"Fri, 27 Nov 2026 20:00:05 GMT"}}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, named := RetryAfter(tt.header, now)
			assert.Equal(t, tt.named, named)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRetryAfterSaturatesAWaitTooLongToHold(t *testing.T) {
	now := time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"two minutes", http.Header{"Retry-After": {"120"}}, 2 * time.Minute},
		{"ten billion seconds", http.Header{"Retry-After": {"10000000000"}}, maxWait},
		{"ten billion seconds and a half", http.Header{"Retry-After": {"10000000000.5"}}, maxWait},
		{"more seconds than any duration holds", http.Header{"Retry-After": {"99999999999999999999999999999"}}, maxWait},
		{"the largest duration's seconds and one", http.Header{"Retry-After": {"9223372037"}}, maxWait},
		{"just under the largest duration", http.Header{"Retry-After": {"9223372036"}}, 9223372036 * time.Second},
		{"more milliseconds than any duration holds", http.Header{"Retry-After-Ms": {"99999999999999999999999999999"}}, maxWait},
		{"ten trillion milliseconds", http.Header{"X-Ms-Retry-After-Ms": {"10000000000000"}}, maxWait},
		{"a date in the far future", http.Header{"Retry-After": {"Fri, 31 Dec 9999 23:59:59 GMT"}}, maxWait},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, named := RetryAfter(tt.header, now)
			require.True(t, named)
			assert.Equal(t, tt.want, got)
			assert.Greater(t, got, time.Minute, "over the default 60 s limit, so the caller fails at once")
		})
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	p := newRetryPolicy(&ClientOptions{RetryDelay: 100 * time.Millisecond, MaxRetryDelay: time.Second})
	assert.InDelta(t, float64(100*time.Millisecond), float64(p.backoff(1)), float64(20*time.Millisecond))
	assert.InDelta(t, float64(400*time.Millisecond), float64(p.backoff(3)), float64(80*time.Millisecond))
	assert.Equal(t, time.Second, p.backoff(10))
}

func TestRetryPolicyDefaults(t *testing.T) {
	p := newRetryPolicy(&ClientOptions{})
	assert.Equal(t, 6, p.maxRetries)
	assert.Equal(t, 500*time.Millisecond, p.delay)
	assert.Equal(t, 60*time.Second, p.maxDelay)
	assert.Equal(t, 0, newRetryPolicy(&ClientOptions{MaxRetries: -1}).maxRetries)
}

func TestWaitNeverOutlivesTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	err := wait(ctx, 2*time.Hour)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "deadline")

	require.NoError(t, wait(ctx, time.Millisecond))
}
