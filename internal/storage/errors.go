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
	// ErrUnreachable is storage giving no answer: the connection was
	// refused, the name did not resolve, TLS failed, or a try timed out.
	ErrUnreachable = errors.New("storage unreachable")
)

// Error is a failed storage operation, with the facts a caller needs to say
// what went wrong. It holds no secret.
type Error struct {
	// Op is what was being done, such as "get" or "stage block".
	Op string
	// Container and Blob say on what; Blob is empty for container
	// operations.
	Container, Blob string
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

// Is matches the kind of failure: ErrNotFound, ErrConflict, ErrForbidden or
// ErrUnreachable.
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
	e := &Error{Op: op, Container: c.name, Blob: blob, Err: err}
	var re *azcore.ResponseError
	var te *transportError
	switch {
	case errors.As(err, &re):
		e.StatusCode, e.Code = re.StatusCode, re.ErrorCode
		if re.RawResponse != nil {
			e.RequestID = re.RawResponse.Header.Get("x-ms-request-id")
		}
		e.kind = responseKind(op, re.StatusCode, re.ErrorCode)
	case ctx.Err() != nil:
		// The caller's deadline or cancellation, which errors.Is finds.
	case errors.As(err, &te):
		e.kind = ErrUnreachable
	}
	return e
}

// responseKind classifies storage's answer to op.
func responseKind(op string, status int, code string) error {
	switch {
	case status == http.StatusNotFound && code == "BlobNotFound":
		return ErrNotFound
	case op == opPut && (status == http.StatusPreconditionFailed || code == "BlobAlreadyExists"):
		// If-Match lost (412 ConditionNotMet), or If-None-Match: * found the
		// blob: 409 BlobAlreadyExists from Azurite, 412 from Azure.
		return ErrConflict
	case status == http.StatusForbidden && strings.HasPrefix(code, "Authorization"):
		return ErrForbidden
	}
	return nil
}
