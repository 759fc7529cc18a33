package config

import (
	"strings"
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

func TestLoadNeverRepeatsASecretPastedIntoAnySetting(t *testing.T) {
	for _, s := range Settings {
		for what, v := range fakeazure.PastedSecrets() {
			t.Run(s.Name+" holding "+what, func(t *testing.T) {
				_, err := Load(env(map[string]string{s.Name: v}))
				require.Error(t, err, "a secret is no value of %s", s.Name)
				assertNoSecret(t, err.Error())
				line := lineAbout(err.Error(), s.Name)
				require.NotEmpty(t, line, "the error names %s: %s", s.Name, err)
				assert.Contains(t, line, "looks like a secret")
				assert.Contains(t, line, s.shape, "it says what %s takes", s.Name)
			})
		}
	}
}

func TestEverySettingSaysWhatShapeItTakes(t *testing.T) {
	for _, s := range Settings {
		assert.NotEmpty(t, s.shape, s.Name)
	}
}

func TestTheStorageSettingHoldingAConnectionStringAsksForAName(t *testing.T) {
	v := fakeazure.PastedSecrets()["a connection string with an account key"]
	_, err := Load(env(map[string]string{StorageSetting: v, ExportSetting: "true"}))
	require.Error(t, err)
	assertNoSecret(t, err.Error())
	assert.Contains(t, err.Error(), "GRAPH_USERS_STORAGE: holds what looks like a secret")
	assert.Contains(t, err.Error(), "the name of an app setting, such as AzureWebJobsStorage")
}

func TestLoadNeverRepeatsASecretInTheStorageConnectionsSettings(t *testing.T) {
	for _, key := range []string{"accountName", "credential", "clientId", "managedIdentityResourceId", "blobServiceUri"} {
		for what, v := range fakeazure.PastedSecrets() {
			t.Run(key+" holding "+what, func(t *testing.T) {
				kv := map[string]string{ModeSetting: ModeDelta, "AzureWebJobsStorage__accountName": "myaccount"}
				kv["AzureWebJobsStorage__"+key] = v
				_, err := Load(env(kv))
				require.Error(t, err)
				assertNoSecret(t, err.Error())
				assert.Contains(t, err.Error(), "AzureWebJobsStorage__"+key)
			})
		}
	}
}

func TestLooksSecretKeepsOrdinaryValues(t *testing.T) {
	// Every default and every example of the README's table is an
	// ordinary value, and must keep being echoed when it is wrong.
	for _, v := range []string{
		"id,displayName,userPrincipalName,mail", "extension_b7d8e9f0a1b2c3d4e5f60718293a4b5c_employeeNumber",
		"startsWith(userPrincipalName,'ja')", "accountEnabled eq true", "https://graph.microsoft.us",
		"0 */5 * * * *", "01:00:00", testClientID, "AzureWebJobsStorage", "UseDevelopmentStorage=true",
		"onPremisesSecurityIdentifier,onPremisesDistinguishedName", "graphuserstimer",
		"/subscriptions/0b3c7e3e-2f5c-4c55-9d0c-6a1d2f2b7a10/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-graphusers",
	} {
		for _, s := range Settings {
			_, err := Load(env(map[string]string{s.Name: v}))
			if err != nil {
				assert.NotContains(t, lineAbout(err.Error(), s.Name), "looks like a secret", "%s=%s", s.Name, v)
			}
		}
	}
}

// lineAbout is the line of a Load error that begins with setting's name.
func lineAbout(msg, setting string) string {
	for line := range strings.SplitSeq(msg, "\n") {
		if strings.HasPrefix(line, setting+":") {
			return line
		}
	}
	return ""
}
