package fakeazure

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"time"
)

// HostVersion is the Functions host version the fake host announces.
const HostVersion = "4.1046.100.25"

// Host plays the Functions host's side of the custom handler protocol
// against a handler listening at URL (such as http://127.0.0.1:PORT).
type Host struct {
	// URL is the handler's base URL.
	URL string
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
}

func (h Host) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return http.DefaultClient
}

// WaitReady polls GET / every 25 ms, as the host does, until the handler
// gives any HTTP answer; it gives up after 30 s or when ctx ends.
func (h Host) WaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL+"/", nil)
		if err != nil {
			return fmt.Errorf("wait for the handler: %w", err)
		}
		resp, err := h.client().Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the handler at %s never answered GET /: %w", h.URL, err)
		case <-tick.C:
		}
	}
}

// Invocation is what the handler answered an invocation with.
type Invocation struct {
	// ID is the invocation ID the host sent.
	ID string
	// Status is the HTTP status.
	Status int
	// Header is the response header.
	Header http.Header
	// Body is the response body.
	Body []byte
}

// Invoke POSTs an invocation body to /<function> as the host does: chunked,
// without Content-Length, with the host's headers.
func (h Host) Invoke(ctx context.Context, function string, body []byte) (Invocation, error) {
	id := newGUID()
	// A reader of unknown length makes net/http send the body chunked.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL+"/"+function, io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		return Invocation{}, fmt.Errorf("invoke %s: %w", function, err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Azure-Functions-InvocationId", id)
	req.Header.Set("X-Azure-Functions-HostVersion", HostVersion)
	req.Header.Set("User-Agent", "Azure-Functions-Host/"+HostVersion)
	req.Header.Set("traceparent", traceparent())
	resp, err := h.client().Do(req)
	if err != nil {
		return Invocation{ID: id}, fmt.Errorf("invoke %s: %w", function, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Invocation{ID: id}, fmt.Errorf("invoke %s: read the response: %w", function, err)
	}
	return Invocation{ID: id, Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// traceparent makes a W3C trace context header like the host's.
func traceparent() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-00"
}
