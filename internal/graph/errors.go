package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// The errors of this package state facts: what Graph or the token endpoint
// answered, or which rule a response broke. What to do about them is the
// caller's to say, since only the caller knows its settings.

// ResponseError is a Graph response that is not a success, with what Graph
// said about it.
type ResponseError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is Graph's error code, such as Authorization_RequestDenied.
	Code string
	// Message is Graph's error message.
	Message string
	// RequestID identifies the request to Microsoft support.
	RequestID string
}

// Error says what Graph answered.
func (e *ResponseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request-id %s]", e.RequestID)
	}
	return b.String()
}

// CodeExpiredPageToken is Graph's error code for a nextLink whose page token
// has expired; the listing has to start again.
const CodeExpiredPageToken = "Directory_ExpiredPageToken"

// maxErrorBody bounds how much of an error body is read.
const maxErrorBody = 64 << 10

// ReadResponseError reads Graph's error body from resp, which it closes.
func ReadResponseError(resp *http.Response) *ResponseError {
	defer resp.Body.Close()
	e := &ResponseError{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("request-id")}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var eb struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError struct {
				RequestID string `json:"request-id"`
			} `json:"innerError"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
		if e.RequestID == "" {
			e.RequestID = eb.Error.InnerError.RequestID
		}
	}
	return e
}

// OriginError is a URL refused because it is not on the endpoint's origin:
// a nextLink or a redirect that would take the token elsewhere. Nothing was
// sent there.
type OriginError struct {
	// Endpoint is the one origin requests may go to.
	Endpoint string
	// Origin is the refused URL's scheme and host, never its path or query.
	Origin string
	// Redirect is the status of the redirect that named the URL, or 0 when
	// it came from a response body, such as a nextLink.
	Redirect int
}

func (e *OriginError) Error() string {
	if e.Redirect != 0 {
		return fmt.Sprintf("refusing to follow a %d redirect to %s: the token is only sent to %s", e.Redirect, e.Origin, e.Endpoint)
	}
	return fmt.Sprintf("refusing to send the token to %s: links must stay on %s", e.Origin, e.Endpoint)
}

// RedirectError is a redirect on the endpoint's own origin that was not
// followed.
type RedirectError struct {
	StatusCode int
	Endpoint   string
	Reason     string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("graph at %s answered %d %s and it was not followed: %s", e.Endpoint, e.StatusCode, http.StatusText(e.StatusCode), e.Reason)
}

// TokenError is a failure to get a token for Graph from the credential.
type TokenError struct {
	// Scope is the scope the token was asked for.
	Scope string
	// StatusCode is the token endpoint's HTTP status, or 0 when it gave
	// none (it could not be reached, or did not answer in time).
	StatusCode int
	// Timeout is the bound the request for a token reached, or 0.
	Timeout time.Duration
	// Err is the credential's error.
	Err error
}

func (e *TokenError) Error() string {
	if e.Timeout > 0 {
		return fmt.Sprintf("get a token for %s: no token within %s: %v", e.Scope, e.Timeout, e.Err)
	}
	return fmt.Sprintf("get a token for %s: %v", e.Scope, e.Err)
}

// Unwrap returns the credential's error.
func (e *TokenError) Unwrap() error { return e.Err }

// tokenCredential marks its credential's errors as TokenErrors and bounds
// each request for a token, so that a token endpoint that hangs fails the
// request instead of holding it. After renew, its next request for a token
// bypasses the credential's cache.
type tokenCredential struct {
	cred    azcore.TokenCredential
	timeout time.Duration
	fresh   atomic.Bool
}

// renew makes the next request for a token ask the token endpoint for a new
// one, rather than take the cached one Graph refused.
func (c *tokenCredential) renew() { c.fresh.Store(true) }

func (c *tokenCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if c.fresh.CompareAndSwap(true, false) && o.Claims == "" {
		// Claims make MSAL skip its cache, as after a claims challenge: a
		// token not valid before now is a token issued from now on.
		o.Claims = fmt.Sprintf(`{"access_token":{"nbf":{"essential":true,"value":"%d"}}}`, time.Now().Unix())
	}
	tctx := ctx
	if c.timeout > 0 {
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeoutCause(ctx, c.timeout, errTokenTimeout)
		defer cancel()
	}
	tk, err := c.cred.GetToken(tctx, o)
	if err == nil {
		return tk, nil
	}
	te := &TokenError{Scope: strings.Join(o.Scopes, " "), Err: err}
	switch {
	case ctx.Err() != nil:
		// The credential words the context's end as text: keep it as an
		// error, so that the caller can tell a deadline from a failure.
		te.Err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
	case errors.Is(context.Cause(tctx), errTokenTimeout):
		te.Timeout = c.timeout
	}
	if afe, ok := errors.AsType[*azidentity.AuthenticationFailedError](err); ok && afe.RawResponse != nil {
		te.StatusCode = afe.RawResponse.StatusCode
	}
	if f, ok := ctx.Value(tokenFailureKey{}).(*tokenFailure); ok {
		f.err = te
	}
	return tk, te
}

// tokenFailureKey is the context key of a request's tokenFailure.
type tokenFailureKey struct{}

// tokenFailure keeps the error of the last request for a token made for one
// request to Graph.
type tokenFailure struct{ err *TokenError }

// errTokenTimeout is the cause of a request for a token given up.
var errTokenTimeout = errors.New("the token endpoint did not answer in time")
