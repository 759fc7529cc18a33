package storage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Kinds of failure a caller tells apart with errors.Is.
var (
	// ErrNotFound is a blob that does not exist.
	ErrNotFound = errors.New("blob not found")
	// ErrConflict is a conditional write that lost: someone else wrote the
	// blob since its ETag was read, or created it first.
	ErrConflict = errors.New("blob changed meanwhile")
	// ErrForbidden is storage refusing the caller an action: the identity
	// has no data role on the account or container, or a network rule
	// keeps it out (403 AuthorizationPermissionMismatch,
	// AuthorizationFailure).
	ErrForbidden = errors.New("not authorized")
	// ErrAuthentication is storage refusing how a request signed in: a
	// wrong or rotated account key, a bad or expired SAS, a clock far off,
	// or a token for another audience or tenant (403 AuthenticationFailed).
	ErrAuthentication = errors.New("sign-in refused")
	// ErrLeased is a write to a blob someone holds a lease on, which no
	// one can write without the lease's ID until it is broken or expires
	// (412 LeaseIdMissing).
	ErrLeased = errors.New("blob leased")
	// ErrUnreachable is storage giving no answer: the connection was
	// refused, the name did not resolve, TLS failed, or a try timed out.
	ErrUnreachable = errors.New("storage unreachable")
)

// Error is a failed storage operation, with the facts a caller needs to say
// what went wrong. It holds no secret.
type Error struct {
	// Op is what was being done, such as "get" or "stage block".
	Op string
	// Account, Container and Blob say on what; Blob is empty for
	// container operations, Account when the endpoint does not tell it.
	Account, Container, Blob string
	// Auth is how the refused request signed in, SharedKey or
	// ManagedIdentity (a bearer token); 0 when storage did not answer.
	Auth Auth
	// StatusCode is the HTTP status storage answered; 0 when it did not
	// answer.
	StatusCode int
	// Code is storage's error code, such as AuthorizationPermissionMismatch.
	Code string
	// RequestID identifies the request to Azure support.
	RequestID string
	// Err is the cause: an *azcore.ResponseError when storage answered,
	// else the transport's or the context's error.
	Err error

	kind error // one of the Err* kinds, or nil
}

// Error says what failed and why, in one line.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(" ")
	b.WriteString(e.Container)
	if e.Blob != "" {
		b.WriteString("/")
		b.WriteString(e.Blob)
	}
	switch {
	case e.StatusCode != 0:
		fmt.Fprintf(&b, ": storage answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
		if e.Code != "" {
			fmt.Fprintf(&b, " (%s)", e.Code)
		}
		if e.RequestID != "" {
			fmt.Fprintf(&b, " [request-id %s]", e.RequestID)
		}
	case e.kind == ErrUnreachable:
		fmt.Fprintf(&b, ": %v: %v", ErrUnreachable, causeText(e.Err))
	default:
		fmt.Fprintf(&b, ": %v", causeText(e.Err))
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the kind of failure: ErrNotFound, ErrConflict, ErrForbidden,
// ErrAuthentication, ErrLeased or ErrUnreachable.
func (e *Error) Is(target error) bool { return e.kind != nil && target == e.kind }

// causeText is err's message without the request URL that *url.Error adds:
// the facts are in the cause, and the operation already says where.
func causeText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// transportError marks an error of the HTTP transport, so that no answer
// from storage is told apart from a failure of the credential, which brings
// its own transport.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// transport marks the errors of the transport it wraps.
type transport struct{ next policy.Transporter }

func (t transport) Do(req *http.Request) (*http.Response, error) {
	resp, err := t.next.Do(req)
	if err != nil {
		return nil, &transportError{err}
	}
	return resp, nil
}

// newError describes err, the failure of op on blob (empty for the
// container) in c. ctx is the operation's: when it is done, its error is the
// cause, not an unreachable storage.
func (c *Container) newError(ctx context.Context, op, blob string, err error) error {
	e := &Error{Op: op, Account: c.account(), Container: c.name, Blob: blob, Err: err}
	var re *azcore.ResponseError
	var te *transportError
	switch {
	case errors.As(err, &re):
		// azcore reads the code from x-ms-error-code, else from the body,
		// which Azure starts with a byte order mark; its search for <Code>
		// is not thrown by one.
		e.StatusCode, e.Code = re.StatusCode, re.ErrorCode
		if re.RawResponse != nil {
			e.RequestID = re.RawResponse.Header.Get("x-ms-request-id")
			e.Auth = signedInWith(re.RawResponse.Request)
		}
		e.kind = responseKind(op, re.StatusCode, re.ErrorCode)
	case ctx.Err() != nil:
		// The caller's deadline or cancellation, which errors.Is finds.
	case errors.As(err, &te):
		e.kind = ErrUnreachable
	}
	return e
}

// account is the storage account's name as the container's URL tells it:
// the first label of <account>.blob.<suffix>, or the path segment before
// the container's in Azurite's path-style URLs. Empty when neither fits.
func (c *Container) account() string {
	u, err := url.Parse(c.client.URL())
	if err != nil {
		return ""
	}
	u.Path = strings.TrimSuffix(strings.TrimRight(u.Path, "/"), "/"+c.name)
	return accountFromEndpoint(u)
}

// signedInWith tells how req signed in from its Authorization header, whose
// secret it leaves alone.
func signedInWith(req *http.Request) Auth {
	if req == nil {
		return 0
	}
	scheme, _, _ := strings.Cut(req.Header.Get("Authorization"), " ")
	switch {
	case strings.EqualFold(scheme, "SharedKey"):
		return SharedKey
	case strings.EqualFold(scheme, "Bearer"):
		return ManagedIdentity
	}
	return 0
}

// responseKind classifies storage's answer to op.
func responseKind(op string, status int, code string) error {
	switch {
	case status == http.StatusNotFound && code == "BlobNotFound":
		return ErrNotFound
	case code == "LeaseIdMissing":
		// A 412 too, but no one wrote the blob: it is held, and stays
		// unwritable until the lease is broken or expires.
		return ErrLeased
	case status == http.StatusForbidden && code == "AuthenticationFailed":
		return ErrAuthentication
	case op == opPut && (status == http.StatusPreconditionFailed || code == "BlobAlreadyExists"):
		// If-Match lost (412 ConditionNotMet), or If-None-Match: * found the
		// blob: 409 BlobAlreadyExists from Azurite, 412 from Azure.
		return ErrConflict
	case status == http.StatusForbidden && strings.HasPrefix(code, "Authorization"):
		return ErrForbidden
	}
	return nil
}
