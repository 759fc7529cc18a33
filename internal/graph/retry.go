package graph

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
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
// A number is decimal digits with at most one point between them, spaces
// around it trimmed; anything else (NaN, Inf, exponents, signs, underscores,
// hex) names no wait, and the next header is read. It returns false when
// the response names no usable wait. A wait too long for a Duration is
// maxWait, longer than any limit, so that every wait over a limit is
// refused the same way.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	for _, name := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if d, ok := parseDecimal(h.Get(name), time.Millisecond); ok {
			return d, true
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if d, ok := parseDecimal(v, time.Second); ok {
		return d, true
	}
	if t, err := http.ParseTime(v); err == nil {
		// Sub saturates a date centuries away at the largest Duration.
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// maxWait stands for a wait too long to hold in a Duration.
const maxWait = time.Duration(math.MaxInt64)

// parseDecimal reads s, spaces around it trimmed, as a count of unit (a
// power of ten nanoseconds) written [0-9]+(\.[0-9]+)?. Digits finer than a
// nanosecond are dropped, and a count too large for a Duration is maxWait.
func parseDecimal(s string, unit time.Duration) (time.Duration, bool) {
	whole, frac, point := strings.Cut(strings.TrimSpace(s), ".")
	if !isDigits(whole) || point && !isDigits(frac) {
		return 0, false
	}
	var n int64
	for i := range len(whole) {
		if n > (math.MaxInt64-9)/10 {
			return maxWait, true
		}
		n = n*10 + int64(whole[i]-'0')
	}
	if n > int64(maxWait/unit) {
		return maxWait, true
	}
	d := time.Duration(n) * unit
	var f time.Duration
	for i, scale := 0, unit/10; i < len(frac) && scale > 0; i, scale = i+1, scale/10 {
		f += time.Duration(frac[i]-'0') * scale
	}
	if d > maxWait-f {
		return maxWait, true
	}
	return d + f, true
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
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
