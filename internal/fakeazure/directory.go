package fakeazure

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GraphAppID is the appId of Microsoft Graph's service principal, the same in every tenant.
const GraphAppID = "00000003-0000-0000-c000-000000000000"

const servicePrincipalsPath = "/v1.0/servicePrincipals"

// ManagedIdentity is a user-assigned managed identity whose service principal is in the
// directory: its appId is the identity's client ID.
type ManagedIdentity struct {
	ClientID string
	Name     string // the service principal's displayName; "managed-identity" when empty
}

// DirectoryOptions configure a Directory.
type DirectoryOptions struct {
	// AdminToken is the bearer token of an administrator, who may create app role assignments.
	// The Graph's own Token may only read the directory.
	AdminToken string
	// ManagedIdentities each get a service principal, besides Microsoft Graph's own.
	ManagedIdentities []ManagedIdentity
	// PageSize is the default page size of an assignment list; 100 when zero.
	PageSize int
}

// AppRole is an app role a service principal defines, as Graph returns it.
type AppRole struct {
	AllowedMemberTypes []string `json:"allowedMemberTypes"`
	Description        string   `json:"description"`
	DisplayName        string   `json:"displayName"`
	ID                 string   `json:"id"`
	IsEnabled          bool     `json:"isEnabled"`
	Origin             string   `json:"origin"`
	Value              string   `json:"value"`
}

// PermissionScope is a delegated permission a service principal defines, one of its
// oauth2PermissionScopes.
type PermissionScope struct {
	AdminConsentDescription string `json:"adminConsentDescription"`
	AdminConsentDisplayName string `json:"adminConsentDisplayName"`
	ID                      string `json:"id"`
	IsEnabled               bool   `json:"isEnabled"`
	Type                    string `json:"type"`
	Value                   string `json:"value"`
}

// AppRoleAssignment is an app role of a resource service principal granted to a principal, as
// Graph returns it.
type AppRoleAssignment struct {
	ID                   string  `json:"id"`
	DeletedDateTime      *string `json:"deletedDateTime"`
	AppRoleID            string  `json:"appRoleId"`
	CreatedDateTime      string  `json:"createdDateTime"`
	PrincipalDisplayName string  `json:"principalDisplayName"`
	PrincipalID          string  `json:"principalId"`
	PrincipalType        string  `json:"principalType"`
	ResourceDisplayName  string  `json:"resourceDisplayName"`
	ResourceID           string  `json:"resourceId"`
}

// servicePrincipal is one service principal of the directory.
type servicePrincipal struct {
	id, appID, displayName, kind string
	appRoles                     []AppRole
	scopes                       []PermissionScope
}

// GraphAppRoles are the application permissions Microsoft Graph's service principal defines in
// the fake: a few real ones, with their real ids, among the hundreds Graph has.
var GraphAppRoles = []AppRole{
	graphRole("df021288-bdef-4463-88db-98f22de89214", "User.Read.All", "Read all users' full profiles"),
	graphRole("741f803b-c850-494e-b5df-cde7c675a1ca", "User.ReadWrite.All", "Read and write all users' full profiles"),
	graphRole("97235f07-e226-4f63-ace3-39588e11d3a1", "User.ReadBasic.All", "Read all users' basic profiles"),
	graphRole("5b567255-7703-4780-807c-7be8301ae99b", "Group.Read.All", "Read all groups"),
	graphRole("7ab1d382-f21e-4acd-a863-ba3e13f7da61", "Directory.Read.All", "Read directory data"),
	graphRole("9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", "Application.Read.All", "Read all applications"),
	graphRole("06b708a9-e830-4db3-a914-8e69da51d44f", "AppRoleAssignment.ReadWrite.All", "Manage app permission grants and app role assignments"),
}

