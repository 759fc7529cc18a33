package storage

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Auth is how a Connection signs its requests in.
type Auth int

const (
	// SharedKey signs each request with the account key of a connection
	// string.
	SharedKey Auth = iota + 1
	// ManagedIdentity sends a Microsoft Entra token of a managed identity.
	ManagedIdentity
)

func (a Auth) String() string {
	switch a {
	case SharedKey:
		return "shared key"
	case ManagedIdentity:
		return "managed identity"
	}
	return "no sign-in"
}

// Connection says where a storage account's Blob service is and how to sign
// in to it, read the way the Functions host reads a connection: from a
// connection string, or from identity-based settings. Build it with
// ParseConnection. Printing it, in any verb, shows no secret.
type Connection struct {
	// Setting is the app setting the connection was read from: the
	// connection string's name, or the prefix of identity-based settings.
	Setting string
	// Endpoint is the blob service URL, without a trailing slash, such as
	// https://myaccount.blob.core.windows.net or
	// http://127.0.0.1:10000/devstoreaccount1.
	Endpoint string
	// AccountName is the storage account's name where the settings tell it.
	AccountName string
	// Auth is how requests are signed in.
	Auth Auth
	// ClientID is the client ID of the user-assigned managed identity whose
	// token is sent. At most one of ClientID, ResourceID and ObjectID is
	// set; none means the system-assigned identity. Only for
	// ManagedIdentity; Identity says it as azidentity takes it.
	ClientID string
	// ResourceID is the Azure resource ID of that identity, when the
	// settings name it so.
	ResourceID string
	// ObjectID is the object (principal) ID of that identity, when the
	// settings name it so.
	ObjectID string

	// accountKey is the secret of a SharedKey connection. It never leaves
	// this package other than as a request signature.
	accountKey string
}

// String describes the connection without its secret.
func (c Connection) String() string {
	var b strings.Builder
	if c.Setting != "" {
		b.WriteString(c.Setting)
		b.WriteString(": ")
	}
	if c.AccountName != "" {
		fmt.Fprintf(&b, "account %s at ", c.AccountName)
	}
	b.WriteString(c.Endpoint)
	b.WriteString(", ")
	switch {
	case c.Auth != ManagedIdentity:
		b.WriteString(c.Auth.String())
	case c.ClientID != "":
		fmt.Fprintf(&b, "managed identity %s", c.ClientID)
	case c.ResourceID != "":
		fmt.Fprintf(&b, "managed identity %s", c.ResourceID)
	case c.ObjectID != "":
		fmt.Fprintf(&b, "managed identity with object ID %s", c.ObjectID)
	default:
		b.WriteString("system-assigned managed identity")
	}
	return b.String()
}

// Identity is the managed identity a ManagedIdentity connection signs in
// as, for azidentity.ManagedIdentityCredentialOptions.ID: its client,
// resource or object ID, or nil for the system-assigned identity.
func (c Connection) Identity() azidentity.ManagedIDKind {
	switch {
	case c.ClientID != "":
		return azidentity.ClientID(c.ClientID)
	case c.ResourceID != "":
		return azidentity.ResourceID(c.ResourceID)
	case c.ObjectID != "":
		return azidentity.ObjectID(c.ObjectID)
	}
	return nil
}

// GoString is String, so that %#v shows no secret either.
func (c Connection) GoString() string { return c.String() }

// ErrNoConnection is returned, wrapped, by ParseConnection when no setting of
// the connection is set at all. Whether that is an error is the caller's
// call: storage may be optional.
var ErrNoConnection = errors.New("no storage connection is set")

// Azurite's well-known account, which UseDevelopmentStorage=true names. The
// key is published in Azure's documentation and guards nothing.
const (
	devAccountName = "devstoreaccount1"
	devAccountKey  = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	devBlobPort    = "10000"
)

