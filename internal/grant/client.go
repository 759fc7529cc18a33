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

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

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
	ep *graph.Endpoint
}

// NewClient returns a Client for the Graph root endpoint (such as
// https://graph.microsoft.com, or http on loopback for the local fakes) that
// authenticates with cred, asking for the scope <endpoint>/.default.
func NewClient(endpoint *url.URL, cred azcore.TokenCredential, o *ClientOptions) (*Client, error) {
	if o == nil {
		o = &ClientOptions{}
	}
	ep, err := graph.NewEndpoint(endpoint, cred, &graph.EndpointOptions{
		Transport:     o.Transport,
		ApplicationID: "GraphUsersTimer-grant",
	})
	if err != nil {
		return nil, err
	}
	return &Client{ep: ep}, nil
}

// Endpoint returns the Graph root the client talks to.
func (c *Client) Endpoint() *url.URL { return c.ep.Root() }

// url is the absolute URL of a Graph v1.0 path with its query options.
func (c *Client) url(path string, query ...string) string {
	return c.ep.URL("/v1.0"+path, query...)
}

// do sends one request, with body as JSON when not nil, and decodes a
// response of status want into out. Any other status is a *graph.ResponseError,
// with what an administrator can do about it.
func (c *Client) do(ctx context.Context, method, rawURL string, body, out any, want int) error {
	return advise(c.ep.Call(ctx, method, rawURL, body, out, want))
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
