package grant

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// resource is a service principal whose roles show each way a permission can
// fail to be grantable.
var resource = ServicePrincipal{
	ID: "9a1b2c3d-0000-4000-8000-000000000001", AppID: GraphAppID,
	AppRoles: []AppRole{
		{ID: "df021288-bdef-4463-88db-98f22de89214", Value: "User.Read.All", AllowedMemberTypes: []string{"Application"}, IsEnabled: true},
		{ID: "00000000-0000-4000-8000-000000000002", Value: "Survey.Respond", AllowedMemberTypes: []string{"User"}, IsEnabled: true},
		{ID: "00000000-0000-4000-8000-000000000003", Value: "Legacy.Read.All", AllowedMemberTypes: []string{"Application"}, IsEnabled: false},
		{ID: "00000000-0000-4000-8000-000000000004", Value: "Both.Read.All", AllowedMemberTypes: []string{"User", "Application"}, IsEnabled: true},
	},
	Scopes: []PermissionScope{{ID: "e1fe6dd8-ba31-4d61-89e7-88639da4683d", Value: "User.Read"}},
}

func TestFindRoleReturnsAnApplicationPermission(t *testing.T) {
	for _, perm := range []string{"User.Read.All", "USER.READ.ALL"} {
		r, err := findRole(resource, perm)
		require.NoError(t, err, perm)
		assert.Equal(t, "df021288-bdef-4463-88db-98f22de89214", r.ID)
	}
	r, err := findRole(resource, "Both.Read.All")
	require.NoError(t, err, "a role users and applications may hold")
	assert.Equal(t, "Both.Read.All", r.Value)
}

func TestFindRoleRefusesWhatAManagedIdentityCannotHold(t *testing.T) {
	tests := []struct {
		perm, want string
	}{
		{"Survey.Respond", "Survey.Respond: an app role only User may hold, not an application such as a managed identity"},
		{"Legacy.Read.All", "Legacy.Read.All: an application permission Microsoft Graph has disabled"},
		{"User.Read", "User.Read: a delegated permission"},
		{"Users.Read.All", "Users.Read.All: Microsoft Graph has no application permission by that name; did you mean User.Read.All?"},
	}
	for _, tt := range tests {
		t.Run(tt.perm, func(t *testing.T) {
			_, err := findRole(resource, tt.perm)
			var pe *PermissionError
			require.ErrorAs(t, err, &pe)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestSuggestNeverOffersWhatCannotBeGranted(t *testing.T) {
	assert.Equal(t, []string{"Both.Read.All"}, suggest(resource, "Both.Read"), "not Legacy.Read.All, which is disabled")
	assert.Empty(t, suggest(resource, "Survey.Respnd"), "not Survey.Respond, which only users may hold")
}

func TestDistanceCountsEdits(t *testing.T) {
	assert.Equal(t, 0, distance("user.read.all", "user.read.all"))
	assert.Equal(t, 2, distance("user.raed.all", "user.read.all"))
	assert.Equal(t, 4, distance("user.read", "user.read.all"))
	assert.Equal(t, 3, distance("", "abc"))
}

func TestURLEncodesTheFilterAsGraphReadsIt(t *testing.T) {
	c, err := NewClient(&url.URL{Scheme: "https", Host: "graph.microsoft.com"}, nil, nil)
	require.NoError(t, err)
	assert.Equal(t,
		"https://graph.microsoft.com/v1.0/servicePrincipals?$filter=appId%20eq%20%2700000003-0000-0000-c000-000000000000%27&$select=id%2CappId",
		c.url("/servicePrincipals", "$filter", "appId eq '"+GraphAppID+"'", "$select", "id,appId"))
}
