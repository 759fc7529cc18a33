// Package graph is a small Microsoft Graph client on an azcore pipeline: the
// bearer-token policy authenticates, the client retries, and pages of users
// are decoded from the response stream.
package graph

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

const (
	module  = "graphuserstimer"
	version = "v0.1.0"
)

// ClientOptions configures a Client. The zero value is ready for Azure.
type ClientOptions struct {
	// Transport sends the HTTP requests; nil means azcore's default.
	Transport policy.Transporter
	// MaxRetries bounds the retries of one request or page: 6 when zero,
	// none when negative.
	MaxRetries int
	// RetryDelay is the first backoff when the response names no wait; it
	// doubles each retry. 500 ms when zero.
	RetryDelay time.Duration
	// MaxRetryDelay caps each wait. A Retry-After over it is not waited for
	// and fails the request. 60 s when zero.
	MaxRetryDelay time.Duration
	// StallTimeout is how long a response may keep the client waiting for
	// its next byte, headers or body, before the attempt is given up and
	// tried again. 60 s when zero.
	StallTimeout time.Duration
}

// Client sends requests to one Graph endpoint, with a token for that
// endpoint's resource. It is safe for concurrent use; build it once, as its
// credential's token cache lives in it.
type Client struct {
	endpoint *url.URL
	pl       runtime.Pipeline
	retry    retryPolicy
	stall    time.Duration
}

// NewClient returns a Client for the Graph root endpoint (such as
// https://graph.microsoft.com) that authenticates with cred, asking for the
// single scope <endpoint>/.default.
func NewClient(endpoint *url.URL, cred azcore.TokenCredential, o *ClientOptions) (*Client, error) {
	if o == nil {
		o = &ClientOptions{}
	}
	root, pl, err := NewPipeline(endpoint, tokenCredential{cred}, PipelineOptions{
		Transport:     o.Transport,
		ApplicationID: "GraphUsersTimer",
		// The client retries itself: it reads fractional Retry-After values
		// and re-fetches pages whose body breaks off, which azcore does not.
		Retry: policy.RetryOptions{MaxRetries: -1},
	})
	if err != nil {
		return nil, err
	}
	stall := o.StallTimeout
	if stall <= 0 {
		stall = 60 * time.Second
	}
	return &Client{endpoint: root, pl: pl, retry: newRetryPolicy(o), stall: stall}, nil
}

// PipelineOptions configure NewPipeline.
type PipelineOptions struct {
	// Transport sends the HTTP requests; nil means azcore's default.
	Transport policy.Transporter
	// ApplicationID names the caller in the User-Agent.
	ApplicationID string
	// Retry is azcore's retry policy; the zero value is azcore's default.
	Retry policy.RetryOptions
}

// NewPipeline returns the Graph root of endpoint (its scheme and host) and an
// azcore pipeline that sends every request with a bearer token from cred for
// the one scope Scope(root). Plain http is let through only when the
// endpoint is http, which config allows on loopback alone.
func NewPipeline(endpoint *url.URL, cred azcore.TokenCredential, o PipelineOptions) (*url.URL, runtime.Pipeline, error) {
	if endpoint == nil || endpoint.Host == "" {
		return nil, runtime.Pipeline{}, fmt.Errorf("graph endpoint %v is not an absolute URL", endpoint)
	}
	root := &url.URL{Scheme: endpoint.Scheme, Host: endpoint.Host}
	bearer := runtime.NewBearerTokenPolicy(cred, []string{Scope(root)}, &policy.BearerTokenOptions{
		InsecureAllowCredentialWithHTTP: root.Scheme == "http",
	})
	pl := runtime.NewPipeline(module, version, runtime.PipelineOptions{
		PerRetry: []policy.Policy{bearer},
	}, &policy.ClientOptions{
		Transport: o.Transport,
		Telemetry: policy.TelemetryOptions{ApplicationID: o.ApplicationID},
		Retry:     o.Retry,
	})
	return root, pl, nil
}

// Scope is the token scope for a Graph root endpoint.
func Scope(endpoint *url.URL) string {
	return endpoint.Scheme + "://" + endpoint.Host + "/.default"
}

// checkOrigin refuses a URL on any other scheme or host than the endpoint's,
// so the bearer token never leaves for a host a response named.
func (c *Client) checkOrigin(u *url.URL) error {
	if !strings.EqualFold(u.Scheme, c.endpoint.Scheme) || !strings.EqualFold(u.Host, c.endpoint.Host) {
		return fmt.Errorf("refusing to send the token to %s://%s: Graph links must stay on %s (GRAPH_ENDPOINT)", u.Scheme, u.Host, c.endpoint)
	}
	return nil
}

// send sends one GET through the pipeline and hands back the live response
// stream, which the caller must close. An attempt on which no byte arrives
// for the stall timeout ends with an error wrapping errStalled.
func (c *Client) send(ctx context.Context, rawURL string) (*http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", rawURL, err)
	}
	if err := c.checkOrigin(u); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	req, err := runtime.NewRequest(ctx, http.MethodGet, rawURL)
	if err != nil {
		cancel(nil)
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Raw().Header.Set("Accept", "application/json")
	runtime.SkipBodyDownload(req)

	timer := time.AfterFunc(c.stall, func() { cancel(errStalled) })
	resp, err := c.pl.Do(req)
	timer.Stop()
	if err != nil {
		if errors.Is(context.Cause(ctx), errStalled) {
			err = fmt.Errorf("%w for %s waiting for the answer", errStalled, c.stall)
		}
		cancel(nil)
		return nil, err
	}
	resp.Body = &stallReader{ReadCloser: resp.Body, ctx: ctx, cancel: cancel, timer: timer, stall: c.stall}
	return resp, nil
}

// errStalled marks an attempt given up because nothing arrived for too long.
var errStalled = errors.New("no byte arrived")

// stallReader gives up a body on which a read waits too long for a byte.
// Only a read in progress is timed: a body not being read is not stalled.
type stallReader struct {
	io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	stall  time.Duration
}

func (s *stallReader) Read(p []byte) (int, error) {
	s.timer.Reset(s.stall)
	n, err := s.ReadCloser.Read(p)
	s.timer.Stop()
	if err != nil && errors.Is(context.Cause(s.ctx), errStalled) {
		err = fmt.Errorf("%w for %s in the body", errStalled, s.stall)
	}
	return n, err
}

// Close closes the body and lets the request's context go.
func (s *stallReader) Close() error {
	s.timer.Stop()
	err := s.ReadCloser.Close()
	s.cancel(nil)
	return err
}
