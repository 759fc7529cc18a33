package grant

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"graphuserstimer/internal/graph"
)

// ServicePrincipal is the part of a Graph service principal a grant reads.
type ServicePrincipal struct {
	ID          string    `json:"id"`
	AppID       string    `json:"appId"`
	DisplayName string    `json:"displayName"`
	AppRoles    []AppRole `json:"appRoles"`
	// Scopes are the delegated permissions, read only to explain why one
	// cannot be granted to an identity.
	Scopes []PermissionScope `json:"oauth2PermissionScopes"`
}

// AppRole is an app role a resource service principal defines: an
// application permission when its AllowedMemberTypes hold "Application".
type AppRole struct {
	ID                 string   `json:"id"`
	Value              string   `json:"value"`
	DisplayName        string   `json:"displayName"`
	AllowedMemberTypes []string `json:"allowedMemberTypes"`
	IsEnabled          bool     `json:"isEnabled"`
}

// PermissionScope is a delegated permission.
type PermissionScope struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

// Assignment is an app role assignment: principal PrincipalID holds app role
// AppRoleID of resource ResourceID.
type Assignment struct {
	ID          string `json:"id,omitempty"`
	PrincipalID string `json:"principalId"`
	ResourceID  string `json:"resourceId"`
	AppRoleID   string `json:"appRoleId"`
}

// Plan is what granting permissions to an identity takes: who is who, and
// for each permission whether it is already granted.
type Plan struct {
	// Identity is the managed identity's service principal.
	Identity ServicePrincipal
	// Graph is Microsoft Graph's service principal, the resource whose app
	// roles are granted.
	Graph ServicePrincipal
	// Steps hold one permission each, in the order asked.
	Steps []Step
}

// Step is one permission of a Plan.
type Step struct {
	// Role is Graph's app role for the permission.
	Role AppRole
	// Existing is the id of the assignment that already grants it, or empty.
	Existing string
}

// Granted reports whether the identity already holds the permission.
func (s Step) Granted() bool { return s.Existing != "" }

// Request is the assignment that grants the step's permission.
func (p Plan) Request(s Step) Assignment {
	return Assignment{PrincipalID: p.Identity.ID, ResourceID: p.Graph.ID, AppRoleID: s.Role.ID}
}

var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Plan finds the service principal of the managed identity whose client ID
// is clientID and Microsoft Graph's, resolves each permission to Graph's app
// role, and reads which the identity already holds. It changes nothing. Every
// permission that cannot be granted is reported at once, before any is.
func (c *Client) Plan(ctx context.Context, clientID string, permissions []string) (Plan, error) {
	if !guid.MatchString(clientID) {
		return Plan{}, fmt.Errorf("client ID %q is not a GUID such as 11111111-2222-3333-4444-555555555555", clientID)
	}
	if len(permissions) == 0 {
		return Plan{}, errors.New("no permission to grant")
	}
	var p Plan
	var err error
	p.Identity, err = c.servicePrincipal(ctx, strings.ToLower(clientID), "id,appId,displayName", "the managed identity")
	if err != nil {
		return Plan{}, fmt.Errorf("find the managed identity's service principal: %w", err)
	}
	p.Graph, err = c.servicePrincipal(ctx, GraphAppID, "id,appId,displayName,appRoles,oauth2PermissionScopes", "Microsoft Graph")
	if err != nil {
		return Plan{}, fmt.Errorf("find Microsoft Graph's service principal: %w", err)
	}
	var problems []error
	for _, perm := range permissions {
		role, err := findRole(p.Graph, perm)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if !slices.ContainsFunc(p.Steps, func(s Step) bool { return s.Role.ID == role.ID }) {
			p.Steps = append(p.Steps, Step{Role: role})
		}
	}
	if len(problems) > 0 {
		return Plan{}, fmt.Errorf("cannot grant to a managed identity:\n%w", errors.Join(problems...))
	}
	held, err := c.assignments(ctx, p.Identity.ID)
	if err != nil {
		return Plan{}, fmt.Errorf("read the app roles %s already holds: %w", p.Identity.DisplayName, err)
	}
	for i, s := range p.Steps {
		for _, a := range held {
			if strings.EqualFold(a.ResourceID, p.Graph.ID) && strings.EqualFold(a.AppRoleID, s.Role.ID) {
				p.Steps[i].Existing = a.ID
				break
			}
		}
	}
	return p, nil
}