// identityKeys are the identity-based settings under a connection's prefix
// (<name>__<key>) that make the connection exist. Some are refused later
// with a reason; knowing them lets the error name the setting.
var identityKeys = []string{
	"blobServiceUri", "serviceUri", "accountName", "credential", "clientId",
	"queueServiceUri", "tableServiceUri",
	"managedIdentityClientId", "managedIdentityResourceId", "managedIdentityObjectId",
	"clientSecret", "clientCertificate", "tenantId",
}

// ParseConnection reads the storage connection called name the way the
// Functions host reads AzureWebJobsStorage:
//
//   - The setting AzureWebJobs<name> is looked up first, then <name>, as the
//     host lets a binding name a connection without its AzureWebJobs prefix.
//     The first that is set, as a value or as identity-based settings, is
//     the connection.
//   - A value is a connection string: AccountName and AccountKey, with
//     BlobEndpoint or DefaultEndpointsProtocol and EndpointSuffix; or
//     UseDevelopmentStorage=true (Azurite's devstoreaccount1 on
//     127.0.0.1:10000, or on DevelopmentStorageProxyUri's host).
//   - Otherwise <name>__blobServiceUri, else <name>__accountName (public
//     cloud: https://<account>.blob.core.windows.net), else
//     <name>__serviceUri locate the blob service, and a managed identity
//     signs in: <name>__clientId (or __managedIdentityClientId) names a
//     user-assigned one by client ID, __managedIdentityResourceId by resource
//     ID, __managedIdentityObjectId by object ID; one of them at most. Without
//     them, <name>__credential=managedidentity means the system-assigned
//     identity, as in the host; with no credential setting the host would use
//     DefaultAzureCredential, which in Azure signs in as the managed identity
//     AZURE_CLIENT_ID names: defaultClientID, which the caller passes.
//
// Errors name the setting at fault and never hold a key, a connection string
// or a SAS, whatever setting it was pasted into (LooksSecret). Nothing set at all is an error wrapping ErrNoConnection.
func ParseConnection(name string, getenv func(string) string, defaultClientID string) (Connection, error) {
	if name == "" {
		return Connection{}, errors.New("storage connection name is empty")
	}
	candidates := []string{name}
	if !strings.HasPrefix(name, "AzureWebJobs") {
		candidates = []string{"AzureWebJobs" + name, name}
	}
	for _, setting := range candidates {
		if v := strings.TrimSpace(getenv(setting)); v != "" {
			return parseConnectionString(setting, v)
		}
		for _, k := range identityKeys {
			if getenv(setting+"__"+k) != "" {
				return parseIdentitySettings(setting, getenv, defaultClientID)
			}
		}
	}
	return Connection{}, fmt.Errorf("%s: %w: set it to a connection string (UseDevelopmentStorage=true for Azurite), or set %s__blobServiceUri or %s__accountName for a managed identity",
		name, ErrNoConnection, name, name)
}

// parseConnectionString reads a connection string. Its errors say which
// part is wrong and never repeat any of it: a mangled string can put its key
// anywhere.
func parseConnectionString(setting, s string) (Connection, error) {
	parts := map[string]string{}
	for i, part := range strings.Split(s, ";") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return Connection{}, fmt.Errorf("%s: is not a connection string: part %d has no '='", setting, i+1)
		}
		parts[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	get := func(key string) string { return parts[strings.ToLower(key)] }

	if dev, ok := parts["usedevelopmentstorage"]; ok {
		return developmentStorage(setting, dev, get("DevelopmentStorageProxyUri"))
	}
	if get("SharedAccessSignature") != "" {
		return Connection{}, fmt.Errorf("%s: has a SharedAccessSignature, which is not supported: use a connection string with AccountName and AccountKey, or identity-based settings", setting)
	}
	c := Connection{Setting: setting, Auth: SharedKey, AccountName: get("AccountName"), accountKey: get("AccountKey")}
	switch {
	case c.AccountName == "":
		return Connection{}, fmt.Errorf("%s: the connection string has no AccountName", setting)
	case c.accountKey == "":
		return Connection{}, fmt.Errorf("%s: the connection string has no AccountKey", setting)
	}
	if _, err := base64.StdEncoding.DecodeString(c.accountKey); err != nil {
		return Connection{}, fmt.Errorf("%s: the connection string's AccountKey is not base64", setting)
	}
	if endpoint := get("BlobEndpoint"); endpoint != "" {
		u, err := parseEndpoint(endpoint)
		if err != nil {
			return Connection{}, fmt.Errorf("%s: the connection string's BlobEndpoint %w", setting, err)
		}
		c.Endpoint = u
		return c, nil
	}
	if !validAccountName(c.AccountName) {
		return Connection{}, fmt.Errorf("%s: the connection string's AccountName is not a storage account name (3 to 24 lowercase letters and digits)", setting)
	}
	scheme := strings.ToLower(get("DefaultEndpointsProtocol"))
	switch scheme {
	case "":
		scheme = "https"
	case "http", "https":
	default:
		return Connection{}, fmt.Errorf("%s: the connection string's DefaultEndpointsProtocol is neither https nor http", setting)
	}
	suffix := get("EndpointSuffix")
	if suffix == "" {
		suffix = "core.windows.net"
	}
	endpoint, err := parseEndpoint(scheme + "://" + c.AccountName + ".blob." + suffix)
	if err != nil {
		return Connection{}, fmt.Errorf("%s: the connection string's EndpointSuffix makes a blob endpoint that %w", setting, err)
	}
	c.Endpoint = endpoint
	return c, nil
}