// graphScopes are delegated permissions of Microsoft Graph: they are consented to for a signed-in
// user, never assigned to a managed identity. User.Read exists only as one.
var graphScopes = []PermissionScope{
	{AdminConsentDescription: "Allows users to sign-in to the app, and allows the app to read the profile of signed-in users.",
		AdminConsentDisplayName: "Sign in and read user profile", ID: "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
		IsEnabled: true, Type: "User", Value: "User.Read"},
	{AdminConsentDescription: "Allows the app to read the full set of profile properties of other users in your organization, on behalf of the signed-in user.",
		AdminConsentDisplayName: "Read all users' full profiles", ID: "a154be20-db9c-4678-8ab7-66f6cc099a59",
		IsEnabled: true, Type: "Admin", Value: "User.Read.All"},
}

func graphRole(id, value, name string) AppRole {
	return AppRole{
		AllowedMemberTypes: []string{"Application"},
		Description:        "Allows the app to " + strings.ToLower(name[:1]) + name[1:] + " without a signed-in user.",
		DisplayName:        name,
		ID:                 id,
		IsEnabled:          true,
		Origin:             "Application",
		Value:              value,
	}
}

// Directory fakes the part of Microsoft Graph's directory that granting an application
// permission uses: service principals looked up by appId, their app roles, and their app role
// assignments, listed page by page and created. A Graph serves it under /v1.0/servicePrincipals
// when GraphOptions.Directory is set. It is safe for concurrent use.
type Directory struct {
	opts DirectoryOptions

	sps []*servicePrincipal // fixed by NewDirectory: read without the lock

	mu          sync.Mutex
	assignments []AppRoleAssignment // in creation order, never removed: list offsets stay valid
}

// NewDirectory returns a Directory holding Microsoft Graph's service principal and one for each
// of o.ManagedIdentities, with fresh object ids, and no assignments.
func NewDirectory(o DirectoryOptions) *Directory {
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	d := &Directory{opts: o}
	d.sps = append(d.sps, &servicePrincipal{id: newGUID(), appID: GraphAppID, displayName: "Microsoft Graph",
		kind: "Application", appRoles: GraphAppRoles, scopes: graphScopes})
	for _, mi := range o.ManagedIdentities {
		name := mi.Name
		if name == "" {
			name = "managed-identity"
		}
		d.sps = append(d.sps, &servicePrincipal{id: newGUID(), appID: strings.ToLower(mi.ClientID),
			displayName: name, kind: "ManagedIdentity", appRoles: []AppRole{}, scopes: []PermissionScope{}})
	}
	return d
}

// ServicePrincipalID returns the object id of the service principal with appId appID.
func (d *Directory) ServicePrincipalID(appID string) (string, bool) {
	sp := d.byAppID(appID)
	if sp == nil {
		return "", false
	}
	return sp.id, true
}

// Assignments returns every app role assignment, in the order they were made.
func (d *Directory) Assignments() []AppRoleAssignment {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.assignments)
}

func (d *Directory) byAppID(appID string) *servicePrincipal {
	for _, sp := range d.sps {
		if strings.EqualFold(sp.appID, appID) {
			return sp
		}
	}
	return nil
}

func (d *Directory) byID(id string) *servicePrincipal {
	for _, sp := range d.sps {
		if strings.EqualFold(sp.id, id) {
			return sp
		}
	}
	return nil
}

// serveDirectory answers /v1.0/servicePrincipals and below from g.opts.Directory, where Graph's
// token may read and the directory's admin token may also write.
func (g *Graph) serveDirectory(w http.ResponseWriter, r *http.Request) {
	ids := newRequestIDs(r)
	ids.set(w.Header())
	rest := strings.TrimPrefix(r.URL.Path, servicePrincipalsPath)
	if g.opts.Directory == nil || (rest != "" && !strings.HasPrefix(rest, "/")) {
		writeGraphError(w, ids, notFoundSegment(r.URL.Path))
		return
	}
	g.opts.Directory.serve(w, r, ids, g.opts.Token)
}

func notFoundSegment(p string) *graphError {
	return &graphError{http.StatusNotFound, "Request_ResourceNotFound",
		fmt.Sprintf("Resource not found for the segment '%s'.", p[strings.LastIndex(p, "/")+1:])}
}

func notFoundObject(id string) *graphError {
	return &graphError{http.StatusNotFound, "Request_ResourceNotFound",
		fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id)}
}

