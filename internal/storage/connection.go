package storage

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
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
	// token is sent; empty means the system-assigned identity. Only for
	// ManagedIdentity.
	ClientID string

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
	case c.Auth == ManagedIdentity && c.ClientID == "":
		b.WriteString("system-assigned managed identity")
	case c.Auth == ManagedIdentity:
		fmt.Fprintf(&b, "managed identity %s", c.ClientID)
	default:
		b.WriteString(c.Auth.String())
	}
	return b.String()
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
//     signs in: <name>__clientId names a user-assigned one. Without it,
//     <name>__credential=managedidentity means the system-assigned identity,
//     as in the host; with no credential setting the host would use
//     DefaultAzureCredential, which in Azure signs in as the managed identity
//     AZURE_CLIENT_ID names: defaultClientID, which the caller passes.
//
// Errors name the setting at fault and never hold a key, a connection string
// or a SAS. Nothing set at all is an error wrapping ErrNoConnection.
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
	for _, k := range []string{"managedIdentityClientId", "managedIdentityResourceId", "managedIdentityObjectId"} {
		if get(k) != "" {
			return Connection{}, fmt.Errorf("%s__%s: is not supported: name a user-assigned identity by its client ID in %s__clientId", prefix, k, prefix)
		}
	}
	credential := get("credential")
	if credential != "" && !strings.EqualFold(credential, "managedidentity") {
		return Connection{}, fmt.Errorf("%s__credential: %q is not supported: set it to managedidentity, or leave it unset", prefix, credential)
	}

	c := Connection{Setting: prefix, Auth: ManagedIdentity}
	switch {
	case get("clientId") != "":
		c.ClientID = get("clientId")
	case credential != "":
		// The host's managedidentity credential without a client ID is the
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
				return Connection{}, fmt.Errorf("%s__accountName: %q is not a storage account name (3 to 24 lowercase letters and digits)", prefix, account)
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
