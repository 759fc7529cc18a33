// Package graph is a small Microsoft Graph client on an azcore pipeline.
// Endpoint is its request layer: one Graph root, a bearer token for it, and
// the rule that the token goes nowhere else. Client lists users on it,
// streaming pages, retrying what is worth retrying and handing each user
// over exactly once.
//
// One paging engine, the pager (pager.go), reads every collection: it
// follows the links, fetches the next page ahead (prefetch.go), retries,
// reads a broken page again, starts over when a page token expires, and
// checks every link. What a page's items mean is its consumer's business:
// the users listing (users.go, withoutid.go), a delta round (delta.go), the
// split's sample and case probe (split.go). Another collection is a
// consumer and a URL.
//
// The words used throughout:
//
//   - pager: the engine; one pager reads one collection from its first page
//     to its last, and the pagers of one call share a group: the totals and
//     the throttle gate.
//   - reading: one pager's pass over a listing, with its consumer.
//   - part: one prefix of userPrincipalName that a split listing lists on
//     its own, with $filter=startsWith(userPrincipalName,'ja').
//   - stream: one of the goroutines that list a split listing's parts, one
//     part after another.
//   - sample: the UPNs of the first page, from which the split estimates
//     each part's size.
//   - epoch: the number of a reading that hands users over, kept with each
//     user in the record of users handed over, which tells a user a reading
//     repeats on purpose from one Graph sent twice.
//   - round: one delta round, from a deltaLink to the next.
package graph

import (
	"net/url"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// ClientOptions configures a Client. The zero value is ready for Azure.
type ClientOptions struct {
	// Transport sends the HTTP requests; nil means azcore's default. See
	// EndpointOptions.Transport.
	Transport policy.Transporter
	// MaxRetries bounds the retries of one request or page: 6 when zero,
	// none when negative.
	MaxRetries int
	// RetryDelay is the first backoff when the response names no wait; it
	// doubles each retry. 500 ms when zero.
	RetryDelay time.Duration
	// MaxRetryDelay caps each wait. A Retry-After over it is not waited for
	// and fails the request. 60 s when zero.
	MaxRetryDelay time.Duration
	// StallTimeout is how long a response may keep the client waiting for
	// its next byte, headers or body, before the attempt is given up and
	// tried again. 60 s when zero.
	StallTimeout time.Duration
	// TokenTimeout bounds each request for a token; see EndpointOptions.
	TokenTimeout time.Duration
}

// Client lists users from one Graph endpoint. It is safe for concurrent
// use; build it once, as its credential's token cache lives in it.
type Client struct {
	ep    *Endpoint
	retry retryPolicy
}

// NewClient returns a Client for the Graph root (such as
// https://graph.microsoft.com) that authenticates with cred, asking for the
// single scope <root>/.default.
func NewClient(root *url.URL, cred azcore.TokenCredential, o *ClientOptions) (*Client, error) {
	if o == nil {
		o = &ClientOptions{}
	}
	ep, err := NewEndpoint(root, cred, &EndpointOptions{
		Transport:     o.Transport,
		ApplicationID: "GraphUsersTimer",
		// The client retries itself: it reads fractional Retry-After values
		// and re-fetches pages whose body breaks off, which azcore does not.
		Retry:        policy.RetryOptions{MaxRetries: -1},
		StallTimeout: o.StallTimeout,
		TokenTimeout: o.TokenTimeout,
	})
	if err != nil {
		return nil, err
	}
	return &Client{ep: ep, retry: newRetryPolicy(o)}, nil
}