func methodNotAllowed(w http.ResponseWriter, ids requestIDs, allow ...string) {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeGraphError(w, ids, &graphError{http.StatusMethodNotAllowed, "BadRequest",
		"Specified HTTP method is not allowed for the request target."})
}

// serve routes one request: the collection, one service principal, or its assignment lists.
func (d *Directory) serve(w http.ResponseWriter, r *http.Request, ids requestIDs, readerToken string) {
	admin, e := d.authorize(r.Header.Get("Authorization"), readerToken)
	if e != nil {
		writeGraphError(w, ids, e)
		return
	}
	segments := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, servicePrincipalsPath), "/"), "/")
	switch {
	case segments[0] == "":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, ids, http.MethodGet)
			return
		}
		d.serveList(w, r, ids)
	case len(segments) == 1:
		if r.Method != http.MethodGet {
			methodNotAllowed(w, ids, http.MethodGet)
			return
		}
		d.serveOne(w, r, ids, segments[0])
	case len(segments) == 2 && (segments[1] == "appRoleAssignedTo" || segments[1] == "appRoleAssignments"):
		byResource := segments[1] == "appRoleAssignedTo"
		switch r.Method {
		case http.MethodGet:
			d.serveAssignments(w, r, ids, segments[0], byResource)
		case http.MethodPost:
			if !admin {
				writeGraphError(w, ids, &graphError{http.StatusForbidden, "Authorization_RequestDenied",
					"Insufficient privileges to complete the operation."})
				return
			}
			d.serveAssign(w, r, ids, segments[0], byResource)
		default:
			methodNotAllowed(w, ids, http.MethodGet, http.MethodPost)
		}
	default:
		writeGraphError(w, ids, notFoundSegment(r.URL.Path))
	}
}

// authorize accepts the reader's and the admin's bearer tokens, and says which it was, without
// ever repeating it.
func (d *Directory) authorize(header, readerToken string) (admin bool, e *graphError) {
	scheme, token, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return false, &graphError{http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty."}
	}
	admin = d.opts.AdminToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(d.opts.AdminToken)) == 1
	reader := readerToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(readerToken)) == 1
	if !admin && !reader {
		return false, &graphError{http.StatusUnauthorized, "InvalidAuthenticationToken",
			"Access token validation failure. Invalid audience."}
	}
	return admin, nil
}

// spProperties are the service principal properties this fake returns, in its order.
var spProperties = []string{"id", "appId", "displayName", "servicePrincipalType", "appRoles", "oauth2PermissionScopes"}

// spQuery is the query of a service principal request.
type spQuery struct {
	props []string // selected properties; id always among them
	appID string   // from $filter=appId eq '...'; empty means no filter
}

// parseSPQuery reads $select and $filter, refusing the options this fake does not implement.
func parseSPQuery(raw string, filterAllowed bool) (spQuery, *graphError) {
	q := spQuery{props: spProperties}
	values, err := url.ParseQuery(raw)
	if err != nil {
		return q, badRequest("BadRequest", "The query specified in the URI is not valid.")
	}
	for name, vs := range values {
		if !strings.HasPrefix(name, "$") {
			continue
		}
		if len(vs) > 1 {
			return q, badRequest("BadRequest", fmt.Sprintf(
				"Query option '%s' was specified more than once, but it must be specified at most once.", name))
		}
		switch strings.ToLower(name) {
		case "$select":
			props, e := parseSPSelect(vs[0])
			if e != nil {
				return q, e
			}
			q.props = props
		case "$filter":
			if !filterAllowed {
				return q, badRequest("Request_UnsupportedQuery", "Query option '$filter' is not supported on a single service principal.")
			}
			id, e := parseAppIDFilter(vs[0])
			if e != nil {
				return q, e
			}
			q.appID = id
		default:
			return q, badRequest("Request_UnsupportedQuery", fmt.Sprintf(
				"Query option '%s' is not supported by this fake; it implements $select and $filter=appId eq '...'.", name))
		}
	}
	return q, nil
}

