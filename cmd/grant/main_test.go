package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/fakeazure"
)

const (
	userReadAll  = "df021288-bdef-4463-88db-98f22de89214"
	groupReadAll = "5b567255-7703-4780-807c-7be8301ae99b"
)

// tenant is a fake tenant for one test: Graph with its directory, which
// holds the job's managed identity, and the App Service identity endpoint,
// where the person running grant signs in as a managed identity of their own.
type tenant struct {
	dir                         *fakeazure.Directory
	graph                       *fakeazure.Graph
	graphURL                    string
	identityClientID            string // the job's identity, granted to
	callerClientID              string // the identity grant signs in as
	readerToken, adminToken     string
	identityID, graphID         string // object ids of the two service principals
	identityRequests            func() int
	graphServer, identityServer *httptest.Server
}

// newTenant serves a tenant; callerIsAdmin says whether the caller's token
// may write to the directory. pageSize bounds each page of assignments.
func newTenant(t *testing.T, callerIsAdmin bool, pageSize int, wrap func(http.Handler) http.Handler) *tenant {
	t.Helper()
	tn := &tenant{
		identityClientID: fakeazure.NewClientID(), callerClientID: fakeazure.NewClientID(),
		readerToken: "reader-" + fakeazure.NewClientID(), adminToken: "admin-" + fakeazure.NewClientID(),
	}
	tn.dir = fakeazure.NewDirectory(fakeazure.DirectoryOptions{AdminToken: tn.adminToken, PageSize: pageSize,
		ManagedIdentities: []fakeazure.ManagedIdentity{{ClientID: tn.identityClientID, Name: "graphusers-id"}}})
	tn.graph = fakeazure.NewGraph(fakeazure.GraphOptions{Users: 3, Token: tn.readerToken, Directory: tn.dir})
	var h http.Handler = tn.graph
	if wrap != nil {
		h = wrap(h)
	}
	tn.graphServer = httptest.NewServer(h)
	t.Cleanup(tn.graphServer.Close)
	tn.graphURL = tn.graphServer.URL

	token := tn.readerToken
	if callerIsAdmin {
		token = tn.adminToken
	}
	const header = "identity-header-for-grant"
	identity := fakeazure.NewIdentity(fakeazure.IdentityOptions{ClientID: tn.callerClientID, Header: header, Token: token})
	tn.identityRequests = identity.Requests
	tn.identityServer = httptest.NewServer(identity)
	t.Cleanup(tn.identityServer.Close)
	// MSAL reads the identity source from the process environment.
	t.Setenv("IDENTITY_ENDPOINT", tn.identityServer.URL+fakeazure.AppServicePath)
	t.Setenv("IDENTITY_HEADER", header)

	var ok bool
	tn.identityID, ok = tn.dir.ServicePrincipalID(tn.identityClientID)
	require.True(t, ok)
	tn.graphID, ok = tn.dir.ServicePrincipalID(fakeazure.GraphAppID)
	require.True(t, ok)
	return tn
}

// args are the flags that sign in as the caller's managed identity and name
// the job's identity and the fake Graph, then extra.
func (tn *tenant) args(extra ...string) []string {
	return append([]string{"-auth", "managed-identity", "-auth-client-id", tn.callerClientID,
		"-client-id", tn.identityClientID, "-graph", tn.graphURL}, extra...)
}

// result is what one run of the command left.
type result struct {
	stdout, stderr string
	err            error
}

func runGrant(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
	return result{stdout.String(), stderr.String(), err}
}

// granted returns the app role ids of the assignments the job's identity
// holds on Graph, as the directory has them.
func (tn *tenant) granted() []string {
	var roles []string
	for _, a := range tn.dir.Assignments() {
		if a.PrincipalID == tn.identityID && a.ResourceID == tn.graphID {
			roles = append(roles, a.AppRoleID)
		}
	}
	return roles
}

// assertNoSecrets checks that neither token appears in the output.
func (tn *tenant) assertNoSecrets(t *testing.T, r result) {
	t.Helper()
	for _, out := range []string{r.stdout, r.stderr, fmt.Sprint(r.err)} {
		assert.NotContains(t, out, tn.adminToken)
		assert.NotContains(t, out, tn.readerToken)
		assert.NotContains(t, out, "identity-header-for-grant")
	}
}

