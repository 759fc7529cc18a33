package graph

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseEndpointNormalisesTheOrigin(t *testing.T) {
	tests := map[string]string{
		"https://graph.microsoft.com":        "https://graph.microsoft.com",
		"https://graph.microsoft.com/":       "https://graph.microsoft.com",
		"https://GRAPH.Microsoft.com":        "https://graph.microsoft.com",
		"https://graph.microsoft.com:443":    "https://graph.microsoft.com",
		"https://graph.microsoft.com.":       "https://graph.microsoft.com",
		"https://graph.microsoft.com.:443/":  "https://graph.microsoft.com",
		"https://graph.microsoft.us:8443":    "https://graph.microsoft.us:8443",
		"http://127.0.0.1:7172":              "http://127.0.0.1:7172",
		"http://localhost:80":                "http://localhost",
		"http://[::1]:7172":                  "http://[::1]:7172",
		"https://graph.microsoft.com:00443/": "https://graph.microsoft.com",
	}
	for in, want := range tests {
		u, err := ParseEndpoint(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, u.String(), in)
	}
}

func TestParseEndpointRefusesWhatWouldBreakLater(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://graph.microsoft.com:0", "not a TCP port"},
		{"https://graph.microsoft.com:65536", "not a TCP port"},
		{"http://graph.microsoft.com", "plain http"},
		{"https://graph.microsoft.com/v1.0", "Graph root alone"},
		{"https://graph.microsoft.com?x=1", "Graph root alone"},
		{"https://graph.microsoft.com/?", "Graph root alone"},
		{"graph.microsoft.com", "not an absolute URL"},
		{"ftp://graph.microsoft.com", "https URL"},
	}
	for _, tt := range tests {
		_, err := ParseEndpoint(tt.in)
		require.Error(t, err, tt.in)
		assert.Contains(t, err.Error(), tt.want, tt.in)
	}
}

func TestParseEndpointNeverRepeatsCredentials(t *testing.T) {
	for _, in := range []string{
		"https://admin:s3cret-pw@graph.microsoft.com",
		"https://admin:s3cret-pw@graph.microsoft.com/v1.0",
		"https://admin:s3cret-pw@graph.microsoft.com:99999",
		"https://admin:s3cret-pw@graph micro soft",
		"http://admin:s3cret-pw@example.com",
	} {
		_, err := ParseEndpoint(in)
		require.Error(t, err, in)
		assert.NotContains(t, err.Error(), "s3cret-pw", in)
		assert.Contains(t, err.Error(), "credentials", in)
	}
}

func TestCheckOriginKeepsTheTokenOnTheEndpoint(t *testing.T) {
	root, err := ParseEndpoint("https://graph.microsoft.com")
	require.NoError(t, err)
	ep, err := NewEndpoint(root, nil, nil)
	require.NoError(t, err)
	for _, ok := range []string{
		"https://GRAPH.microsoft.com/v1.0/users?$skiptoken=x",
		"https://graph.microsoft.com:443/v1.0/users",
		"https://graph.microsoft.com./v1.0/users",
	} {
		_, err := ep.CheckOrigin(ok)
		assert.NoError(t, err, ok)
	}
	for _, bad := range []string{
		"https://evil.example/v1.0/users",
		"http://graph.microsoft.com/v1.0/users",
		"https://graph.microsoft.com:8443/v1.0/users",
		"https://graph.microsoft.com.evil.example/v1.0/users",
		"/v1.0/users",
		"https://user:pw@evil.example/v1.0/users",
	} {
		_, err := ep.CheckOrigin(bad)
		var oe *OriginError
		require.ErrorAs(t, err, &oe, bad)
		assert.Contains(t, err.Error(), "refusing to send the token", bad)
		assert.NotContains(t, err.Error(), "pw@", "credentials in a link are never repeated")
		assert.NotContains(t, err.Error(), "/v1.0", "a path or query, which may carry page tokens, is never repeated")
	}
}

func TestURLEncodesQueryOptionsAsGraphReadsThem(t *testing.T) {
	ep, err := NewEndpoint(&url.URL{Scheme: "https", Host: "graph.microsoft.com"}, nil, nil)
	require.NoError(t, err)
	assert.Equal(t,
		"https://graph.microsoft.com/v1.0/servicePrincipals?$filter=appId%20eq%20%2700000003-0000-0000-c000-000000000000%27&$select=id%2CappId",
		ep.URL("/v1.0/servicePrincipals", "$filter", "appId eq '00000003-0000-0000-c000-000000000000'", "$select", "id,appId"))
	assert.Equal(t, "https://graph.microsoft.com/v1.0/users?$top=5", ep.URL("/v1.0/users", "$select", "", "$top", "5"), "an empty option is left out")
}
