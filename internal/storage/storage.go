// Package storage is the Function App's storage account, reached through
// azblob: small JSON blobs written only when nobody else wrote them
// meanwhile (the delta state), and block blobs streamed from bytes (the
// exports, whose format is their writer's) that become visible whole or
// not at all.
package storage

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// MaxBlobSize bounds what Get reads and Put writes: a state blob is small,
// and a bigger one is a mistake to report, not memory to spend.
const MaxBlobSize = 1 << 20

// Operation names, as Error.Op holds them.
const (
	opCreate = "create container"
	opGet    = "get"
	opPut    = "put"
	opStage  = "stage block of"
	opCommit = "commit"
)

// Retries are bounded and quick, so that a stopped or unreachable account
// fails a call within seconds, not minutes: azblob's default waits
// 0.8 s, 2.4 s and 5.6 s between four tries and bounds no try, so a dial that
// hangs takes 30 s a try. Here: four tries, 0.2 s, 0.6 s and 1.4 s apart
// (±30 % jitter, each wait capped at 2 s); a try gives up after 30 s, time
// for an export's block on a slow link; a dial after 5 s. Refused connections
// fail in about 2 s, a black-holed endpoint in about 25 s.
var retry = policy.RetryOptions{
	MaxRetries:    3,
	TryTimeout:    30 * time.Second,
	RetryDelay:    200 * time.Millisecond,
	MaxRetryDelay: 2 * time.Second,
}

const dialTimeout = 5 * time.Second

// Options configure Open. The zero value suits a connection string in Azure.
type Options struct {
	// Transport sends the HTTP requests; nil means an http.Client that dials
	// with a 5 s timeout.
	Transport policy.Transporter
	// Credential signs in a ManagedIdentity connection: the caller builds an
	// azidentity.ManagedIdentityCredential once, for Connection.ClientID,
	// or with no ID when it is empty (the system-assigned identity). Its
	// tokens are asked for https://storage.azure.com/.default. A SharedKey
	// connection ignores it.
	Credential azcore.TokenCredential
}

// Container is one blob container of the account. It is safe for
// concurrent use; open it once and reuse it.
type Container struct {
	name   string
	client *container.Client
	// blockSize is the size of a BlobWriter's blocks; tests make it small.
	blockSize int
}

// Open returns the container called name in the connection's account. It
// sends nothing: Create makes the container if it is missing.
func Open(conn Connection, name string, o *Options) (*Container, error) {
	if o == nil {
		o = &Options{}
	}
	if err := CheckContainerName(name); err != nil {
		return nil, err
	}
	if conn.Endpoint == "" {
		return nil, errors.New("storage connection has no endpoint: read it with ParseConnection")
	}
	next := o.Transport
	if next == nil {
		next = defaultClient()
	}
	opts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: transport{next},
		Retry:     retry,
		Telemetry: policy.TelemetryOptions{ApplicationID: "GraphUsersTimer"},
		// ParseConnection allows plain http for a token on loopback alone.
		InsecureAllowCredentialWithHTTP: strings.HasPrefix(conn.Endpoint, "http:"),
	}}
	containerURL := conn.Endpoint + "/" + url.PathEscape(name)
	var (
		client *container.Client
		err    error
	)
	switch conn.Auth {
	case SharedKey:
		var cred *container.SharedKeyCredential
		if cred, err = container.NewSharedKeyCredential(conn.AccountName, conn.accountKey); err != nil {
			return nil, fmt.Errorf("storage connection %s: the account key is not valid", conn.Setting)
		}
		client, err = container.NewClientWithSharedKeyCredential(containerURL, cred, opts)
	case ManagedIdentity:
		if o.Credential == nil {
			return nil, fmt.Errorf("storage connection %s signs in with a managed identity, but no credential was given", conn)
		}
		client, err = container.NewClient(containerURL, o.Credential, opts)
	default:
		return nil, fmt.Errorf("storage connection %s: says no way to sign in: read it with ParseConnection", conn)
	}
	if err != nil {
		return nil, fmt.Errorf("storage connection %s: %w", conn.Setting, err)
	}
	return &Container{name: name, client: client, blockSize: defaultBlockSize}, nil
}

// defaultClient is azcore's default transport, but for a dial timeout of 5 s
// instead of 30 s: a storage account answers a dial in milliseconds, and
// one that does not should fail the run quickly.
func defaultClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}
}

// CheckContainerName applies Blob Storage's rules for container names, so
// a bad container name fails before any request.
func CheckContainerName(name string) error {
	bad := len(name) < 3 || len(name) > 63 || strings.Contains(name, "--") ||
		name[0] == '-' || name[len(name)-1] == '-'
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("container name %q is not valid: 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit", name)
	}
	return nil
}

// Name is the container's name.
func (c *Container) Name() string { return c.name }

// Create creates the container when it is missing; one that exists is fine.
func (c *Container) Create(ctx context.Context) error {
	_, err := c.client.Create(ctx, nil)
	if err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return c.newError(ctx, opCreate, "", err)
	}
	return nil
}

// Get reads the blob called name, with its ETag for a later Put. A missing
// blob is an error matching ErrNotFound; one over MaxBlobSize is an error.
func (c *Container) Get(ctx context.Context, name string) ([]byte, azcore.ETag, error) {
	resp, err := c.client.NewBlobClient(name).DownloadStream(ctx, nil)
	if err != nil {
		return nil, "", c.newError(ctx, opGet, name, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != nil && *resp.ContentLength > MaxBlobSize {
		return nil, "", fmt.Errorf("get %s/%s: the blob has %d bytes, more than the %d a state blob may have", c.name, name, *resp.ContentLength, MaxBlobSize)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBlobSize+1))
	if err != nil {
		return nil, "", c.newError(ctx, opGet, name, &transportError{err})
	}
	if len(data) > MaxBlobSize {
		return nil, "", fmt.Errorf("get %s/%s: the blob has more than the %d bytes a state blob may have", c.name, name, MaxBlobSize)
	}
	var etag azcore.ETag
	if resp.ETag != nil {
		etag = *resp.ETag
	}
	return data, etag, nil
}

// Put writes data as the blob called name, application/json, only if nobody
// else wrote it meanwhile: with ifMatch empty, only if the blob does not
// exist yet; otherwise only if its ETag is still ifMatch. When someone else
// won, the error matches ErrConflict and the blob is left as they wrote it.
// It returns the new ETag.
func (c *Container) Put(ctx context.Context, name string, data []byte, ifMatch azcore.ETag) (azcore.ETag, error) {
	if len(data) > MaxBlobSize {
		return "", fmt.Errorf("put %s/%s: %d bytes are more than the %d a state blob may have", c.name, name, len(data), MaxBlobSize)
	}
	cond := &blob.ModifiedAccessConditions{IfMatch: &ifMatch}
	if ifMatch == "" {
		cond = &blob.ModifiedAccessConditions{IfNoneMatch: to(azcore.ETagAny)}
	}
	resp, err := c.client.NewBlockBlobClient(name).Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), &blockblob.UploadOptions{
		HTTPHeaders:      &blob.HTTPHeaders{BlobContentType: to("application/json")},
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: cond},
	})
	if err != nil {
		return "", c.newError(ctx, opPut, name, err)
	}
	var etag azcore.ETag
	if resp.ETag != nil {
		etag = *resp.ETag
	}
	return etag, nil
}

func to[T any](v T) *T { return &v }
