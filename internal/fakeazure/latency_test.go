package fakeazure

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func timed(t *testing.T, gs graphServer, target string, header http.Header) (graphResponse, time.Duration) {
	t.Helper()
	start := time.Now()
	r := gs.get(t, target, header)
	return r, time.Since(start)
}

func TestLatencyDelaysEveryResponseOfTheUserEndpoints(t *testing.T) {
	const latency = 80 * time.Millisecond
	gs := newGraphServerWith(t, GraphOptions{Users: 10, Latency: latency})

	for _, c := range []struct {
		target string
		header http.Header
	}{
		{gs.srv.URL + "/v1.0/users", bearer(graphToken)},
		{gs.srv.URL + "/v1.0/users/$count", eventualBearer()},
		{gs.srv.URL + "/v1.0/users/delta", bearer(graphToken)},
		{gs.srv.URL + "/v1.0/users?$top=0", bearer(graphToken)},
		{gs.srv.URL + "/v1.0/users", bearer("wrong")},
	} {
		r, took := timed(t, gs, c.target, c.header)
		assert.GreaterOrEqual(t, took, latency, "%s answered %d", c.target, r.status)
	}
}

func TestAFaultsDelayWinsOverTheLatency(t *testing.T) {
	gs := newGraphServerWith(t, GraphOptions{Users: 10, Latency: 5 * time.Second,
		Fault: func(PageRequest) Fault { return Fault{Delay: 10 * time.Millisecond} }})

	r, took := timed(t, gs, gs.srv.URL+"/v1.0/users", bearer(graphToken))

	pageOf(t, r)
	assert.Less(t, took, 2*time.Second)
}

func TestBytesPerSecondPacesEveryPageUnlessAFaultSetsItsOwn(t *testing.T) {
	paced := newGraphServerWith(t, GraphOptions{Users: 40, BytesPerSecond: 40_000})
	r, took := timed(t, paced, paced.srv.URL+"/v1.0/users?$top=40", bearer(graphToken))
	assert.Len(t, pageOf(t, r).Value, 40)
	want := time.Duration(float64(len(r.raw)) / 40_000 * float64(time.Second))
	assert.GreaterOrEqual(t, took, want-15*time.Millisecond, "%d bytes", len(r.raw))

	faster := newGraphServerWith(t, GraphOptions{Users: 40, BytesPerSecond: 1000,
		Fault: func(PageRequest) Fault { return Fault{BytesPerSecond: 10 << 20} }})
	r, took = timed(t, faster, faster.srv.URL+"/v1.0/users?$top=40", bearer(graphToken))
	assert.Len(t, pageOf(t, r).Value, 40)
	assert.Less(t, took, 2*time.Second, "the fault's rate wins")
}

func TestWaitsEndWhenTheClientGoesAway(t *testing.T) {
	for _, o := range []GraphOptions{
		{Latency: time.Hour},
		{BytesPerSecond: 1},
	} {
		o.Users, o.Token = 10, graphToken
		g := NewGraph(o)
		returned := make(chan struct{}, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			g.ServeHTTP(w, r)
			returned <- struct{}{}
		}))
		t.Cleanup(srv.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1.0/users", nil)
		require.NoError(t, err)
		req.Header = bearer(graphToken)

		resp, err := srv.Client().Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			t.Fatalf("with %+v, the handler still waits for a client that left", o)
		}
	}
}