// developmentStorage expands UseDevelopmentStorage=true, which azblob
// refuses, to Azurite's well-known account, as the Azure Storage SDKs do:
// http://127.0.0.1:10000/devstoreaccount1, or the proxy's scheme and host on
// port 10000.
func developmentStorage(setting, value, proxy string) (Connection, error) {
	if !strings.EqualFold(value, "true") {
		return Connection{}, fmt.Errorf("%s: the connection string's UseDevelopmentStorage is not true", setting)
	}
	scheme, host := "http", "127.0.0.1"
	if proxy != "" {
		u, err := url.Parse(proxy)
		if err != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return Connection{}, fmt.Errorf("%s: DevelopmentStorageProxyUri is not an http or https URL", setting)
		}
		scheme, host = u.Scheme, u.Hostname()
	}
	return Connection{
		Setting:     setting,
		Endpoint:    scheme + "://" + net.JoinHostPort(host, devBlobPort) + "/" + devAccountName,
		AccountName: devAccountName,
		Auth:        SharedKey,
		accountKey:  devAccountKey,
	}, nil
}

// parseIdentitySettings reads the identity-based settings under prefix.
func parseIdentitySettings(prefix string, getenv func(string) string, defaultClientID string) (Connection, error) {
	get := func(key string) string { return strings.TrimSpace(getenv(prefix + "__" + key)) }
	for _, k := range []string{"clientSecret", "clientCertificate"} {
		if get(k) != "" {
			return Connection{}, fmt.Errorf("%s__%s: secrets and certificates are not supported: sign in with a managed identity (%s__credential=managedidentity, %s__clientId)", prefix, k, prefix, prefix)
		}
	}
	credential := get("credential")
	if credential != "" && !strings.EqualFold(credential, "managedidentity") {
		if LooksSecret(credential) {
			return Connection{}, SecretError(prefix+"__credential", "managedidentity, or no value at all")
		}
		return Connection{}, fmt.Errorf("%s__credential: %q is not supported: set it to managedidentity, or leave it unset", prefix, credential)
	}

	c := Connection{Setting: prefix, Auth: ManagedIdentity}
	named, err := readIdentity(prefix, get, credential != "", &c)
	switch {
	case err != nil:
		return Connection{}, err
	case named, credential != "":
		// The host's managedidentity credential without an ID is the
		// system-assigned identity, whatever AZURE_CLIENT_ID says.
	default:
		c.ClientID = defaultClientID
	}

	// The host's order for AzureWebJobsStorage: blobServiceUri over
	// accountName, and serviceUri when neither is set.
	setting, raw := prefix+"__blobServiceUri", get("blobServiceUri")
	if raw == "" {
		if account := get("accountName"); account != "" {
			if !validAccountName(account) {
				const want = "a storage account name (3 to 24 lowercase letters and digits)"
				if LooksSecret(account) {
					return Connection{}, SecretError(prefix+"__accountName", want+", such as myaccount; a connection string goes in "+prefix+" itself")
				}
				return Connection{}, fmt.Errorf("%s__accountName: %q is not %s", prefix, account, want)
			}
			c.AccountName = account
			c.Endpoint = "https://" + account + ".blob.core.windows.net"
			return c, nil
		}
		setting, raw = prefix+"__serviceUri", get("serviceUri")
	}
	if raw == "" {
		return Connection{}, fmt.Errorf("%s: has identity-based settings but none of %s__blobServiceUri, %s__accountName or %s__serviceUri says where the blob service is",
			prefix, prefix, prefix, prefix)
	}
	endpoint, err := parseEndpoint(raw)
	if err != nil {
		return Connection{}, fmt.Errorf("%s: %w", setting, err)
	}
	u, _ := url.Parse(endpoint)
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return Connection{}, fmt.Errorf("%s: plain http is allowed only on loopback (Azurite), where a token cannot be overheard: use https", setting)
	}
	c.Endpoint = endpoint
	c.AccountName = accountFromEndpoint(u)
	return c, nil
}