func parseSPSelect(value string) ([]string, *graphError) {
	props := []string{"id"}
	for item := range strings.SplitSeq(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k := slices.IndexFunc(spProperties, func(p string) bool { return strings.EqualFold(p, item) })
		if k < 0 {
			return nil, badRequest("BadRequest", fmt.Sprintf(
				"Could not find a property named '%s' on type 'microsoft.graph.servicePrincipal'.", item))
		}
		if !slices.Contains(props, spProperties[k]) {
			props = append(props, spProperties[k])
		}
	}
	return props, nil
}

// parseAppIDFilter reads appId eq '<value>', the only filter this fake implements; a quote inside
// the literal is doubled, as OData has it.
func parseAppIDFilter(text string) (string, *graphError) {
	unsupported := badRequest("Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified "+
		"for resource 'ServicePrincipal': this fake implements only appId eq '...'.")
	fields := strings.Fields(text)
	if len(fields) != 3 || !strings.EqualFold(fields[0], "appId") || !strings.EqualFold(fields[1], "eq") {
		return "", unsupported
	}
	lit := fields[2]
	if len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
		return "", unsupported
	}
	inner := lit[1 : len(lit)-1]
	if strings.Count(inner, "'")%2 != 0 || strings.Contains(strings.ReplaceAll(inner, "''", ""), "'") {
		return "", unsupported
	}
	return strings.ReplaceAll(inner, "''", "'"), nil
}

// serveList answers GET /v1.0/servicePrincipals: every service principal, or the one whose appId
// the filter names.
func (d *Directory) serveList(w http.ResponseWriter, r *http.Request, ids requestIDs) {
	q, e := parseSPQuery(r.URL.RawQuery, true)
	if e != nil {
		writeGraphError(w, ids, e)
		return
	}
	value := []map[string]any{}
	for _, sp := range d.sps {
		if q.appID == "" || strings.EqualFold(sp.appID, q.appID) {
			value = append(value, sp.render(q.props))
		}
	}
	metadata := baseURL(r) + "/v1.0/$metadata#servicePrincipals"
	if _, selected := r.URL.Query()["$select"]; selected {
		metadata += "(" + strings.Join(q.props, ",") + ")"
	}
	writeCollection(w, metadata, "", value)
}

// serveOne answers GET /v1.0/servicePrincipals/{id}.
func (d *Directory) serveOne(w http.ResponseWriter, r *http.Request, ids requestIDs, id string) {
	q, e := parseSPQuery(r.URL.RawQuery, false)
	if e != nil {
		writeGraphError(w, ids, e)
		return
	}
	sp := d.byID(id)
	if sp == nil {
		writeGraphError(w, ids, notFoundObject(id))
		return
	}
	body := sp.render(q.props)
	body["@odata.context"] = baseURL(r) + "/v1.0/$metadata#servicePrincipals/$entity"
	writeODataJSON(w, http.StatusOK, body)
}

// render is the service principal's JSON with only props.
func (sp *servicePrincipal) render(props []string) map[string]any {
	m := make(map[string]any, len(props))
	for _, p := range props {
		switch p {
		case "id":
			m[p] = sp.id
		case "appId":
			m[p] = sp.appID
		case "displayName":
			m[p] = sp.displayName
		case "servicePrincipalType":
			m[p] = sp.kind
		case "appRoles":
			m[p] = sp.appRoles
		case "oauth2PermissionScopes":
			m[p] = sp.scopes
		}
	}
	return m
}

