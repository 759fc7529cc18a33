package grant

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"graphuserstimer/internal/graph"
)

// Graph error codes a grant acts on.
const (
	codeRequestDenied = "Authorization_RequestDenied"
	codeBadRequest    = "Request_BadRequest"
)

// alreadyExists is how Graph words a duplicate app role assignment.
const alreadyExists = "already exists"

// advise adds to a refused directory request what an administrator can do
// about it. Every other error passes through as it is.
func advise(err error) error {
	e, ok := errors.AsType[*graph.ResponseError](err)
	if !ok {
		return err
	}
	switch e.StatusCode {
	case http.StatusForbidden:
		return fmt.Errorf("%w: the account you signed in with may not grant application permissions. Sign in as a "+
			"Privileged Role Administrator or a Global Administrator (az login), or use a principal that "+
			"holds the application permissions AppRoleAssignment.ReadWrite.All and Application.Read.All", err)
	case http.StatusUnauthorized:
		return fmt.Errorf("%w: Graph refused the token: sign in again (az login), and check that -graph names the Graph "+
			"of the tenant you signed in to", err)
	}
	return err
}

// duplicate reports whether Graph refused an assignment because it exists.
func duplicate(e *graph.ResponseError) bool {
	return e.StatusCode == http.StatusBadRequest && e.Code == codeBadRequest &&
		strings.Contains(strings.ToLower(e.Message), alreadyExists)
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
