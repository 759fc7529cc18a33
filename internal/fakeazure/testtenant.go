package fakeazure

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// TenantOptions configure NewTenant. The zero value is an empty tenant
// served as Graph serves it.
type TenantOptions struct {
	// Graph configures the fake Graph; its Token is the tenant's.
	Graph GraphOptions
	// TokenFault, when set, faults the identity endpoint's token requests,
	// as IdentityOptions.Fault does.
	TokenFault func(attempt int) Fault
	// ConnState, when set, hears of the fake Graph's connections.
	ConnState func(net.Conn, http.ConnState)
	// Wrap, when set, wraps the fake Graph's handler, so that a test can
	// see or change each request on its way in.
	Wrap func(http.Handler) http.Handler
	// AppService serves the identity as App Service and Functions do, at
	// IDENTITY_ENDPOINT with the IDENTITY_HEADER secret, which NewTenant
	// sets in the environment for the credential to find; and Graph over
	// plain http on loopback, as a local run of the Function App reaches
	// it. Otherwise the identity is IMDS's and Graph is served over TLS.
	AppService bool
}

// Tenant is a fake tenant for one test or benchmark: a fake Graph over TLS
// and a fake IMDS, with one managed identity whose real azidentity
// credential reaches them. It is to a Graph client what httptest.NewTLSServer
// and its Server.Client are to an HTTP client: the Credential and Transport
// to build one with, and the URL to point it at.
type Tenant struct {
	// Graph is the fake Graph, for its knobs and counters.
	Graph *Graph
	// Identity is the fake identity endpoint, for its counters.
	Identity *Identity
	// URL is the fake Graph's root, https://127.0.0.1:PORT.
	URL *url.URL
	// ClientID is the tenant's managed identity, new for every tenant:
	// MSAL caches tokens process-wide, by identity.
	ClientID string
	// Token is the one access token the fake Graph accepts.
	Token string
	// IdentityEndpoint is the identity endpoint's URL: IDENTITY_ENDPOINT
	// in App Service mode, the IMDS server's otherwise.
	IdentityEndpoint string
	// Header is the IDENTITY_HEADER secret of App Service mode.
	Header string

	graph *httptest.Server
	imds  *httptest.Server
}

// NewTenant starts a fake tenant and stops it when tb ends. It sets the
// environment variables that name the credential's managed identity source
// (clearing all but App Service's, or all of them for IMDS), so tb must
// not run in parallel.
func NewTenant(tb testing.TB, o TenantOptions) *Tenant {
	tb.Helper()
	// IMDS is the source when no other is named in the environment.
	for _, k := range []string{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"} {
		tb.Setenv(k, "")
	}
	tn := &Tenant{ClientID: NewClientID(), Token: "tok-" + NewClientID()}
	if o.AppService {
		tn.Header = "hdr-" + NewClientID()
	}
	o.Graph.Token = tn.Token
	tn.Graph = NewGraph(o.Graph)
	tn.Identity = NewIdentity(IdentityOptions{ClientID: tn.ClientID, Header: tn.Header, Token: tn.Token, Fault: o.TokenFault})

	var h http.Handler = tn.Graph
	if o.Wrap != nil {
		h = o.Wrap(h)
	}
	tn.graph = httptest.NewUnstartedServer(h)
	tn.graph.Config.ConnState = o.ConnState
	// A request sent ahead and then abandoned may be cut in its handshake.
	tn.graph.Config.ErrorLog = log.New(io.Discard, "", 0)
	if o.AppService {
		tn.graph.Start()
	} else {
		tn.graph.StartTLS()
	}
	tb.Cleanup(tn.graph.Close)
	tn.imds = httptest.NewServer(tn.Identity)
	tb.Cleanup(tn.imds.Close)
	tn.IdentityEndpoint = tn.imds.URL
	if o.AppService {
		tn.IdentityEndpoint += AppServicePath
		// MSAL reads the identity source from the process environment.
		tb.Setenv("IDENTITY_ENDPOINT", tn.IdentityEndpoint)
		tb.Setenv("IDENTITY_HEADER", tn.Header)
	}

	u, err := url.Parse(tn.graph.URL)
	if err != nil {
		tb.Fatalf("fakeazure: graph URL %q: %v", tn.graph.URL, err)
	}
	tn.URL = u
	return tn
}

// Credential returns a new real managed identity credential for the
// tenant's identity, which reaches the fake IMDS through its transport, or
// in App Service mode the endpoint the environment names.
func (tn *Tenant) Credential(tb testing.TB) azcore.TokenCredential {
	tb.Helper()
	o := &azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(tn.ClientID)}
	if tn.Header == "" {
		o.ClientOptions.Transport = IMDSTransport(tn.imds.URL)
	}
	cred, err := azidentity.NewManagedIdentityCredential(o)
	if err != nil {
		tb.Fatalf("fakeazure: managed identity credential: %v", err)
	}
	return cred
}

// Transport returns an HTTP client that trusts the fake Graph's
// certificate, to send a client's requests with; in App Service mode, a
// plain one.
func (tn *Tenant) Transport() *http.Client { return tn.graph.Client() }

// IMDSURL is the fake IMDS server's URL, for an IMDSTransport of its own.
func (tn *Tenant) IMDSURL() string { return tn.imds.URL }