// serveAssignments answers GET .../{id}/appRoleAssignedTo (the assignments of the resource id)
// and .../{id}/appRoleAssignments (those of the principal id), page by page.
func (d *Directory) serveAssignments(w http.ResponseWriter, r *http.Request, ids requestIDs, id string, byResource bool) {
	if d.byID(id) == nil {
		writeGraphError(w, ids, notFoundObject(id))
		return
	}
	top, topSent, offset, e := d.parsePageQuery(r.URL.RawQuery)
	if e != nil {
		writeGraphError(w, ids, e)
		return
	}
	d.mu.Lock()
	var all []AppRoleAssignment
	for _, a := range d.assignments {
		if (byResource && strings.EqualFold(a.ResourceID, id)) || (!byResource && strings.EqualFold(a.PrincipalID, id)) {
			all = append(all, a)
		}
	}
	d.mu.Unlock()
	offset = min(offset, len(all))
	end := min(offset+top, len(all))
	next := ""
	if end < len(all) {
		next = baseURL(r) + r.URL.Path + "?"
		if topSent {
			next += "$top=" + strconv.Itoa(top) + "&"
		}
		next += "$skiptoken=" + encodeAssignmentToken(end)
	}
	segment := "appRoleAssignments"
	if byResource {
		segment = "appRoleAssignedTo"
	}
	page := all[offset:end]
	if page == nil {
		page = []AppRoleAssignment{}
	}
	writeCollection(w, baseURL(r)+"/v1.0/$metadata#servicePrincipals('"+id+"')/"+segment, next, page)
}

// parsePageQuery reads $top and $skiptoken of an assignment list.
func (d *Directory) parsePageQuery(raw string) (top int, topSent bool, offset int, e *graphError) {
	top = d.opts.PageSize
	values, err := url.ParseQuery(raw)
	if err != nil {
		return 0, false, 0, badRequest("BadRequest", "The query specified in the URI is not valid.")
	}
	for name, vs := range values {
		if !strings.HasPrefix(name, "$") {
			continue
		}
		switch strings.ToLower(name) {
		case "$top":
			n, err := strconv.Atoi(vs[0])
			if err != nil || n < 1 || n > maxTop {
				return 0, false, 0, badRequest("Request_UnsupportedQuery", fmt.Sprintf(
					"Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", vs[0], maxTop))
			}
			top, topSent = n, true
		case "$skiptoken":
			n, ok := decodeAssignmentToken(vs[0])
			if !ok {
				return 0, false, 0, badRequest("Request_BadRequest", "The $skiptoken is invalid. Follow @odata.nextLink exactly as it was sent.")
			}
			offset = n
		default:
			return 0, false, 0, badRequest("Request_UnsupportedQuery", fmt.Sprintf(
				"Query option '%s' is not supported by this fake; it implements $top and $skiptoken on assignment lists.", name))
		}
	}
	return top, topSent, offset, nil
}

// Assignment list tokens: base64url of a marker and the offset of the page's first assignment.
const assignmentTokenMarker = "DSra"

