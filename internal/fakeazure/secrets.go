package fakeazure

import (
	"crypto/sha512"
	"encoding/base64"
	"maps"
	"net/url"
	"strings"
)

// Secret-shaped values, for tests that a secret pasted into the wrong
// setting is never repeated in any output.
var (
	// AccountKey is shaped like a storage account key: 64 bytes, 88
	// characters of base64.
	AccountKey = func() string {
		sum := sha512.Sum512([]byte("a storage account key that must never be printed"))
		return base64.StdEncoding.EncodeToString(sum[:])
	}()
	// SASSignature is shaped like a SAS signature: 32 bytes of base64.
	SASSignature = base64.StdEncoding.EncodeToString([]byte(AccountKey[:32]))
	// slashlessKey is AccountKey without its slashes, which alone would
	// refuse a value in some settings.
	slashlessKey = strings.ReplaceAll(AccountKey, "/", "A")
)

// pastedSecrets hold AccountKey or SASSignature as they get pasted into
// the wrong setting.
var pastedSecrets = map[string]string{
	"a connection string with an account key": "DefaultEndpointsProtocol=https;AccountName=myaccount;AccountKey=" + AccountKey + ";EndpointSuffix=core.windows.net",
	"a SAS URL":                     "https://myaccount.blob.core.windows.net/c?sv=2022-11-02&sp=rwdl&se=2030-01-01T00:00:00Z&sig=" + url.QueryEscape(SASSignature),
	"a SAS connection string":       "BlobEndpoint=https://myaccount.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&sp=rwdl&sig=" + SASSignature,
	"an account key alone":          AccountKey,
	"a key that holds no slash":     slashlessKey,
	"a key pasted after a name":     "AzureWebJobsStorage " + AccountKey,
	"a query string with a sig":     "sv=2022-11-02&sig=" + url.QueryEscape(SASSignature),
	"a mangled connection string":   "AccountName=myaccount;" + AccountKey,
	"a bare key with spaces around": "  " + AccountKey + "  ",
}

// PastedSecrets returns secret-shaped values by what they are: connection
// strings, SAS URLs and keys as they get pasted into the wrong setting.
func PastedSecrets() map[string]string { return maps.Clone(pastedSecrets) }

// SecretParts are the parts of the secrets of PastedSecrets that no output
// may hold: each whole, a long run of each, and the signature as a URL
// carries it.
func SecretParts() []string {
	return []string{AccountKey, AccountKey[20:52], slashlessKey, slashlessKey[30:70],
		SASSignature, SASSignature[8:36], url.QueryEscape(SASSignature)}
}
