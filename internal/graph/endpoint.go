package graph

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
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

// DefaultEndpoint is Microsoft Graph's root in Azure's public cloud.
const DefaultEndpoint = "https://graph.microsoft.com"

// ParseEndpoint checks that s is a bare Graph root: https, or http on a
// loopback address for local fakes, with no path, query or credentials. It
// returns the root normalised (host in lower case, no trailing dot, no
// default port), the one origin a bearer token is ever sent to. Its errors
// never repeat credentials written in s.
func ParseEndpoint(s string) (*url.URL, error) {
	if hasUserInfo(s) {
		return nil, errors.New("the URL must not carry credentials (user:password@): managed identity needs none")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute URL such as %s", s, DefaultEndpoint)
	}
	switch {
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.ForceQuery, u.Fragment != "":
		return nil, fmt.Errorf("%q must be the Graph root alone, such as %s (no path, query or fragment)", s, DefaultEndpoint)
	case u.Scheme == "https":
	case u.Scheme == "http" && IsLoopback(u.Hostname()):
	case u.Scheme == "http":
		return nil, fmt.Errorf("%q uses plain http: a token is only sent over https, or over http to a loopback address for local fakes", s)
	default:
		return nil, fmt.Errorf("%q must be an https URL", s)
	}
	root, err := originOf(u)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	return root, nil
}

// hasUserInfo reports whether s names credentials before its host, parsable
// or not: an @ in the part between "//" and the path.
func hasUserInfo(s string) bool {
	_, rest, ok := strings.Cut(s, "//")
	if !ok {
		return false
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return strings.Contains(rest, "@")
}

// originOf is u's scheme, host and port, normalised so that two spellings of
// one origin compare equal: lower case, no trailing dot on the host, no
// default port.
func originOf(u *url.URL) (*url.URL, error) {
	scheme := strings.ToLower(u.Scheme)
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return nil, errors.New("the URL has no host")
	}
	port := u.Port()
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port %q is not a TCP port (1 to 65535)", port)
		}
		port = strconv.Itoa(n)
	}
	if scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return &url.URL{Scheme: scheme, Host: host}, nil
}

// IsLoopback reports whether host names this machine: localhost or an
// address in 127.0.0.0/8 or ::1.
func IsLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Scope is the token scope for a Graph root.
func Scope(root *url.URL) string {
	return root.Scheme + "://" + root.Host + "/.default"
}

// EndpointOptions configure an Endpoint. The zero value is ready for Azure.
type EndpointOptions struct {
	// Transport sends the HTTP requests; nil means a client like azcore's
	// default. An *http.Client is used with its redirects turned off, so
	// that the endpoint decides where a redirect may lead; any other
	// Transporter must not follow redirects itself.
	Transport policy.Transporter
	// ApplicationID names the caller in the User-Agent.
	ApplicationID string
	// Retry is azcore's retry policy; the zero value is azcore's default.
	Retry policy.RetryOptions
	// StallTimeout is how long a streamed response may keep the caller
	// waiting for its next byte, headers or body, before the attempt is
	// given up. 60 s when zero.
	StallTimeout time.Duration
	// TokenTimeout bounds each request the credential makes for a token.
	// 2 min when zero, room for a managed identity endpoint's own retries.
	TokenTimeout time.Duration
}

// DefaultTokenTimeout bounds a request for a token when EndpointOptions
// name no other bound.
const DefaultTokenTimeout = 2 * time.Minute

// Endpoint is one Graph root and the pipeline that sends requests there with
// a bearer token for it. It is the one place that builds Graph URLs, checks
// that a URL stays on the root's origin (nextLinks and redirects alike) and
// sends: the token never leaves for another scheme, host or port. It is safe
// for concurrent use; build it once, as its credential's token cache lives
// in it.
type Endpoint struct {
	root  *url.URL
	pl    runtime.Pipeline
	cred  *tokenCredential
	stall time.Duration
}

// NewEndpoint returns an Endpoint for the Graph root (such as
// https://graph.microsoft.com, as ParseEndpoint returns it) that
// authenticates with cred, asking for the single scope Scope(root). Plain
// http is let through only when the root is http, which ParseEndpoint allows
// on loopback alone.
func NewEndpoint(root *url.URL, cred azcore.TokenCredential, o *EndpointOptions) (*Endpoint, error) {
	if root == nil || root.Host == "" {
		return nil, fmt.Errorf("graph endpoint %v is not an absolute URL", root)
	}
	root, err := originOf(root)
	if err != nil {
		return nil, fmt.Errorf("graph endpoint: %w", err)
	}
	if o == nil {
		o = &EndpointOptions{}
	}
	tc := &tokenCredential{cred: cred, timeout: cmp.Or(o.TokenTimeout, DefaultTokenTimeout)}
	bearer := runtime.NewBearerTokenPolicy(tc, []string{Scope(root)}, &policy.BearerTokenOptions{
		InsecureAllowCredentialWithHTTP: root.Scheme == "http",
	})
	stall := o.StallTimeout
	if stall <= 0 {
		stall = 60 * time.Second
	}
	pl := runtime.NewPipeline(module, version, runtime.PipelineOptions{
		PerRetry: []policy.Policy{bearer, stallPolicy{}},
	}, &policy.ClientOptions{
		Transport: withoutRedirects(o.Transport),
		Telemetry: policy.TelemetryOptions{ApplicationID: o.ApplicationID},
		Retry:     o.Retry,
	})
	return &Endpoint{root: root, pl: pl, cred: tc, stall: stall}, nil
}

