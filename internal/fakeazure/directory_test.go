package fakeazure

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	adminToken   = "directory-admin-token"
	miClientID   = "0a0b0c0d-1111-4222-8333-444455556666"
	userReadAll  = "df021288-bdef-4463-88db-98f22de89214"
	groupReadAll = "5b567255-7703-4780-807c-7be8301ae99b"
	dirReadAll   = "7ab1d382-f21e-4acd-a863-ba3e13f7da61"
)

// directoryServer is a Graph with a Directory behind an https test server.
type directoryServer struct {
	graphServer
	dir                *Directory
	graphID, identity  string // object ids of Graph's and the identity's service principals
	assignedTo, ofMine string // the two assignment list URLs
}

func newDirectoryServer(t *testing.T, pageSize int) directoryServer {
	t.Helper()
	dir := NewDirectory(DirectoryOptions{AdminToken: adminToken, PageSize: pageSize,
		ManagedIdentities: []ManagedIdentity{{ClientID: miClientID, Name: "graphusers-id"}}})
	g := NewGraph(GraphOptions{Users: 3, Token: graphToken, Directory: dir})
	srv := httptest.NewTLSServer(g)
	t.Cleanup(srv.Close)
	ds := directoryServer{graphServer: graphServer{g, srv}, dir: dir}
	var ok bool
	ds.graphID, ok = dir.ServicePrincipalID(GraphAppID)
	require.True(t, ok)
	ds.identity, ok = dir.ServicePrincipalID(miClientID)
	require.True(t, ok)
	ds.assignedTo = srv.URL + "/v1.0/servicePrincipals/" + ds.graphID + "/appRoleAssignedTo"
	ds.ofMine = srv.URL + "/v1.0/servicePrincipals/" + ds.identity + "/appRoleAssignments"
	return ds
}

func (ds directoryServer) post(t *testing.T, target, token, body string) graphResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	require.NoError(t, err)
	req.Header = bearer(token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := ds.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return graphResponse{resp.StatusCode, resp.Header, raw}
}

func (ds directoryServer) assignment(appRoleID string) string {
	b, _ := json.Marshal(map[string]string{"principalId": ds.identity, "resourceId": ds.graphID, "appRoleId": appRoleID})
	return string(b)
}

// collection is a decoded OData collection.
type collection struct {
	Context  string            `json:"@odata.context"`
	NextLink string            `json:"@odata.nextLink"`
	Value    []json.RawMessage `json:"value"`
}

func collectionOf(t *testing.T, r graphResponse) collection {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	assert.Equal(t, pageContentType, r.header.Get("Content-Type"))
	assert.Regexp(t, guidPattern, r.header.Get("request-id"))
	var c collection
	require.NoError(t, json.Unmarshal(r.raw, &c), "%s", r.raw)
	require.NotNil(t, c.Value, "value is always an array: %s", r.raw)
	return c
}

func filterByAppID(appID string) string {
	return "$filter=" + url.QueryEscape("appId eq '"+appID+"'")
}

func TestDirectoryFindsGraphsServicePrincipalAndItsAppRolesByAppID(t *testing.T) {
	ds := newDirectoryServer(t, 0)

	r := ds.get(t, ds.srv.URL+"/v1.0/servicePrincipals?"+filterByAppID(GraphAppID)+"&$select=id,appId,displayName,appRoles", bearer(graphToken))

	c := collectionOf(t, r)
	assert.Equal(t, ds.srv.URL+"/v1.0/$metadata#servicePrincipals(id,appId,displayName,appRoles)", c.Context)
	require.Len(t, c.Value, 1)
	assert.Equal(t, []string{"appId", "appRoles", "displayName", "id"}, keys(t, c.Value[0]), "only what $select names")
	var sp struct {
		ID, AppID, DisplayName string
		AppRoles               []AppRole
	}
	require.NoError(t, json.Unmarshal(c.Value[0], &sp))
	assert.Equal(t, ds.graphID, sp.ID)
	assert.Equal(t, GraphAppID, sp.AppID)
	assert.Equal(t, "Microsoft Graph", sp.DisplayName)
	roles := map[string]AppRole{}
	for _, ar := range sp.AppRoles {
		roles[ar.Value] = ar
	}
	assert.Equal(t, userReadAll, roles["User.Read.All"].ID)
	assert.Equal(t, []string{"Application"}, roles["User.Read.All"].AllowedMemberTypes)
	assert.Equal(t, groupReadAll, roles["Group.Read.All"].ID)
	assert.Equal(t, dirReadAll, roles["Directory.Read.All"].ID)
	assert.NotContains(t, roles, "User.Read", "User.Read is delegated only")
}

