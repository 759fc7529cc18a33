package fakeazure

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listWith asks the tenant's Graph for its users with the credential's
// token, as a client would.
func listWith(t *testing.T, tn *Tenant) int {
	t.Helper()
	tok, err := tn.Credential(t).GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{tn.URL.String() + "/.default"}})
	require.NoError(t, err)
	assert.Equal(t, tn.Token, tok.Token)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, tn.URL.String()+UsersPath+"?$top=999", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := tn.Transport().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var page struct{ Value []json.RawMessage }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	return len(page.Value)
}

func TestTenantInAppServiceModeServesItsIdentityAsAppServiceDoes(t *testing.T) {
	tn := NewTenant(t, TenantOptions{Graph: GraphOptions{Users: 7}, AppService: true})
	assert.Equal(t, "http", tn.URL.Scheme, "Graph on loopback over http, as a local run reaches it")
	assert.True(t, strings.HasSuffix(tn.IdentityEndpoint, AppServicePath))
	assert.Equal(t, tn.IdentityEndpoint, os.Getenv("IDENTITY_ENDPOINT"))
	assert.Equal(t, tn.Header, os.Getenv("IDENTITY_HEADER"))
	assert.NotEmpty(t, tn.Header)

	assert.Equal(t, 7, listWith(t, tn))
	assert.Equal(t, 1, tn.Identity.Requests(), "the token came from the App Service endpoint")
}

func TestTenantServesItsIdentityAsIMDSByDefault(t *testing.T) {
	t.Setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token")
	tn := NewTenant(t, TenantOptions{Graph: GraphOptions{Users: 3}})
	assert.Equal(t, "https", tn.URL.Scheme)
	assert.Empty(t, os.Getenv("IDENTITY_ENDPOINT"), "no App Service endpoint to mislead the credential")
	assert.Empty(t, tn.Header)
	assert.Equal(t, 3, listWith(t, tn))
	assert.Equal(t, 1, tn.Identity.Requests())
}
