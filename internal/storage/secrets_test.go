package storage

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/fakeazure"
)

// assertNoSecret fails when s holds any part of a secret value worth
// stealing: the key, the signature, or a long run of either.
func assertNoSecret(t *testing.T, s string) {
	t.Helper()
	for _, part := range fakeazure.SecretParts() {
		assert.NotContains(t, s, part)
	}
}

func TestParseConnectionNeverRepeatsASecretInAnySetting(t *testing.T) {
	// Every setting of a connection the host reads, and the connection's
	// own value; where a value is refused, the error names its setting.
	settings := []struct {
		key     string // "" is the connection's value itself
		refused bool   // a secret there is refused, not ignored
	}{
		{"", true},
		{"blobServiceUri", true}, {"serviceUri", true}, {"accountName", true},
		{"credential", true}, {"clientId", true},
		{"managedIdentityClientId", true}, {"managedIdentityResourceId", true}, {"managedIdentityObjectId", true},
		{"clientSecret", true}, {"clientCertificate", true},
		{"tenantId", false}, {"queueServiceUri", false}, {"tableServiceUri", false},
	}
	for _, s := range settings {
		for what, v := range fakeazure.PastedSecrets() {
			setting := "AzureWebJobsStorage"
			if s.key != "" {
				setting += "__" + s.key
			}
			t.Run(setting+" holding "+what, func(t *testing.T) {
				kv := map[string]string{setting: v}
				// Somewhere for the blob service, unless the setting says it.
				if !slices.Contains([]string{"", "blobServiceUri", "serviceUri", "accountName"}, s.key) {
					kv["AzureWebJobsStorage__accountName"] = "myaccount"
				}
				c, err := ParseConnection("AzureWebJobsStorage", env(kv), defaultClientID)
				valid := s.key == "" && what == "a connection string with an account key"
				if (!s.refused || valid) && err == nil {
					assertNoSecret(t, fmt.Sprintf("%v %+v %#v", c, c, c))
					return
				}
				require.Error(t, err)
				assertNoSecret(t, err.Error())
				assert.Contains(t, err.Error(), setting+":", "the error names the setting")
			})
		}
	}
}

func TestSecretShapedValuesAreToldApart(t *testing.T) {
	for what, v := range fakeazure.PastedSecrets() {
		assert.True(t, LooksSecret(v), what)
	}
	for _, v := range []string{
		"", "myaccount", "managedidentity", "workloadidentity", defaultClientID, "AzureWebJobsStorage",
		"UseDevelopmentStorage=true", "https://myaccount.blob.core.windows.net", "My_Account",
		"/subscriptions/0b3c7e3e-2f5c-4c55-9d0c-6a1d2f2b7a10/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-graphusers",
		"extension_b7d8e9f0a1b2c3d4e5f60718293a4b5c_employeeNumber",
	} {
		assert.False(t, LooksSecret(v), v)
	}
	assert.True(t, LooksSecret("Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL3N0b3JhZ2UuYXp1cmUuY29tIn0.c2ln"), "a token")
}
