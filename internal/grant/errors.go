package grant

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Graph error codes a grant acts on.
const (
	codeRequestDenied = "Authorization_RequestDenied"
	codeBadRequest    = "Request_BadRequest"
)

// alreadyExists is how Graph words a duplicate app role assignment.
const alreadyExists = "already exists"

// ResponseError is a Graph response that is not a success, with what Graph
// said about it and, where it can, what to do.
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

// Error says what Graph answered and what to do about it.
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
	if hint := e.hint(); hint != "" {
		b.WriteString("\n")
		b.WriteString(hint)
	}
	return b.String()
}

func (e *ResponseError) hint() string {
	switch e.StatusCode {
	case http.StatusForbidden:
		return "The account you signed in with may not grant application permissions. Sign in as a " +
			"Privileged Role Administrator or a Global Administrator (az login), or use a principal that " +
			"holds the application permissions AppRoleAssignment.ReadWrite.All and Application.Read.All."
	case http.StatusUnauthorized:
		return "Graph refused the token: sign in again (az login), and check that -graph names the Graph " +
			"of the tenant you signed in to."
	}
	return ""
}

// duplicate reports whether Graph refused an assignment because it exists.
func (e *ResponseError) duplicate() bool {
	return e.StatusCode == http.StatusBadRequest && e.Code == codeBadRequest &&
		strings.Contains(strings.ToLower(e.Message), alreadyExists)
}

// maxErrorBody bounds how much of an error body is read.
const maxErrorBody = 64 << 10

// newResponseError reads Graph's error body from resp, which it closes.
func newResponseError(resp *http.Response) *ResponseError {
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

// NotFoundError says no service principal has an appId in the tenant the
// administrator signed in to.
type NotFoundError struct {
	// AppID is the appId looked for: a managed identity's client ID.
	AppID string
	// What names the service principal, such as "the managed identity".
	What string
}

// Error says where to look for the right ID.
func (e *NotFoundError) Error() string {
	if e.AppID == GraphAppID {
		return fmt.Sprintf("no service principal for Microsoft Graph (appId %s) in this tenant: check -graph and the tenant you signed in to", e.AppID)
	}
	return fmt.Sprintf("no service principal has appId %s in this tenant, so %s was not found: check the client ID "+
		"(az identity show -g <group> -n <identity> --query clientId -o tsv) and that you signed in to the identity's "+
		"tenant (az login --tenant <tenant>, or -tenant); a new identity can take a minute to appear", e.AppID, e.What)
}

// PermissionError says a permission cannot be granted to a managed identity,
// and what to ask for instead.
type PermissionError struct {
	// Permission is the value asked for, such as User.Read.All.
	Permission string
	// Reason says why it cannot be granted.
	Reason string
	// Suggestions are application permissions with close names.
	Suggestions []string
}

// PermissionsReference is where Microsoft documents Graph's permissions.
const PermissionsReference = "https://learn.microsoft.com/graph/permissions-reference"

// Error names the permission, the reason and the close matches.
func (e *PermissionError) Error() string {
	msg := fmt.Sprintf("%s: %s", e.Permission, e.Reason)
	if len(e.Suggestions) > 0 {
		return msg + "; did you mean " + strings.Join(e.Suggestions, ", ") + "?"
	}
	return msg + "; Microsoft Graph's application permissions are listed at " + PermissionsReference
}