func TestGrantAssignsUserReadAllToTheIdentity(t *testing.T) {
	tn := newTenant(t, true, 0, nil)

	r := runGrant(t, nil, tn.args()...)

	require.NoError(t, r.err)
	assert.Empty(t, r.stderr)
	assert.Equal(t, []string{userReadAll}, tn.granted())
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 4, r.stdout)
	assert.Equal(t, fmt.Sprintf("Managed identity: graphusers-id (client ID %s, service principal %s)", tn.identityClientID, tn.identityID), lines[0])
	assert.Equal(t, fmt.Sprintf("Microsoft Graph: service principal %s at %s", tn.graphID, tn.graphURL), lines[1])
	assert.Equal(t, fmt.Sprintf("User.Read.All (%s): granted (assignment %s)", userReadAll, tn.dir.Assignments()[0].ID), lines[2])
	assert.Contains(t, lines[3], "up to 24 hours")
	tn.assertNoSecrets(t, r)
}

func TestGrantAgainSaysAlreadyGrantedAndChangesNothing(t *testing.T) {
	// One assignment a page: the identity's list spans pages, and the
	// permission asked for is on the last.
	tn := newTenant(t, true, 1, nil)
	require.NoError(t, runGrant(t, nil, tn.args("-permissions", "Group.Read.All,Directory.Read.All,User.Read.All")...).err)
	before := tn.dir.Assignments()
	require.Len(t, before, 3)

	r := runGrant(t, nil, tn.args()...)

	require.NoError(t, r.err, "already granted is a success")
	assert.Empty(t, r.stderr)
	assert.Contains(t, r.stdout, fmt.Sprintf("User.Read.All (%s): already granted (assignment %s)\n", userReadAll, before[2].ID))
	assert.NotContains(t, r.stdout, "24 hours", "nothing new to wait for")
	assert.Equal(t, before, tn.dir.Assignments())
}

func TestGrantDryRunPrintsTheRequestAndChangesNothing(t *testing.T) {
	tn := newTenant(t, true, 0, nil)

	r := runGrant(t, nil, tn.args("--dry-run", "-permissions", "User.Read.All, Group.Read.All")...)

	require.NoError(t, r.err)
	assert.Empty(t, tn.dir.Assignments())
	for _, role := range []struct{ value, id string }{{"User.Read.All", userReadAll}, {"Group.Read.All", groupReadAll}} {
		assert.Contains(t, r.stdout, fmt.Sprintf(
			"%s (%s): would grant: POST %s/v1.0/servicePrincipals/%s/appRoleAssignedTo "+
				`{"principalId":"%s","resourceId":"%s","appRoleId":"%s"}`+"\n",
			role.value, role.id, tn.graphURL, tn.graphID, tn.identityID, tn.graphID, role.id))
	}
	assert.True(t, strings.HasSuffix(r.stdout, "Dry run: nothing was changed.\n"), r.stdout)
}

func TestGrantDryRunNeedsOnlyTheRightToRead(t *testing.T) {
	tn := newTenant(t, false, 0, nil)
	r := runGrant(t, nil, tn.args("-dry-run")...)
	require.NoError(t, r.err)
	assert.Contains(t, r.stdout, "User.Read.All ("+userReadAll+"): would grant: POST ")
}

func TestGrantExplainsA403InPlainWords(t *testing.T) {
	tn := newTenant(t, false, 0, nil)

	r := runGrant(t, nil, tn.args()...)

	require.Error(t, r.err)
	msg := r.err.Error()
	assert.Contains(t, msg, "grant User.Read.All: graph answered 403 Forbidden (Authorization_RequestDenied): Insufficient privileges to complete the operation.")
	assert.Regexp(t, `\[request-id [0-9a-f-]{36}\]`, msg)
	for _, words := range []string{"Privileged Role Administrator", "Global Administrator", "AppRoleAssignment.ReadWrite.All", "Application.Read.All"} {
		assert.Contains(t, msg, words)
	}
	assert.Empty(t, tn.dir.Assignments())
	assert.Contains(t, r.stdout, "Managed identity: graphusers-id", "what it found is printed before it failed")
	tn.assertNoSecrets(t, r)
}

func TestGrantSaysClearlyThatTheIdentityIsUnknown(t *testing.T) {
	tn := newTenant(t, true, 0, nil)
	unknown := fakeazure.NewClientID()

	r := runGrant(t, nil, append(tn.args(), "-client-id", unknown)...)

	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "no service principal has appId "+unknown+" in this tenant")
	assert.Contains(t, r.err.Error(), "az identity show")
	assert.Empty(t, r.stdout)
	assert.Empty(t, tn.dir.Assignments())
}

