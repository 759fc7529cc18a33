package config

import (
	"crypto/sha512"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// secretKey is shaped like a storage account key: 64 bytes, 88 characters
// of base64.
var secretKey = func() string {
	sum := sha512.Sum512([]byte("a storage account key that must never be printed"))
	return base64.StdEncoding.EncodeToString(sum[:])
}()

// secretSig is shaped like a SAS signature: 32 bytes of base64.
var secretSig = base64.StdEncoding.EncodeToString([]byte(secretKey[:32]))

// secretValues are values that hold a secret, as they get pasted into the
// wrong setting.
var secretValues = map[string]string{
	"a connection string with an account key": "DefaultEndpointsProtocol=https;AccountName=myaccount;AccountKey=" + secretKey + ";EndpointSuffix=core.windows.net",
	"a SAS URL":                     "https://myaccount.blob.core.windows.net/c?sv=2022-11-02&sp=rwdl&se=2030-01-01T00:00:00Z&sig=" + url.QueryEscape(secretSig),
	"a SAS connection string":       "BlobEndpoint=https://myaccount.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&sp=rwdl&sig=" + secretSig,
	"an account key alone":          secretKey,
	"a key pasted after a name":     "AzureWebJobsStorage " + secretKey,
	"a query string with a sig":     "sv=2022-11-02&sig=" + url.QueryEscape(secretSig),
	"a bare key with spaces around": "  " + secretKey + "  ",
}

// assertNoSecret fails when s holds any part of a secret value worth
// stealing: the key, the signature, or a long run of either.
func assertNoSecret(t *testing.T, s string) {
	t.Helper()
	for _, part := range []string{secretKey, secretKey[20:52], secretSig, secretSig[8:36], url.QueryEscape(secretSig)} {
		assert.NotContains(t, s, part)
	}
}

func TestLoadNeverRepeatsASecretPastedIntoAnySetting(t *testing.T) {
	for _, s := range Settings {
		for what, v := range secretValues {
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
	v := secretValues["a connection string with an account key"]
	_, err := Load(env(map[string]string{StorageSetting: v, ExportSetting: "true"}))
	require.Error(t, err)
	assertNoSecret(t, err.Error())
	assert.Contains(t, err.Error(), "GRAPH_USERS_STORAGE: holds what looks like a secret")
	assert.Contains(t, err.Error(), "the name of an app setting, such as AzureWebJobsStorage")
}

func TestLoadNeverRepeatsASecretInTheStorageConnectionsSettings(t *testing.T) {
	for _, key := range []string{"accountName", "credential", "clientId", "managedIdentityResourceId", "blobServiceUri"} {
		for what, v := range secretValues {
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