// servicePrincipal looks up the one service principal whose appId is appID.
func (c *Client) servicePrincipal(ctx context.Context, appID, selectList, what string) (ServicePrincipal, error) {
	// A GUID holds no quote, so the literal needs no escaping.
	target := c.url("/servicePrincipals", "$filter", "appId eq '"+appID+"'", "$select", selectList)
	var found []ServicePrincipal
	if err := getAll(ctx, c, target, func(sp ServicePrincipal) { found = append(found, sp) }); err != nil {
		return ServicePrincipal{}, err
	}
	switch len(found) {
	case 0:
		return ServicePrincipal{}, &NotFoundError{AppID: appID, What: what}
	case 1:
		// The id goes into the next requests' paths.
		if !guid.MatchString(found[0].ID) {
			return ServicePrincipal{}, fmt.Errorf("graph gave the service principal of appId %s the id %q, which is not a GUID", appID, found[0].ID)
		}
		return found[0], nil
	}
	return ServicePrincipal{}, fmt.Errorf("%d service principals have appId %s; Graph keeps one per tenant", len(found), appID)
}

// assignments reads every app role assignment the principal holds, page by
// page: a managed identity holds few, where Graph's own list of who holds its
// roles can be long.
func (c *Client) assignments(ctx context.Context, principalID string) ([]Assignment, error) {
	var all []Assignment
	err := getAll(ctx, c, c.url("/servicePrincipals/"+principalID+"/appRoleAssignments"), func(a Assignment) {
		all = append(all, a)
	})
	return all, err
}

// Assign creates the assignment that grants the step's permission. When
// Graph answers that it exists, because another administrator granted it
// since the plan was made, already is true and err nil.
func (c *Client) Assign(ctx context.Context, p Plan, s Step) (a Assignment, already bool, err error) {
	target := c.url("/servicePrincipals/" + p.Graph.ID + "/appRoleAssignedTo")
	err = c.do(ctx, http.MethodPost, target, p.Request(s), &a, http.StatusCreated)
	if e, ok := errors.AsType[*graph.ResponseError](err); ok && duplicate(e) {
		return Assignment{}, true, nil
	}
	if err != nil {
		return Assignment{}, false, fmt.Errorf("grant %s: %w", s.Role.Value, err)
	}
	return a, false, nil
}

// AssignURL is where Assign POSTs a plan's assignments.
func (c *Client) AssignURL(p Plan) string {
	return c.url("/servicePrincipals/" + p.Graph.ID + "/appRoleAssignedTo")
}

// findRole returns the resource's application permission whose value is
// perm: exactly, or else ignoring case when only one matches.
func findRole(resource ServicePrincipal, perm string) (AppRole, error) {
	var folded []AppRole
	for _, r := range resource.AppRoles {
		if r.Value == perm {
			return checkRole(r, perm)
		}
		if strings.EqualFold(r.Value, perm) {
			folded = append(folded, r)
		}
	}
	if len(folded) == 1 {
		return checkRole(folded[0], perm)
	}
	e := &PermissionError{Permission: perm, Suggestions: suggest(resource, perm)}
	if slices.ContainsFunc(resource.Scopes, func(s PermissionScope) bool { return strings.EqualFold(s.Value, perm) }) {
		e.Reason = "a delegated permission, which acts for a signed-in user; an identity running on its own needs an application permission"
		return AppRole{}, e
	}
	e.Reason = "Microsoft Graph has no application permission by that name"
	return AppRole{}, e
}

// checkRole refuses a role a managed identity may not hold.
func checkRole(r AppRole, perm string) (AppRole, error) {
	if !slices.Contains(r.AllowedMemberTypes, "Application") {
		return AppRole{}, &PermissionError{Permission: perm, Reason: fmt.Sprintf(
			"an app role only %s may hold, not an application such as a managed identity",
			strings.Join(r.AllowedMemberTypes, " and "))}
	}
	if !r.IsEnabled {
		return AppRole{}, &PermissionError{Permission: perm, Reason: "an application permission Microsoft Graph has disabled"}
	}
	return r, nil
}

// maxSuggestions bounds how many close names an error lists.
const maxSuggestions = 5

// suggest lists the application permissions whose names are close to perm:
// those it is a prefix or part of, and those a few edits away.
func suggest(resource ServicePrincipal, perm string) []string {
	type candidate struct {
		value string
		score int
	}
	want := strings.ToLower(perm)
	var cs []candidate
	for _, r := range resource.AppRoles {
		if !slices.Contains(r.AllowedMemberTypes, "Application") || !r.IsEnabled {
			continue
		}
		have := strings.ToLower(r.Value)
		d := distance(want, have)
		switch {
		case d <= max(2, len(want)/5):
		case strings.HasPrefix(have, want) || (len(want) >= 4 && strings.Contains(have, want)):
			d = 10 + len(have) - len(want)
		default:
			continue
		}
		cs = append(cs, candidate{r.Value, d})
	}
	slices.SortFunc(cs, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.score, b.score), strings.Compare(a.value, b.value))
	})
	var out []string
	for _, c := range cs[:min(len(cs), maxSuggestions)] {
		out = append(out, c.value)
	}
	return out
}

// distance is the Levenshtein distance between a and b, byte by byte:
// permission names are ASCII.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