func TestDirectoryListsDelegatedPermissionsApartFromAppRoles(t *testing.T) {
	ds := newDirectoryServer(t, 0)

	r := ds.get(t, ds.srv.URL+"/v1.0/servicePrincipals?"+filterByAppID(GraphAppID)+"&$select=oauth2PermissionScopes", bearer(graphToken))

	c := collectionOf(t, r)
	require.Len(t, c.Value, 1)
	assert.Equal(t, []string{"id", "oauth2PermissionScopes"}, keys(t, c.Value[0]), "id comes with every $select")
	var sp struct{ Oauth2PermissionScopes []PermissionScope }
	require.NoError(t, json.Unmarshal(c.Value[0], &sp))
	var values []string
	for _, s := range sp.Oauth2PermissionScopes {
		values = append(values, s.Value)
	}
	assert.Contains(t, values, "User.Read")
}

func TestDirectoryFindsAManagedIdentityByItsClientIDInAnyCase(t *testing.T) {
	ds := newDirectoryServer(t, 0)

	r := ds.get(t, ds.srv.URL+"/v1.0/servicePrincipals?"+filterByAppID(strings.ToUpper(miClientID)), bearer(graphToken))

	c := collectionOf(t, r)
	require.Len(t, c.Value, 1)
	var sp map[string]any
	require.NoError(t, json.Unmarshal(c.Value[0], &sp))
	assert.Equal(t, ds.identity, sp["id"])
	assert.Equal(t, miClientID, sp["appId"])
	assert.Equal(t, "graphusers-id", sp["displayName"])
	assert.Equal(t, "ManagedIdentity", sp["servicePrincipalType"])

	r = ds.get(t, ds.srv.URL+"/v1.0/servicePrincipals/"+ds.identity+"?$select=displayName", bearer(graphToken))
	require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	assert.Equal(t, []string{"@odata.context", "displayName", "id"}, keys(t, r.raw))
}

func TestDirectoryAnswersAnUnknownAppIDWithAnEmptyList(t *testing.T) {
	ds := newDirectoryServer(t, 0)
	r := ds.get(t, ds.srv.URL+"/v1.0/servicePrincipals?"+filterByAppID("99999999-9999-4999-8999-999999999999"), bearer(graphToken))
	assert.Empty(t, collectionOf(t, r).Value)
}

func TestDirectoryRefusesQueriesItDoesNotImplement(t *testing.T) {
	ds := newDirectoryServer(t, 0)
	tests := []struct {
		name, target, code string
		status             int
	}{
		{"a filter on another property", "/v1.0/servicePrincipals?$filter=" + url.QueryEscape("displayName eq 'x'"), "Request_UnsupportedQuery", 400},
		{"a filter with another operator", "/v1.0/servicePrincipals?$filter=" + url.QueryEscape("startswith(appId,'0')"), "Request_UnsupportedQuery", 400},
		{"an appId that is not a string literal", "/v1.0/servicePrincipals?$filter=" + url.QueryEscape("appId eq 00000003-0000-0000-c000-000000000000"), "Request_UnsupportedQuery", 400},
		{"an unterminated literal", "/v1.0/servicePrincipals?$filter=" + url.QueryEscape("appId eq 'x"), "Request_UnsupportedQuery", 400},
		{"a stray quote in the literal", "/v1.0/servicePrincipals?$filter=" + url.QueryEscape("appId eq 'a'b'"), "Request_UnsupportedQuery", 400},
		{"an unknown property in $select", "/v1.0/servicePrincipals?$select=id,passwordCredentialz", "BadRequest", 400},
		{"an option the fake does not implement", "/v1.0/servicePrincipals?$orderby=displayName", "Request_UnsupportedQuery", 400},
		{"an unknown object id", "/v1.0/servicePrincipals/99999999-9999-4999-8999-999999999999", "Request_ResourceNotFound", 404},
		{"an unknown segment", "/v1.0/servicePrincipals/x/owners", "Request_ResourceNotFound", 404},
		{"a path that only starts like servicePrincipals", "/v1.0/servicePrincipalsX", "Request_ResourceNotFound", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errorOf(t, ds.get(t, ds.srv.URL+tt.target, bearer(graphToken)), tt.status, tt.code)
		})
	}
}