// identityIDs are the settings that name a user-assigned identity, as
// Microsoft.Extensions.Azure's ClientFactory.CreateCredential reads them
// for the host: clientId and managedIdentityClientId by client ID,
// managedIdentityResourceId by resource ID, managedIdentityObjectId by
// object ID (only with credential=managedidentity). It refuses more than
// one; so does azidentity, which takes one ID.
var identityIDs = []struct {
	key, want string
	valid     func(string) bool
	set       func(*Connection, string)
}{
	{"clientId", "the client ID (a GUID) of a user-assigned managed identity", isGUID, func(c *Connection, v string) { c.ClientID = strings.ToLower(v) }},
	{"managedIdentityClientId", "the client ID (a GUID) of a user-assigned managed identity", isGUID, func(c *Connection, v string) { c.ClientID = strings.ToLower(v) }},
	{"managedIdentityResourceId", "the resource ID of a user-assigned managed identity, " + resourceIDShape, identityResourceID.MatchString, func(c *Connection, v string) { c.ResourceID = v }},
	{"managedIdentityObjectId", "the object ID (a GUID) of a user-assigned managed identity", isGUID, func(c *Connection, v string) { c.ObjectID = strings.ToLower(v) }},
}

const resourceIDShape = "/subscriptions/<subscription>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>"

var (
	guid               = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	identityResourceID = regexp.MustCompile(`(?i)^/subscriptions/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/resourcegroups/[^/]+/providers/microsoft\.managedidentity/userassignedidentities/[^/]+$`)
)

func isGUID(s string) bool { return guid.MatchString(s) }

// readIdentity reads the one setting under prefix that names the
// user-assigned identity into c; named is false when none does.
// managedIdentity says whether credential=managedidentity is set.
func readIdentity(prefix string, get func(string) string, managedIdentity bool, c *Connection) (named bool, err error) {
	var set []string
	for _, id := range identityIDs {
		v := get(id.key)
		if v == "" {
			continue
		}
		setting := prefix + "__" + id.key
		set = append(set, setting)
		switch {
		case LooksSecret(v):
			return false, SecretError(setting, id.want)
		case id.key == "managedIdentityResourceId" && !id.valid(v):
			return false, fmt.Errorf("%s: %q is not the resource ID of a user-assigned managed identity: expected %s", setting, v, resourceIDShape)
		case !id.valid(v):
			return false, fmt.Errorf("%s: %q is not a client ID: expected the GUID of a user-assigned managed identity", setting, v)
		case id.key == "managedIdentityObjectId" && !managedIdentity:
			return false, fmt.Errorf("%s: is read only with %s__credential=managedidentity, as the host reads it: set that too, or name the identity by %s__clientId", setting, prefix, prefix)
		}
		id.set(c, v)
	}
	switch len(set) {
	case 0:
		return false, nil
	case 1:
		return true, nil
	case 2:
		return false, fmt.Errorf("%s and %s both name an identity: set one of them", set[0], set[1])
	}
	return false, fmt.Errorf("%s and %s all name an identity: set one of them", strings.Join(set[:len(set)-1], ", "), set[len(set)-1])
}