func encodeAssignmentToken(offset int) string {
	b := make([]byte, len(assignmentTokenMarker)+8)
	copy(b, assignmentTokenMarker)
	binary.BigEndian.PutUint64(b[len(assignmentTokenMarker):], uint64(offset))
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeAssignmentToken(token string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != len(assignmentTokenMarker)+8 || string(b[:len(assignmentTokenMarker)]) != assignmentTokenMarker {
		return 0, false
	}
	n := binary.BigEndian.Uint64(b[len(assignmentTokenMarker):])
	if n > 1<<31 {
		return 0, false
	}
	return int(n), true
}

// assignmentRequest is the body of POST .../appRoleAssignedTo and .../appRoleAssignments.
type assignmentRequest struct {
	PrincipalID string `json:"principalId"`
	ResourceID  string `json:"resourceId"`
	AppRoleID   string `json:"appRoleId"`
}

// serveAssign creates an app role assignment, refusing what Graph refuses: a body that names
// another service principal than the URL, unknown objects, a role the resource does not define
// or a principal of its type may not hold, and a duplicate.
func (d *Directory) serveAssign(w http.ResponseWriter, r *http.Request, ids requestIDs, id string, byResource bool) {
	var req assignmentRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || json.Unmarshal(body, &req) != nil {
		writeGraphError(w, ids, badRequest("BadRequest",
			"Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format."))
		return
	}
	for _, f := range []struct{ name, value string }{
		{"principalId", req.PrincipalID}, {"resourceId", req.ResourceID}, {"appRoleId", req.AppRoleID}} {
		if !isGUID(f.value) {
			writeGraphError(w, ids, badRequest("Request_BadRequest", fmt.Sprintf(
				"Invalid value specified for property '%s' of resource 'AppRoleAssignment'.", f.name)))
			return
		}
	}
	if d.byID(id) == nil {
		writeGraphError(w, ids, notFoundObject(id))
		return
	}
	if byResource && !strings.EqualFold(req.ResourceID, id) {
		writeGraphError(w, ids, badRequest("Request_BadRequest",
			"The resourceId in the body must be the service principal in the request URL."))
		return
	}
	if !byResource && !strings.EqualFold(req.PrincipalID, id) {
		writeGraphError(w, ids, badRequest("Request_BadRequest",
			"The principalId in the body must be the service principal in the request URL."))
		return
	}
	principal, resource := d.byID(req.PrincipalID), d.byID(req.ResourceID)
	for _, o := range []struct {
		sp *servicePrincipal
		id string
	}{{principal, req.PrincipalID}, {resource, req.ResourceID}} {
		if o.sp == nil {
			writeGraphError(w, ids, notFoundObject(o.id))
			return
		}
	}
	k := slices.IndexFunc(resource.appRoles, func(ar AppRole) bool { return strings.EqualFold(ar.ID, req.AppRoleID) })
	if k < 0 {
		writeGraphError(w, ids, badRequest("Request_BadRequest", fmt.Sprintf(
			"Permission being assigned was not found on application '%s'.", resource.appID)))
		return
	}
	if !slices.Contains(resource.appRoles[k].AllowedMemberTypes, "Application") {
		writeGraphError(w, ids, badRequest("Request_BadRequest",
			"Permission being assigned is not valid for a principal of type ServicePrincipal."))
		return
	}

	d.mu.Lock()
	for _, a := range d.assignments {
		if strings.EqualFold(a.PrincipalID, principal.id) && strings.EqualFold(a.ResourceID, resource.id) &&
			strings.EqualFold(a.AppRoleID, req.AppRoleID) {
			d.mu.Unlock()
			writeGraphError(w, ids, badRequest("Request_BadRequest", "Permission being assigned already exists on the object"))
			return
		}
	}
	a := AppRoleAssignment{
		ID:                   newAssignmentID(),
		AppRoleID:            resource.appRoles[k].ID,
		CreatedDateTime:      time.Now().UTC().Format("2006-01-02T15:04:05.0000000Z"),
		PrincipalDisplayName: principal.displayName,
		PrincipalID:          principal.id,
		PrincipalType:        "ServicePrincipal",
		ResourceDisplayName:  resource.displayName,
		ResourceID:           resource.id,
	}
	d.assignments = append(d.assignments, a)
	d.mu.Unlock()

	segment := "appRoleAssignments"
	if byResource {
		segment = "appRoleAssignedTo"
	}
	out, err := json.Marshal(a)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	m["@odata.context"] = baseURL(r) + "/v1.0/$metadata#servicePrincipals('" + id + "')/" + segment + "/$entity"
	w.Header().Set("Location", baseURL(r)+"/v1.0/servicePrincipals/"+id+"/"+segment+"/"+a.ID)
	writeODataJSON(w, http.StatusCreated, m)
}

// newAssignmentID makes an id shaped like Graph's: 43 base64url characters.
func newAssignmentID() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

// writeCollection answers 200 with an OData collection; nextLink, when set, comes before value,
// as Graph writes it.
func writeCollection[T any](w http.ResponseWriter, metadata, nextLink string, value []T) {
	v, err := json.Marshal(value)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	b := appendJSONString([]byte(`{"@odata.context":`), metadata)
	if nextLink != "" {
		b = append(b, `,"@odata.nextLink":`...)
		b = appendJSONString(b, nextLink)
	}
	b = append(b, `,"value":`...)
	b = append(b, v...)
	writeBody(w, http.StatusOK, pageContentType, append(b, '}'))
}

// writeODataJSON answers status with v, in Graph's OData content type.
func writeODataJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, status, pageContentType, b)
}
