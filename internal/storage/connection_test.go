package storage

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/azurite"
)

// A made-up key: valid base64, 64 bytes like a real one.
const testKey = "c2VjcmV0LWtleS1vZi10aGUtdGVzdC1hY2NvdW50LW5ldmVyLXRvLWJlLXByaW50ZWQtYW55d2hlcmUhIQ=="

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

const defaultClientID = "11111111-1111-1111-1111-111111111111"

// testResourceID is a user-assigned identity's resource ID, as the portal
// and az identity show print it.
const testResourceID = "/subscriptions/0b3c7e3e-2f5c-4c55-9d0c-6a1d2f2b7a10/resourceGroups/rg-jobs/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-graphusers"

func TestParseConnectionReadsEveryForm(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Connection
	}{
		{
			name: "a connection string with an account key reaches the public cloud over https",
			env:  map[string]string{"AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=myaccount;AccountKey=" + testKey + ";EndpointSuffix=core.windows.net"},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "https://myaccount.blob.core.windows.net", AccountName: "myaccount", Auth: SharedKey},
		},
		{
			name: "a connection string without protocol or suffix defaults to https and core.windows.net",
			env:  map[string]string{"AzureWebJobsStorage": "AccountName=myaccount;AccountKey=" + testKey},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "https://myaccount.blob.core.windows.net", AccountName: "myaccount", Auth: SharedKey},
		},
		{
			name: "a connection string's EndpointSuffix names a national cloud",
			env:  map[string]string{"AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=myaccount;AccountKey=" + testKey + ";EndpointSuffix=core.chinacloudapi.cn;"},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "https://myaccount.blob.core.chinacloudapi.cn", AccountName: "myaccount", Auth: SharedKey},
		},
		{
			name: "a connection string's BlobEndpoint wins, trailing slash dropped",
			env:  map[string]string{"AzureWebJobsStorage": "AccountName=devstoreaccount1;AccountKey=" + testKey + ";BlobEndpoint=http://azurite:10000/devstoreaccount1/;QueueEndpoint=http://azurite:10001/devstoreaccount1"},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "http://azurite:10000/devstoreaccount1", AccountName: "devstoreaccount1", Auth: SharedKey},
		},
		{
			name: "keys are read whatever their case and spacing",
			env:  map[string]string{"AzureWebJobsStorage": " accountname = myaccount ; ACCOUNTKEY=" + testKey + " "},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "https://myaccount.blob.core.windows.net", AccountName: "myaccount", Auth: SharedKey},
		},
		{
			name: "UseDevelopmentStorage=true is Azurite's account on 127.0.0.1:10000",
			env:  map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true"},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "http://127.0.0.1:10000/devstoreaccount1", AccountName: "devstoreaccount1", Auth: SharedKey},
		},
		{
			name: "UseDevelopmentStorage with spaces, as Microsoft's docs write it",
			env:  map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage = true"},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "http://127.0.0.1:10000/devstoreaccount1", AccountName: "devstoreaccount1", Auth: SharedKey},
		},
		{
			name: "DevelopmentStorageProxyUri moves Azurite to the proxy's host, port 10000",
			env:  map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://azurite"},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "http://azurite:10000/devstoreaccount1", AccountName: "devstoreaccount1", Auth: SharedKey},
		},
		{
			name: "blobServiceUri with a user-assigned identity's client ID",
			env: map[string]string{
				"AzureWebJobsStorage__blobServiceUri": "https://myaccount.blob.core.windows.net/",
				"AzureWebJobsStorage__credential":     "managedidentity",
				"AzureWebJobsStorage__clientId":       "22222222-2222-2222-2222-222222222222",
			},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "https://myaccount.blob.core.windows.net", AccountName: "myaccount", Auth: ManagedIdentity, ClientID: "22222222-2222-2222-2222-222222222222"},
		},
		{
			name: "credential=managedidentity without a client ID is the system-assigned identity, as in the host",
			env: map[string]string{
				"AzureWebJobsStorage__accountName": "myaccount",
				"AzureWebJobsStorage__credential":  "ManagedIdentity",
			},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "https://myaccount.blob.core.windows.net", AccountName: "myaccount", Auth: ManagedIdentity},
		},
		{
			name: "no credential setting signs in as AZURE_CLIENT_ID's identity, as DefaultAzureCredential would",
			env:  map[string]string{"AzureWebJobsStorage__accountName": "myaccount"},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "https://myaccount.blob.core.windows.net", AccountName: "myaccount", Auth: ManagedIdentity, ClientID: defaultClientID},
		},
		{
			name: "blobServiceUri wins over accountName, as the host reads AzureWebJobsStorage",
			env: map[string]string{
				"AzureWebJobsStorage__blobServiceUri": "https://other.blob.core.windows.net",
				"AzureWebJobsStorage__accountName":    "myaccount",
			},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "https://other.blob.core.windows.net", AccountName: "other", Auth: ManagedIdentity, ClientID: defaultClientID},
		},
		{
			name: "serviceUri serves when neither blobServiceUri nor accountName is set",
			env:  map[string]string{"AzureWebJobsStorage__serviceUri": "https://myaccount.blob.core.usgovcloudapi.net"},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "https://myaccount.blob.core.usgovcloudapi.net", AccountName: "myaccount", Auth: ManagedIdentity, ClientID: defaultClientID},
		},
		{
			name: "plain http is fine on loopback, for Azurite",
			env:  map[string]string{"AzureWebJobsStorage__blobServiceUri": "http://127.0.0.1:10000/devstoreaccount1"},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "http://127.0.0.1:10000/devstoreaccount1", AccountName: "devstoreaccount1", Auth: ManagedIdentity, ClientID: defaultClientID},
		},
		{
			name: "managedIdentityResourceId names a user-assigned identity by its resource ID, as the host reads it",
			env: map[string]string{
				"AzureWebJobsStorage__accountName":               "myaccount",
				"AzureWebJobsStorage__credential":                "managedidentity",
				"AzureWebJobsStorage__managedIdentityResourceId": testResourceID,
			},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "https://myaccount.blob.core.windows.net", AccountName: "myaccount", Auth: ManagedIdentity, ResourceID: testResourceID},
		},
		{
			name: "managedIdentityResourceId without a credential setting wins over AZURE_CLIENT_ID, as DefaultAzureCredential's option would",
			env: map[string]string{
				"AzureWebJobsStorage__accountName":               "myaccount",
				"AzureWebJobsStorage__managedIdentityResourceId": testResourceID,
			},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "https://myaccount.blob.core.windows.net", AccountName: "myaccount", Auth: ManagedIdentity, ResourceID: testResourceID},
		},
		{
			name: "managedIdentityClientId is clientId under another name",
			env: map[string]string{
				"AzureWebJobsStorage__accountName":             "myaccount",
				"AzureWebJobsStorage__managedIdentityClientId": "22222222-2222-2222-2222-222222222222",
			},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "https://myaccount.blob.core.windows.net", AccountName: "myaccount", Auth: ManagedIdentity, ClientID: "22222222-2222-2222-2222-222222222222"},
		},
		{
			name: "managedIdentityObjectId with credential=managedidentity names the identity by its object ID",
			env: map[string]string{
				"AzureWebJobsStorage__accountName":             "myaccount",
				"AzureWebJobsStorage__credential":              "managedidentity",
				"AzureWebJobsStorage__managedIdentityObjectId": "33333333-3333-3333-3333-333333333333",
			},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "https://myaccount.blob.core.windows.net", AccountName: "myaccount", Auth: ManagedIdentity, ObjectID: "33333333-3333-3333-3333-333333333333"},
		},
		{
			name: "a value wins over identity-based settings of the same name",
			env: map[string]string{
				"AzureWebJobsStorage":                 "UseDevelopmentStorage=true",
				"AzureWebJobsStorage__blobServiceUri": "https://myaccount.blob.core.windows.net",
			},
			want: Connection{Setting: "AzureWebJobsStorage", Endpoint: "http://127.0.0.1:10000/devstoreaccount1", AccountName: "devstoreaccount1", Auth: SharedKey},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConnection("AzureWebJobsStorage", env(tt.env), defaultClientID)
			require.NoError(t, err)
			got.accountKey = ""
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseConnectionLooksUpTheAzureWebJobsPrefixFirst(t *testing.T) {
	c, err := ParseConnection("Exports", env(map[string]string{
		"AzureWebJobsExports": "UseDevelopmentStorage=true",
		"Exports":             "AccountName=myaccount;AccountKey=" + testKey,
	}), "")
	require.NoError(t, err)
	assert.Equal(t, "AzureWebJobsExports", c.Setting)

	c, err = ParseConnection("Exports", env(map[string]string{"Exports__accountName": "myaccount"}), "")
	require.NoError(t, err)
	assert.Equal(t, "Exports", c.Setting, "without the prefixed setting, the name itself")
}

func TestParseConnectionExpandsDevelopmentStorageToAzuritesAccount(t *testing.T) {
	c, err := ParseConnection("AzureWebJobsStorage", env(map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true"}), "")
	require.NoError(t, err)
	assert.Equal(t, azurite.AccountName, c.AccountName)
	assert.Equal(t, azurite.AccountKey, c.accountKey, "the well-known key, the one Azurite checks")
}

func TestParseConnectionSaysWhatIsWrongAndWhere(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // in the error
	}{
		{"a string without '='", map[string]string{"AzureWebJobsStorage": "AccountName=myaccount;" + strings.TrimRight(testKey, "=")},
			"AzureWebJobsStorage: is not a connection string: part 2 has no '='"},
		{"no AccountName", map[string]string{"AzureWebJobsStorage": "AccountKey=" + testKey},
			"AzureWebJobsStorage: the connection string has no AccountName"},
		{"no AccountKey", map[string]string{"AzureWebJobsStorage": "AccountName=myaccount;EndpointSuffix=core.windows.net"},
			"AzureWebJobsStorage: the connection string has no AccountKey"},
		{"a key that is not base64", map[string]string{"AzureWebJobsStorage": "AccountName=myaccount;AccountKey=not*base64" + testKey},
			"AzureWebJobsStorage: the connection string's AccountKey is not base64"},
		{"a SAS", map[string]string{"AzureWebJobsStorage": "BlobEndpoint=https://myaccount.blob.core.windows.net;SharedAccessSignature=sv=2022-11-02&sig=" + testKey},
			"AzureWebJobsStorage: has a SharedAccessSignature, which is not supported"},
		{"a bad BlobEndpoint", map[string]string{"AzureWebJobsStorage": "AccountName=myaccount;AccountKey=" + testKey + ";BlobEndpoint=ftp://x"},
			"AzureWebJobsStorage: the connection string's BlobEndpoint is not an http or https URL"},
		{"a bad protocol", map[string]string{"AzureWebJobsStorage": "DefaultEndpointsProtocol=ftp;AccountName=myaccount;AccountKey=" + testKey},
			"AzureWebJobsStorage: the connection string's DefaultEndpointsProtocol is neither https nor http"},
		{"an AccountName that is no account name", map[string]string{"AzureWebJobsStorage": "AccountName=" + testKey + ";AccountKey=" + testKey},
			"AzureWebJobsStorage: the connection string's AccountName is not a storage account name"},
		{"UseDevelopmentStorage=false", map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=false"},
			"AzureWebJobsStorage: the connection string's UseDevelopmentStorage is not true"},
		{"a bad proxy", map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=azurite"},
			"AzureWebJobsStorage: DevelopmentStorageProxyUri is not an http or https URL"},
		{"identity settings without a place", map[string]string{"AzureWebJobsStorage__credential": "managedidentity"},
			"AzureWebJobsStorage: has identity-based settings but none of AzureWebJobsStorage__blobServiceUri, AzureWebJobsStorage__accountName or AzureWebJobsStorage__serviceUri says where the blob service is"},
		{"http off loopback", map[string]string{"AzureWebJobsStorage__blobServiceUri": "http://myaccount.blob.core.windows.net"},
			"AzureWebJobsStorage__blobServiceUri: plain http is allowed only on loopback (Azurite), where a token cannot be overheard: use https"},
		{"a SAS in the URL", map[string]string{"AzureWebJobsStorage__serviceUri": "https://myaccount.blob.core.windows.net/?sv=2022-11-02&sig=" + testKey},
			"AzureWebJobsStorage__serviceUri: has a query or fragment, which a blob service URL does not take"},
		{"a relative URL", map[string]string{"AzureWebJobsStorage__blobServiceUri": "myaccount.blob.core.windows.net"},
			"AzureWebJobsStorage__blobServiceUri: is not an http or https URL"},
		{"a bad accountName", map[string]string{"AzureWebJobsStorage__accountName": "My_Account"},
			`AzureWebJobsStorage__accountName: "My_Account" is not a storage account name`},
		{"another credential", map[string]string{"AzureWebJobsStorage__accountName": "myaccount", "AzureWebJobsStorage__credential": "workloadidentity"},
			`AzureWebJobsStorage__credential: "workloadidentity" is not supported: set it to managedidentity, or leave it unset`},
		{"a client secret", map[string]string{"AzureWebJobsStorage__accountName": "myaccount", "AzureWebJobsStorage__clientSecret": testKey},
			"AzureWebJobsStorage__clientSecret: secrets and certificates are not supported"},
		{"a resource ID that is none", map[string]string{"AzureWebJobsStorage__accountName": "myaccount", "AzureWebJobsStorage__managedIdentityResourceId": "/subscriptions/x"},
			`AzureWebJobsStorage__managedIdentityResourceId: "/subscriptions/x" is not the resource ID of a user-assigned managed identity: expected /subscriptions/<subscription>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>`},
		{"a client ID that is no GUID", map[string]string{"AzureWebJobsStorage__accountName": "myaccount", "AzureWebJobsStorage__clientId": "my-identity"},
			`AzureWebJobsStorage__clientId: "my-identity" is not a client ID: expected the GUID of a user-assigned managed identity`},
		{"a client ID and a resource ID", map[string]string{"AzureWebJobsStorage__accountName": "myaccount", "AzureWebJobsStorage__clientId": defaultClientID, "AzureWebJobsStorage__managedIdentityResourceId": testResourceID},
			"AzureWebJobsStorage__clientId and AzureWebJobsStorage__managedIdentityResourceId both name an identity: set one of them"},
		{"an object ID without credential=managedidentity", map[string]string{"AzureWebJobsStorage__accountName": "myaccount", "AzureWebJobsStorage__managedIdentityObjectId": defaultClientID},
			"AzureWebJobsStorage__managedIdentityObjectId: is read only with AzureWebJobsStorage__credential=managedidentity, as the host reads it: set that too, or name the identity by AzureWebJobsStorage__clientId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConnection("AzureWebJobsStorage", env(tt.env), defaultClientID)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.False(t, errors.Is(err, ErrNoConnection))
			noSecretIn(t, err.Error(), tt.env)
		})
	}
}

func TestParseConnectionWithNothingSetIsErrNoConnection(t *testing.T) {
	_, err := ParseConnection("AzureWebJobsStorage", env(map[string]string{"AzureWebJobsStorage__unrelated": "x"}), defaultClientID)
	require.ErrorIs(t, err, ErrNoConnection)
	assert.Contains(t, err.Error(), "AzureWebJobsStorage: no storage connection is set")
}

func TestConnectionNeverPrintsItsKey(t *testing.T) {
	kv := map[string]string{"AzureWebJobsStorage": "AccountName=myaccount;AccountKey=" + testKey}
	c, err := ParseConnection("AzureWebJobsStorage", env(kv), "")
	require.NoError(t, err)

	assert.Equal(t, "AzureWebJobsStorage: account myaccount at https://myaccount.blob.core.windows.net, shared key", c.String())
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		noSecretIn(t, fmt.Sprintf(verb, c), kv)
		noSecretIn(t, fmt.Sprintf(verb, &c), kv)
	}
}