func TestGrantRefusesPermissionsItCannotGrantAndSuggestsOthers(t *testing.T) {
	tests := []struct {
		name, permissions string
		want              []string
	}{
		{"a misspelt permission", "User.Raed.All", []string{"User.Raed.All: Microsoft Graph has no application permission by that name; did you mean User.Read.All"}},
		{"a delegated permission", "User.Read", []string{"User.Read: a delegated permission", "did you mean User.Read.All, User.ReadBasic.All, User.ReadWrite.All?"}},
		{"a name like no other", "Nonsense.Whatever", []string{"Nonsense.Whatever: Microsoft Graph has no application permission by that name; Microsoft Graph's application permissions are listed at https://learn.microsoft.com/graph/permissions-reference"}},
		{"a good one among bad ones", "User.Read.All,Mail.Sendd,User.Read", []string{"Mail.Sendd:", "User.Read:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn := newTenant(t, true, 0, nil)
			r := runGrant(t, nil, tn.args("-permissions", tt.permissions)...)
			require.Error(t, r.err)
			for _, w := range tt.want {
				assert.Contains(t, r.err.Error(), w)
			}
			assert.Empty(t, tn.dir.Assignments(), "nothing is granted unless everything can be")
		})
	}
}

func TestGrantMatchesAPermissionIgnoringCase(t *testing.T) {
	tn := newTenant(t, true, 0, nil)
	r := runGrant(t, nil, tn.args("-permissions", "user.read.all")...)
	require.NoError(t, r.err)
	assert.Equal(t, []string{userReadAll}, tn.granted())
	assert.Contains(t, r.stdout, "User.Read.All ("+userReadAll+"): granted")
}

func TestGrantSeveralPermissionsAtOnce(t *testing.T) {
	tn := newTenant(t, true, 0, nil)
	r := runGrant(t, nil, tn.args("-permissions", "User.Read.All,Group.Read.All,User.Read.All")...)
	require.NoError(t, r.err)
	assert.Equal(t, []string{userReadAll, groupReadAll}, tn.granted(), "each once, in the order asked")
}

// TestGrantTreatsADuplicateFromARaceAsGranted has another administrator
// grant the permission between grant's read of the identity's roles and its
// own POST: Graph answers 400 "already exists", which is success.
func TestGrantTreatsADuplicateFromARaceAsGranted(t *testing.T) {
	var tn *tenant
	race := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/appRoleAssignments") {
				body := fmt.Sprintf(`{"principalId":%q,"resourceId":%q,"appRoleId":%q}`, tn.identityID, tn.graphID, userReadAll)
				other := httptest.NewRequest(http.MethodPost, "/v1.0/servicePrincipals/"+tn.graphID+"/appRoleAssignedTo", strings.NewReader(body))
				other.Header.Set("Authorization", "Bearer "+tn.adminToken)
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, other)
				require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
			}
		})
	}
	tn = newTenant(t, true, 0, race)

	r := runGrant(t, nil, tn.args()...)

	require.NoError(t, r.err)
	assert.Contains(t, r.stdout, "User.Read.All ("+userReadAll+"): already granted\n")
	assert.Len(t, tn.dir.Assignments(), 1, "the other administrator's assignment, and no other")
}

func TestGrantSignsInThroughTheAzureCLIByDefault(t *testing.T) {
	tn := newTenant(t, true, 0, nil)
	tenantID := fakeazure.NewClientID()
	az, err := fakeazure.NewAzureCLI(t.TempDir(), fakeazure.AzureCLIOptions{Token: tn.adminToken, Tenant: tenantID})
	require.NoError(t, err)
	t.Setenv("PATH", az.Dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	r := runGrant(t, map[string]string{"AZURE_CLIENT_ID": tn.identityClientID, "GRAPH_ENDPOINT": tn.graphURL}, "-tenant", tenantID)

	require.NoError(t, r.err)
	assert.Equal(t, []string{userReadAll}, tn.granted())
	calls, err := az.Calls()
	require.NoError(t, err)
	assert.Equal(t, []string{"account get-access-token -o json --resource " + tn.graphURL + " --tenant " + tenantID}, calls,
		"one token, for the Graph resource, from the tenant asked for")
	tn.assertNoSecrets(t, r)
}

func TestGrantSaysToSignInWhenTheAzureCLIIsSignedOut(t *testing.T) {
	tn := newTenant(t, true, 0, nil)
	az, err := fakeazure.NewAzureCLI(t.TempDir(), fakeazure.AzureCLIOptions{Token: "unused", SignedOut: true})
	require.NoError(t, err)
	t.Setenv("PATH", az.Dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	r := runGrant(t, nil, "-client-id", tn.identityClientID, "-graph", tn.graphURL)

	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "find the managed identity's service principal: get a token for "+tn.graphURL+"/.default: sign in (-auth cli): ")
	assert.Contains(t, r.err.Error(), "Please run 'az login' to setup account.", "what az said")
	assert.Contains(t, r.err.Error(), "-auth cli signs in through the Azure CLI: install it and run az login")
	assert.Empty(t, tn.dir.Assignments())
}

func TestGrantSignsInThroughTheDefaultCredentialChain(t *testing.T) {
	tn := newTenant(t, true, 0, nil)
	// The chain skips the credentials these would choose, and reaches the
	// managed identity: the caller's, named by AZURE_CLIENT_ID.
	for _, k := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
		"AZURE_USERNAME", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_TOKEN_CREDENTIALS"} {
		t.Setenv(k, "") // restores the variable after the test
		require.NoError(t, os.Unsetenv(k))
	}
	t.Setenv("AZURE_CLIENT_ID", tn.callerClientID)

	r := runGrant(t, nil, "-auth", "default", "-client-id", tn.identityClientID, "-graph", tn.graphURL)

	require.NoError(t, r.err)
	assert.Equal(t, []string{userReadAll}, tn.granted())
	assert.Equal(t, 1, tn.identityRequests())
}