func TestDirectoryLetsOnlyTheAdminAssignAndOnlyOnce(t *testing.T) {
	ds := newDirectoryServer(t, 0)

	r := ds.post(t, ds.assignedTo, graphToken, ds.assignment(userReadAll))
	e := errorOf(t, r, http.StatusForbidden, "Authorization_RequestDenied")
	assert.Equal(t, "Insufficient privileges to complete the operation.", e.Error.Message)
	assert.Empty(t, ds.dir.Assignments())

	r = ds.post(t, ds.assignedTo, adminToken, ds.assignment(userReadAll))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.raw)
	assert.Equal(t, pageContentType, r.header.Get("Content-Type"))
	var a AppRoleAssignment
	require.NoError(t, json.Unmarshal(r.raw, &a))
	assert.Regexp(t, `^[A-Za-z0-9_-]{43}$`, a.ID)
	assert.Equal(t, AppRoleAssignment{ID: a.ID, AppRoleID: userReadAll, CreatedDateTime: a.CreatedDateTime,
		PrincipalDisplayName: "graphusers-id", PrincipalID: ds.identity, PrincipalType: "ServicePrincipal",
		ResourceDisplayName: "Microsoft Graph", ResourceID: ds.graphID}, a)
	assert.Contains(t, string(r.raw), `"deletedDateTime":null`)
	assert.Equal(t, []AppRoleAssignment{a}, ds.dir.Assignments())

	r = ds.post(t, ds.assignedTo, adminToken, ds.assignment(userReadAll))
	e = errorOf(t, r, http.StatusBadRequest, "Request_BadRequest")
	assert.Equal(t, "Permission being assigned already exists on the object", e.Error.Message)
	r = ds.post(t, ds.ofMine, adminToken, ds.assignment(userReadAll))
	errorOf(t, r, http.StatusBadRequest, "Request_BadRequest")
	assert.Len(t, ds.dir.Assignments(), 1, "a duplicate through either list is refused")
}

func TestDirectoryRefusesAssignmentsGraphRefuses(t *testing.T) {
	ds := newDirectoryServer(t, 0)
	unknown := "99999999-9999-4999-8999-999999999999"
	body := func(principal, resource, role string) string {
		b, _ := json.Marshal(map[string]string{"principalId": principal, "resourceId": resource, "appRoleId": role})
		return string(b)
	}
	tests := []struct {
		name, target, body, code string
		status                   int
	}{
		{"a role Graph does not define", ds.assignedTo, body(ds.identity, ds.graphID, unknown), "Request_BadRequest", 400},
		{"a delegated permission's id", ds.assignedTo, body(ds.identity, ds.graphID, "e1fe6dd8-ba31-4d61-89e7-88639da4683d"), "Request_BadRequest", 400},
		{"a resource other than the URL's", ds.assignedTo, body(ds.identity, ds.identity, userReadAll), "Request_BadRequest", 400},
		{"a principal other than the URL's", ds.ofMine, body(ds.graphID, ds.graphID, userReadAll), "Request_BadRequest", 400},
		{"an unknown principal", ds.assignedTo, body(unknown, ds.graphID, userReadAll), "Request_ResourceNotFound", 404},
		{"an unknown resource in the URL", ds.srv.URL + "/v1.0/servicePrincipals/" + unknown + "/appRoleAssignedTo", body(ds.identity, unknown, userReadAll), "Request_ResourceNotFound", 404},
		{"an id that is not a GUID", ds.assignedTo, body(ds.identity, ds.graphID, "User.Read.All"), "Request_BadRequest", 400},
		{"a body that is not JSON", ds.assignedTo, "principalId=x", "BadRequest", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errorOf(t, ds.post(t, tt.target, adminToken, tt.body), tt.status, tt.code)
		})
	}
	assert.Empty(t, ds.dir.Assignments())
}

