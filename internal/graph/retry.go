package graph

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retryPolicy decides how often and how long to wait before a retry.
type retryPolicy struct {
	maxRetries int
	delay      time.Duration
	maxDelay   time.Duration
}

func newRetryPolicy(o *ClientOptions) retryPolicy {
	p := retryPolicy{maxRetries: o.MaxRetries, delay: o.RetryDelay, maxDelay: o.MaxRetryDelay}
	switch {
	case p.maxRetries == 0:
		p.maxRetries = 6
	case p.maxRetries < 0:
		p.maxRetries = 0
	}
	if p.delay <= 0 {
		p.delay = 500 * time.Millisecond
	}
	if p.maxDelay <= 0 {
		p.maxDelay = 60 * time.Second
	}
	return p
}

// backoff is the wait before retry number n (1-based) when the service
// named none: exponential with ±20 % jitter, capped.
func (p retryPolicy) backoff(n int) time.Duration {
	d := p.delay << min(n-1, 16)
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	return min(d, p.maxDelay)
}

// retriable reports whether a response status is worth another try.
func retriable(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// throttled reports whether a response status is Graph telling the client to
// slow down.
func throttled(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// RetryAfter reads how long a response asks the client to wait: the
// retry-after-ms or x-ms-retry-after-ms headers in milliseconds, or
// Retry-After in seconds, whole or fractional ("2.128"), or as an HTTP date.
// It returns false when the response names no usable wait.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	for _, name := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if v := strings.TrimSpace(h.Get(name)); v != "" {
			if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 && ms < 1e12 {
				return time.Duration(ms * float64(time.Millisecond)), true
			}
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s < 0 || s > 1e9 {
			return 0, false
		}
		return time.Duration(s * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// wait sleeps for d unless ctx ends first. A wait that would outlive ctx's
// deadline is not started: it fails at once.
func wait(ctx context.Context, d time.Duration) error {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return fmt.Errorf("waiting %s to retry would pass the run's deadline: %w", d.Round(time.Millisecond), context.DeadlineExceeded)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