// withoutRedirects returns t with its redirects turned off, or, for nil, a
// client configured as azcore's default one is, without redirects.
func withoutRedirects(t policy.Transporter) policy.Transporter {
	switch c := t.(type) {
	case nil:
		return &http.Client{
			CheckRedirect: noRedirects,
			Transport: &http.Transport{
				Proxy: http.ProxyFromEnvironment,
				DialContext: (&net.Dialer{
					Timeout:   30 * time.Second,
					KeepAlive: 30 * time.Second,
				}).DialContext,
				ForceAttemptHTTP2:     true,
				MaxIdleConns:          100,
				MaxIdleConnsPerHost:   64,
				IdleConnTimeout:       90 * time.Second,
				TLSHandshakeTimeout:   10 * time.Second,
				ExpectContinueTimeout: time.Second,
				TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
				HTTP2:                 &http.HTTP2Config{SendPingTimeout: 10 * time.Second, PingTimeout: 5 * time.Second},
			},
		}
	case *http.Client:
		cp := *c
		cp.CheckRedirect = noRedirects
		return &cp
	}
	return t
}

// noRedirects hands a redirect back to the Endpoint, which decides whether
// it may be followed.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// RenewToken makes the next request get a new token from the token
// endpoint instead of the cached one, for when Graph refused a token that
// had worked.
func (e *Endpoint) RenewToken() { e.cred.renew() }

// Root returns the Graph root the endpoint sends to.
func (e *Endpoint) Root() *url.URL {
	u := *e.root
	return &u
}

// URL is the absolute URL of a Graph path, such as /v1.0/users, with query
// options given as name, value pairs; options with an empty value are left
// out. Values are escaped with %20 for spaces, which every OData parser
// reads.
func (e *Endpoint) URL(path string, query ...string) string {
	var b strings.Builder
	b.WriteString(e.root.String())
	b.WriteString(path)
	sep := byte('?')
	for i := 0; i+1 < len(query); i += 2 {
		if query[i+1] == "" {
			continue
		}
		b.WriteByte(sep)
		sep = '&'
		b.WriteString(query[i])
		b.WriteByte('=')
		b.WriteString(queryEscape(query[i+1]))
	}
	return b.String()
}

// queryEscape escapes a query value with %20 for spaces, as OData expects.
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// CheckOrigin parses rawURL and refuses it, with an *OriginError, unless it
// is on the endpoint's origin: the same scheme, host and port.
func (e *Endpoint) CheckOrigin(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, &OriginError{Endpoint: e.root.String(), Origin: "an unparsable URL"}
	}
	if o, err := originOf(u); err != nil || *o != *e.root {
		return nil, &OriginError{Endpoint: e.root.String(), Origin: describeOrigin(u)}
	}
	return u, nil
}

// describeOrigin names u's origin for a message, never its path or query,
// which can carry page tokens, nor any credentials.
func describeOrigin(u *url.URL) string {
	if u.Scheme == "" && u.Host == "" {
		return "a URL without scheme and host"
	}
	return u.Scheme + "://" + u.Host
}

// maxRedirects bounds how many same-origin redirects one request follows.
const maxRedirects = 5

// Stream sends a GET for rawURL and hands back the live response, whatever
// its status, whose body the caller must close. header is added to the
// request. A redirect is followed only on the endpoint's origin; one that
// leads anywhere else is an *OriginError and is never sent. An attempt on
// which no byte arrives for the stall timeout ends with an error wrapping
// ErrStalled; the time the credential takes to get a token is not counted.
func (e *Endpoint) Stream(ctx context.Context, rawURL string, header http.Header) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	guard := &stallGuard{cancel: cancel, stall: e.stall}
	ctx = context.WithValue(ctx, stallKey{}, guard)
	resp, err := e.send(ctx, http.MethodGet, rawURL, header, nil)
	if err != nil {
		if errors.Is(context.Cause(ctx), ErrStalled) {
			err = fmt.Errorf("%w for %s waiting for the answer", ErrStalled, e.stall)
		}
		cancel(nil)
		return nil, err
	}
	resp.Body = &stallReader{ReadCloser: resp.Body, ctx: ctx, cancel: cancel, guard: guard}
	return resp, nil
}