func TestDirectoryPagesAssignmentListsThroughNextLinks(t *testing.T) {
	ds := newDirectoryServer(t, 2)
	for _, role := range []string{userReadAll, groupReadAll, dirReadAll} {
		require.Equal(t, http.StatusCreated, ds.post(t, ds.assignedTo, adminToken, ds.assignment(role)).status)
	}
	roles := func(c collection) []string {
		var out []string
		for _, v := range c.Value {
			var a AppRoleAssignment
			require.NoError(t, json.Unmarshal(v, &a))
			out = append(out, a.AppRoleID)
		}
		return out
	}

	for _, first := range []string{ds.ofMine, ds.assignedTo} {
		p1 := collectionOf(t, ds.get(t, first, bearer(graphToken)))
		assert.Equal(t, []string{userReadAll, groupReadAll}, roles(p1))
		require.NotEmpty(t, p1.NextLink)
		assert.True(t, strings.HasPrefix(p1.NextLink, first+"?$skiptoken="), p1.NextLink)
		p2 := collectionOf(t, ds.get(t, p1.NextLink, bearer(graphToken)))
		assert.Equal(t, []string{dirReadAll}, roles(p2))
		assert.Empty(t, p2.NextLink)
	}

	p1 := collectionOf(t, ds.get(t, ds.ofMine+"?$top=1", bearer(graphToken)))
	assert.Len(t, p1.Value, 1)
	assert.Contains(t, p1.NextLink, "$top=1&", "$top is carried into the next link")
	assert.Contains(t, p1.Context, "#servicePrincipals('"+ds.identity+"')/appRoleAssignments")

	errorOf(t, ds.get(t, ds.ofMine+"?$skiptoken=bm90LWEtdG9rZW4", bearer(graphToken)), 400, "Request_BadRequest")
	errorOf(t, ds.get(t, ds.ofMine+"?$top=1000", bearer(graphToken)), 400, "Request_UnsupportedQuery")

	graphs := collectionOf(t, ds.get(t, ds.srv.URL+"/v1.0/servicePrincipals/"+ds.graphID+"/appRoleAssignments", bearer(graphToken)))
	assert.Empty(t, graphs.Value, "Graph's own service principal holds no role")
}

func TestDirectoryRefusesMissingAndWrongTokens(t *testing.T) {
	ds := newDirectoryServer(t, 0)
	for _, h := range []http.Header{{}, bearer("not-a-token")} {
		r := ds.get(t, ds.srv.URL+"/v1.0/servicePrincipals", h)
		errorOf(t, r, http.StatusUnauthorized, "InvalidAuthenticationToken")
		assert.NotContains(t, string(r.raw), "not-a-token")
		errorOf(t, ds.post(t, ds.assignedTo, "not-a-token", ds.assignment(userReadAll)), http.StatusUnauthorized, "InvalidAuthenticationToken")
	}
	collectionOf(t, ds.get(t, ds.srv.URL+"/v1.0/servicePrincipals", bearer(adminToken)))
}

func TestDirectoryAllowsOnlyItsMethods(t *testing.T) {
	ds := newDirectoryServer(t, 0)
	r := ds.post(t, ds.srv.URL+"/v1.0/servicePrincipals", adminToken, `{}`)
	errorOf(t, r, http.StatusMethodNotAllowed, "BadRequest")
	assert.Equal(t, "GET", r.header.Get("Allow"))

	req, err := http.NewRequest(http.MethodDelete, ds.assignedTo, nil)
	require.NoError(t, err)
	req.Header = bearer(adminToken)
	resp, err := ds.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "GET, POST", resp.Header.Get("Allow"))
}

func TestGraphWithoutADirectoryHasNoServicePrincipals(t *testing.T) {
	gs := newGraphServer(t, 3)
	e := errorOf(t, gs.get(t, gs.srv.URL+"/v1.0/servicePrincipals?"+filterByAppID(GraphAppID), bearer(graphToken)), 404, "Request_ResourceNotFound")
	assert.Equal(t, "Resource not found for the segment 'servicePrincipals'.", e.Error.Message)
	assert.Zero(t, gs.Requests(), "only /v1.0/users requests are counted")
}