// secretMarks are what holds a secret in connection strings, SAS query
// strings and headers, lower case.
var secretMarks = []string{
	"accountkey=", "sharedaccesskey=", "sharedaccesssignature=", "sig=", "password=", "pwd=", "clientsecret=", "bearer ",
}

// minKeyRun is the shortest run of base64 taken for a key: 32 characters,
// shorter than a 32-byte key or signature (44) and as long as the hex of a
// GUID without its hyphens (never mixed case).
const minKeyRun = 32

// LooksSecret reports whether v could hold a secret: it has a part of a
// connection string or SAS that carries one (AccountKey=, SharedAccessKey=,
// SharedAccessSignature=, sig=, Password=, …), or a run of base64 as keys,
// signatures and tokens are (keyRun). A message about a setting holding
// such a value names the setting and never repeats the value.
func LooksSecret(v string) bool {
	lower := strings.ToLower(v)
	for _, m := range secretMarks {
		if strings.Contains(lower, m) {
			return true
		}
	}
	start := -1
	for i := 0; i <= len(v); i++ {
		if i < len(v) && base64Class(v[i]) != 0 {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 && keyRun(v[start:i]) {
			return true
		}
		start = -1
	}
	return false
}

// keyRun reports whether a run of base64 characters looks random, as a key
// does: at least minKeyRun long, with upper and lower case letters and
// digits, changing class at least every other character. Random base64
// changes class at about 2 characters in 3; words, camelCase names and
// paths (/resourceGroups/rg/providers/Microsoft…) change far less often.
func keyRun(run string) bool {
	if len(run) < minKeyRun {
		return false
	}
	var seen [5]bool
	changes := 0
	for i := range len(run) {
		c := base64Class(run[i])
		seen[c] = true
		if i > 0 && c != base64Class(run[i-1]) {
			changes++
		}
	}
	return seen[1] && seen[2] && seen[3] && 2*changes >= len(run)
}

// base64Class is 1 for an upper case letter, 2 lower case, 3 a digit, 4
// '+' or '/', and 0 for anything that is not base64.
func base64Class(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return 1
	case c >= 'a' && c <= 'z':
		return 2
	case c >= '0' && c <= '9':
		return 3
	case c == '+' || c == '/':
		return 4
	}
	return 0
}

// SecretError is the error about setting when its value looks like a
// secret (LooksSecret): it names the setting and what it takes, want, and
// leaves the value out.
func SecretError(setting, want string) error {
	return fmt.Errorf("%s: holds what looks like a secret (a key, a connection string, a SAS or a token), not repeated here: expected %s", setting, want)
}

// parseEndpoint checks a blob service URL and returns it without a trailing
// slash. Its errors never repeat the URL, which might hold a SAS.
func parseEndpoint(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", errors.New("is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("is not an http or https URL")
	case u.Host == "":
		return "", errors.New("has no host")
	case u.User != nil:
		return "", errors.New("holds user information, which a blob service URL does not take")
	case u.RawQuery != "" || u.Fragment != "":
		return "", errors.New("has a query or fragment, which a blob service URL does not take (a SAS is not supported)")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// accountFromEndpoint finds the account name in a blob service URL: the
// first label of <account>.blob.<suffix>, or the first path segment of
// Azurite's path-style URLs. Empty when neither fits.
func accountFromEndpoint(u *url.URL) string {
	host := u.Hostname()
	if account, rest, ok := strings.Cut(host, "."); ok && strings.HasPrefix(rest, "blob.") {
		return account
	}
	if first, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/"); first != "" {
		return first
	}
	return ""
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validAccountName reports whether s can be a storage account's name.
func validAccountName(s string) bool {
	if len(s) < 3 || len(s) > 24 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}