func TestGrantRefusesBadFlagsBeforeSigningIn(t *testing.T) {
	good := []string{"-auth", "managed-identity", "-client-id", "11111111-2222-3333-4444-555555555555", "-graph", "http://127.0.0.1:1"}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"no client ID", []string{"-auth", "cli"}, nil, []string{"-client-id is required", "AZURE_CLIENT_ID"}},
		{"a client ID that is not a GUID", append(good, "-client-id", "graphusers-id"), nil, []string{`client ID "graphusers-id" is not a GUID`}},
		{"no permission", append(good, "-permissions", " , "), nil, []string{"-permissions is empty"}},
		{"plain http off loopback", append(good, "-graph", "http://graph.example.com"), nil, []string{"-graph", "plain http"}},
		{"a bad GRAPH_ENDPOINT", good[:4], map[string]string{"GRAPH_ENDPOINT": "graph.microsoft.com"}, []string{"-graph", "not an absolute URL"}},
		{"an unknown -auth", append(good, "-auth", "secret"), nil, []string{`-auth "secret": want cli, default or managed-identity`}},
		{"-auth-client-id without a managed identity", append(good, "-auth", "cli", "-auth-client-id", "x"), nil, []string{"-auth-client-id goes with -auth managed-identity"}},
		{"-tenant with a managed identity", append(good, "-tenant", "contoso"), nil, []string{"-tenant goes with -auth cli or default"}},
		{"a stray argument", append(good, "User.Read.All"), nil, []string{`unexpected arguments ["User.Read.All"]`}},
		{"every problem at once", []string{"-auth", "x", "-permissions", "", "-graph", "ftp://g"}, nil, []string{"-client-id is required", "-permissions is empty", "-graph", "-auth"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runGrant(t, tt.env, tt.args...)
			require.Error(t, r.err)
			for _, w := range tt.want {
				assert.Contains(t, r.err.Error(), w)
			}
			assert.Empty(t, r.stdout)
		})
	}
}

func TestGrantHelpPrintsUsage(t *testing.T) {
	r := runGrant(t, nil, "-h")
	require.NoError(t, r.err)
	assert.Contains(t, r.stderr, "Usage: grant -client-id")
	assert.Contains(t, r.stderr, "-dry-run")
}

func TestGrantNeverFollowsARedirectWithTheToken(t *testing.T) {
	var reached atomic.Int32
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		t.Errorf("a request reached the foreign host: %s %s (Authorization set: %v)", r.Method, r.URL, r.Header.Get("Authorization") != "")
	}))
	defer foreign.Close()
	tn := newTenant(t, true, 0, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The same host as Graph, another port: Go's client would keep
			// the Authorization header.
			w.Header().Set("Location", foreign.URL+r.URL.RequestURI())
			w.WriteHeader(http.StatusTemporaryRedirect)
		})
	})

	r := runGrant(t, nil, tn.args()...)

	require.Error(t, r.err)
	assert.Contains(t, r.err.Error(), "refusing to follow a 307 redirect to "+foreign.URL)
	assert.NotContains(t, r.err.Error(), tn.adminToken)
	assert.Zero(t, reached.Load())
	assert.Empty(t, tn.dir.Assignments())
}