func TestConnectionStringSaysWhichIdentity(t *testing.T) {
	c := Connection{Setting: "S", Endpoint: "https://a.blob.core.windows.net", AccountName: "a", Auth: ManagedIdentity}
	assert.Equal(t, "S: account a at https://a.blob.core.windows.net, system-assigned managed identity", c.String())
	c.ClientID = defaultClientID
	assert.Equal(t, "S: account a at https://a.blob.core.windows.net, managed identity "+defaultClientID, c.String())
	c.ClientID, c.ResourceID = "", testResourceID
	assert.Equal(t, "S: account a at https://a.blob.core.windows.net, managed identity "+testResourceID, c.String())
	c.ResourceID, c.ObjectID = "", defaultClientID
	assert.Equal(t, "S: account a at https://a.blob.core.windows.net, managed identity with object ID "+defaultClientID, c.String())
}

func TestConnectionIdentityIsAzidentitysID(t *testing.T) {
	c := Connection{Auth: ManagedIdentity}
	assert.Nil(t, c.Identity(), "the system-assigned identity")
	c.ClientID = defaultClientID
	assert.Equal(t, azidentity.ClientID(defaultClientID), c.Identity())
	c.ClientID, c.ResourceID = "", testResourceID
	assert.Equal(t, azidentity.ResourceID(testResourceID), c.Identity())
	c.ResourceID, c.ObjectID = "", defaultClientID
	assert.Equal(t, azidentity.ObjectID(defaultClientID), c.Identity())
}

// noSecretIn fails when s holds the test key, or any setting's value whole
// (a connection string).
func noSecretIn(t *testing.T, s string, kv map[string]string) {
	t.Helper()
	assert.NotContains(t, s, testKey)
	assert.NotContains(t, s, strings.TrimRight(testKey, "="))
	assert.NotContains(t, s, azurite.AccountKey)
	for k, v := range kv {
		if strings.Contains(v, ";") || strings.Contains(v, "sig=") {
			assert.NotContains(t, s, v, "the value of %s", k)
		}
	}
}
