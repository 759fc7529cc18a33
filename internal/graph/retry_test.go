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
		{"an HTTP date", http.Header{"Retry-After": {"Fri, 27 Nov 2026 20:00:05 GMT"}}, 5 * time.Second, true},
		{"an HTTP date in the past", http.Header{"Retry-After": {"Fri, 27 Nov 2026 19:59:00 GMT"}}, 0, true},
		{"milliseconds", http.Header{"Retry-After-Ms": {"250"}}, 250 * time.Millisecond, true},
		{"x-ms milliseconds", http.Header{"X-Ms-Retry-After-Ms": {"1500"}}, 1500 * time.Millisecond, true},
		{"milliseconds win over seconds", http.Header{"Retry-After-Ms": {"100"}, "Retry-After": {"9"}}, 100 * time.Millisecond, true},
		{"nothing", http.Header{}, 0, false},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0, false},
		{"a negative value", http.Header{"Retry-After": {"-1"}}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, named := RetryAfter(tt.header, now)
			assert.Equal(t, tt.named, named)
			assert.Equal(t, tt.want, got)
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
