package storage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/azurite"
	"graphuserstimer/internal/fakeazure"
)

// testContext bounds one test's calls, so a hung emulator fails the test
// instead of the whole run.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// containerNames keeps containers of parallel tests apart.
var containerNames atomic.Int64

// openContainer opens a fresh container on s through its connection string,
// read as the handler reads AzureWebJobsStorage, and creates it.
func openContainer(t *testing.T, s *azurite.Server) *Container {
	t.Helper()
	conn, err := ParseConnection("AzureWebJobsStorage", env(map[string]string{"AzureWebJobsStorage": s.ConnectionString()}), "")
	require.NoError(t, err)
	name := fmt.Sprintf("test-%d", containerNames.Add(1))
	c, err := Open(conn, name, &Options{Transport: s.Client()})
	require.NoError(t, err)
	require.NoError(t, c.Create(testContext(t)))
	return c
}

// userLine is user i as Graph sends it with its default properties: about
// 360 bytes of JSON.
func userLine(i int) []byte { return fakeazure.UserJSON(i, fakeazure.DefaultProperties) }

// listed is the names of the container's committed blobs.
func listed(t *testing.T, c *Container) []string {
	t.Helper()
	var names []string
	pager := c.client.NewListBlobsFlatPager(nil)
	for pager.More() {
		page, err := pager.NextPage(testContext(t))
		require.NoError(t, err)
		for _, b := range page.Segment.BlobItems {
			names = append(names, *b.Name)
		}
	}
	return names
}

// downloaded is a committed blob as a client downloads it: its bytes and
// response headers.
type downloaded struct {
	data            []byte
	contentLength   int64
	contentType     string
	contentEncoding string
}

func download(t *testing.T, c *Container, name string) downloaded {
	t.Helper()
	resp, err := c.client.NewBlobClient(name).DownloadStream(testContext(t), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	d := downloaded{data: data, contentLength: *resp.ContentLength}
	if resp.ContentType != nil {
		d.contentType = *resp.ContentType
	}
	if resp.ContentEncoding != nil {
		d.contentEncoding = *resp.ContentEncoding
	}
	return d
}

// entraToken is a credential that mints a token shaped like an Entra ID
// access token for the scope asked, as Azurite's --oauth basic checks one:
// issuer, audience and lifetime, never the signature.
type entraToken struct {
	audience string // overrides the scope's resource when set
	asked    atomic.Int64
}

func (c *entraToken) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.asked.Add(1)
	if len(o.Scopes) != 1 {
		return azcore.AccessToken{}, fmt.Errorf("want one scope, got %q", o.Scopes)
	}
	aud := strings.TrimSuffix(o.Scopes[0], "/.default")
	if c.audience != "" {
		aud = c.audience
	}
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{
		"aud": aud,
		"iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
		"iat": now.Add(-time.Minute).Unix(),
		"nbf": now.Add(-time.Minute).Unix(),
		"exp": now.Add(time.Hour).Unix(),
		"oid": "33333333-3333-3333-3333-333333333333",
		"tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
	})
	enc := base64.RawURLEncoding
	token := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims) + "." + enc.EncodeToString([]byte("not-checked"))
	return azcore.AccessToken{Token: token, ExpiresOn: now.Add(time.Hour)}, nil
}
