// Package grant gives a managed identity Microsoft Graph application
// permissions: it finds the identity's service principal and Graph's, reads
// each permission's app role from Graph's, and creates the app role
// assignments the identity lacks, as an administrator signed in through
// azidentity.
package grant

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"graphuserstimer/internal/graph"
)

// GraphAppID is the appId of Microsoft Graph's service principal, the same
// in every tenant.
const GraphAppID = "00000003-0000-0000-c000-000000000000"

// ClientOptions configures a Client. The zero value is ready for Azure.
type ClientOptions struct {
	// Transport sends the HTTP requests; nil means azcore's default.
	Transport policy.Transporter
}

// Client sends the directory requests of a grant to one Graph endpoint, with
// the administrator's token for that endpoint.
type Client struct {
	endpoint *url.URL
	pl       runtime.Pipeline
}

// NewClient returns a Client for the Graph root endpoint (such as
// https://graph.microsoft.com, or http on loopback for the local fakes) that
// authenticates with cred, asking for the scope <endpoint>/.default.
func NewClient(endpoint *url.URL, cred azcore.TokenCredential, o *ClientOptions) (*Client, error) {
	if o == nil {
		o = &ClientOptions{}
	}
	root, pl, err := graph.NewPipeline(endpoint, cred, graph.PipelineOptions{
		Transport:     o.Transport,
		ApplicationID: "GraphUsersTimer-grant",
	})
	if err != nil {
		return nil, err
	}
	return &Client{endpoint: root, pl: pl}, nil
}

// Endpoint returns the Graph root the client talks to.
func (c *Client) Endpoint() *url.URL {
	u := *c.endpoint
	return &u
}

// url is the absolute URL of a Graph path with its query options. Spaces are
// sent as %20, which every OData parser reads.
func (c *Client) url(path string, query ...string) string {
	var b strings.Builder
	b.WriteString(c.endpoint.String() + "/v1.0" + path)
	for i := 0; i+1 < len(query); i += 2 {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(query[i] + "=" + strings.ReplaceAll(url.QueryEscape(query[i+1]), "+", "%20"))
	}
	return b.String()
}

// checkOrigin refuses a URL on any other scheme or host than the endpoint's,
// so the administrator's token never leaves for a host a response named.
func (c *Client) checkOrigin(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("parse %q: %w", rawURL, err)
	}
	if !strings.EqualFold(u.Scheme, c.endpoint.Scheme) || !strings.EqualFold(u.Host, c.endpoint.Host) {
		return fmt.Errorf("refusing to send the token to %s://%s: Graph links must stay on %s", u.Scheme, u.Host, c.endpoint)
	}
	return nil
}

// do sends one request, with body as JSON when not nil, and decodes a
// response of status want into out. Any other status is a *graph.ResponseError.
func (c *Client) do(ctx context.Context, method, rawURL string, body, out any, want int) error {
	if err := c.checkOrigin(rawURL); err != nil {
		return err
	}
	req, err := runtime.NewRequest(ctx, method, rawURL)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Raw().Header.Set("Accept", "application/json")
	if body != nil {
		if err := runtime.MarshalAsJSON(req, body); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	resp, err := c.pl.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		re := graph.ReadResponseError(resp)
		re.Hint = hint(re)
		return re
	}
	if out == nil {
		return nil
	}
	if err := runtime.UnmarshalAsJSON(resp, out); err != nil {
		return fmt.Errorf("decode %s %s answer: %w", method, rawURL, err)
	}
	return nil
}

// getAll GETs a collection and every page after it through
// @odata.nextLink, handing each item to each.
func getAll[T any](ctx context.Context, c *Client, first string, each func(T)) error {
	for next, page := first, 1; next != ""; page++ {
		var p struct {
			NextLink string `json:"@odata.nextLink"`
			Value    []T    `json:"value"`
		}
		if err := c.do(ctx, http.MethodGet, next, nil, &p, http.StatusOK); err != nil {
			if page > 1 {
				return fmt.Errorf("page %d: %w", page, err)
			}
			return err
		}
		for _, v := range p.Value {
			each(v)
		}
		next = p.NextLink
	}
	return nil
}