// Call sends method rawURL, with body encoded as JSON when it is not nil,
// and decodes an answer of status want into out (unless out is nil). Any
// other status is a *ResponseError. Redirects are refused.
func (e *Endpoint) Call(ctx context.Context, method, rawURL string, body, out any, want int) error {
	resp, err := e.send(ctx, method, rawURL, nil, body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return ReadResponseError(resp)
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := runtime.UnmarshalAsJSON(resp, out); err != nil {
		return fmt.Errorf("decode the answer to %s %s: %w", method, describeOrigin(resp.Request.URL)+resp.Request.URL.Path, err)
	}
	return nil
}

// send sends one request through the pipeline, after checking its URL's
// origin, and follows a GET's redirects that stay on the origin. A body is
// streamed only when the request's context carries a stall guard.
func (e *Endpoint) send(ctx context.Context, method, rawURL string, header http.Header, body any) (*http.Response, error) {
	// azcore's retry policy reports the context's error when the context
	// ends, even if it ended while the credential waited for a token: the
	// credential keeps its error here, so that the wait is not taken for
	// one on Graph.
	failed := &tokenFailure{}
	ctx = context.WithValue(ctx, tokenFailureKey{}, failed)
	for hops := 0; ; hops++ {
		if _, err := e.CheckOrigin(rawURL); err != nil {
			return nil, err
		}
		req, err := runtime.NewRequest(ctx, method, rawURL)
		if err != nil {
			return nil, fmt.Errorf("build request: %w", err)
		}
		req.Raw().Header.Set("Accept", "application/json")
		for k, vs := range header {
			req.Raw().Header[k] = vs
		}
		if body != nil {
			if err := runtime.MarshalAsJSON(req, body); err != nil {
				return nil, fmt.Errorf("encode request: %w", err)
			}
		}
		if _, ok := ctx.Value(stallKey{}).(*stallGuard); ok {
			runtime.SkipBodyDownload(req)
		}
		resp, err := e.pl.Do(req)
		if err != nil {
			if _, ok := errors.AsType[*TokenError](err); !ok && failed.err != nil {
				err = failed.err
			}
			return nil, err
		}
		if !isRedirect(resp.StatusCode) {
			return resp, nil
		}
		loc, err := resp.Location()
		drain(resp)
		if err != nil {
			return nil, &RedirectError{StatusCode: resp.StatusCode, Endpoint: e.root.String(), Reason: "no Location"}
		}
		if _, err := e.CheckOrigin(loc.String()); err != nil {
			oe := err.(*OriginError)
			oe.Redirect = resp.StatusCode
			return nil, oe
		}
		if method != http.MethodGet || hops >= maxRedirects {
			reason := fmt.Sprintf("more than %d redirects", maxRedirects)
			if method != http.MethodGet {
				reason = "a " + method + " is never redirected"
			}
			return nil, &RedirectError{StatusCode: resp.StatusCode, Endpoint: e.root.String(), Reason: reason}
		}
		rawURL = loc.String()
	}
}

// isRedirect reports whether status asks the client to go elsewhere.
func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// drain reads what is left of a response body, up to a bound, so the
// connection can be reused, and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
}

// ErrStalled marks an attempt given up because nothing arrived for too long.
var ErrStalled = errors.New("no byte arrived")

// stallKey is the context key of a request's stall guard.
type stallKey struct{}

// stallGuard gives up a request on which no byte arrives for too long. Its
// timer runs only while the transport is sending or a body is read, so that
// neither the credential getting a token nor a body waiting to be read
// counts as a stall.
type stallGuard struct {
	cancel context.CancelCauseFunc
	stall  time.Duration
	timer  *time.Timer
}

func (g *stallGuard) start() {
	if g.timer == nil {
		g.timer = time.AfterFunc(g.stall, func() { g.cancel(ErrStalled) })
		return
	}
	g.timer.Reset(g.stall)
}

func (g *stallGuard) stop() {
	if g.timer != nil {
		g.timer.Stop()
	}
}

// stallPolicy times the transport's part of each attempt, after the bearer
// token policy has done its part.
type stallPolicy struct{}

func (stallPolicy) Do(req *policy.Request) (*http.Response, error) {
	g, ok := req.Raw().Context().Value(stallKey{}).(*stallGuard)
	if !ok {
		return req.Next()
	}
	g.start()
	resp, err := req.Next()
	g.stop()
	return resp, err
}

// stallReader gives up a body on which a read waits too long for a byte.
// Only a read in progress is timed: a body not being read is not stalled.
type stallReader struct {
	io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	guard  *stallGuard
}

func (s *stallReader) Read(p []byte) (int, error) {
	s.guard.start()
	n, err := s.ReadCloser.Read(p)
	s.guard.stop()
	if err != nil && errors.Is(context.Cause(s.ctx), ErrStalled) {
		err = fmt.Errorf("%w for %s in the body", ErrStalled, s.guard.stall)
	}
	return n, err
}

// Close closes the body and lets the request's context go.
func (s *stallReader) Close() error {
	s.guard.stop()
	err := s.ReadCloser.Close()
	s.cancel(nil)
	return err
}
