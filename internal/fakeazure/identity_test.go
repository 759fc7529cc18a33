package fakeazure

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	graphResource = "https://graph.microsoft.com"
	graphScope    = graphResource + "/.default"
	testHeader    = "identity-header-secret"
	testToken     = "issued-access-token"
)

// newIdentityServer serves an Identity for clientID over plain http.
func newIdentityServer(t *testing.T, clientID string, lifetime time.Duration) (*Identity, *httptest.Server) {
	t.Helper()
	id := NewIdentity(IdentityOptions{ClientID: clientID, Header: testHeader, Token: testToken, Lifetime: lifetime})
	srv := httptest.NewServer(id)
	t.Cleanup(srv.Close)
	return id, srv
}

// tokenRequest is a token request the fake should judge.
type tokenRequest struct {
	method, path string
	query        url.Values
	header       http.Header
}

func (tr tokenRequest) do(t *testing.T, base string) (*http.Response, map[string]any) {
	t.Helper()
	if tr.method == "" {
		tr.method = http.MethodGet
	}
	req, err := http.NewRequest(tr.method, base+tr.path+"?"+tr.query.Encode(), nil)
	require.NoError(t, err)
	req.Header = tr.header
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m), "%s", body)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.NotContains(t, string(body), testHeader, "the identity header is never echoed")
	return resp, m
}

func appServiceQuery(clientID string) url.Values {
	return url.Values{"api-version": {"2019-08-01"}, "client_id": {clientID}, "resource": {graphResource}}
}

func imdsQuery(clientID string) url.Values {
	return url.Values{"api-version": {"2018-02-01"}, "client_id": {clientID}, "resource": {graphResource}}
}

func TestAppServiceIssuesATokenToTheKnownIdentity(t *testing.T) {
	const clientID = "00000000-0000-0000-0000-0000000000a1"
	id, srv := newIdentityServer(t, clientID, time.Hour)

	resp, body := tokenRequest{path: AppServicePath, query: appServiceQuery(clientID),
		header: http.Header{"X-Identity-Header": {testHeader}}}.do(t, srv.URL)

	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, testToken, body["access_token"])
	assert.Equal(t, graphResource, body["resource"])
	assert.Equal(t, "Bearer", body["token_type"])
	assert.Equal(t, clientID, body["client_id"])
	expiresOn, err := strconv.ParseInt(body["expires_on"].(string), 10, 64)
	require.NoError(t, err, "expires_on is unix seconds as a string")
	assert.InDelta(t, time.Now().Add(time.Hour).Unix(), expiresOn, 5)
	assert.Equal(t, 1, id.Requests())
	assert.Equal(t, []string{graphResource}, id.Resources())
}

func TestAppServiceRefusesBadRequests(t *testing.T) {
	const clientID = "00000000-0000-0000-0000-0000000000a2"
	good := http.Header{"X-Identity-Header": {testHeader}}
	without := func(key string) url.Values {
		q := appServiceQuery(clientID)
		q.Del(key)
		return q
	}
	with := func(key, value string) url.Values {
		q := appServiceQuery(clientID)
		q.Set(key, value)
		return q
	}
	tests := []struct {
		name    string
		req     tokenRequest
		status  int
		message string
	}{
		{"an old api-version is refused", tokenRequest{query: with("api-version", "2017-09-01"), header: good}, 400, ""},
		{"a missing identity header is unauthorized", tokenRequest{query: appServiceQuery(clientID)}, 401, ""},
		{"a wrong identity header is unauthorized", tokenRequest{query: appServiceQuery(clientID),
			header: http.Header{"X-Identity-Header": {testHeader + "x"}}}, 401, ""},
		{"an unknown client ID has no identity", tokenRequest{query: with("client_id", "99999999-0000-0000-0000-000000000000"), header: good},
			400, "Unable to load the proper Managed Identity."},
		{"no client ID asks for a system identity that does not exist", tokenRequest{query: without("client_id"), header: good},
			400, "Unable to load the proper Managed Identity."},
		{"a missing resource is refused", tokenRequest{query: without("resource"), header: good}, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, srv := newIdentityServer(t, clientID, 0)
			tt.req.path = AppServicePath
			resp, body := tt.req.do(t, srv.URL)

			assert.Equal(t, tt.status, resp.StatusCode)
			assert.EqualValues(t, tt.status, body["statusCode"])
			assert.NotEmpty(t, body["message"])
			if tt.message != "" {
				assert.Equal(t, tt.message, body["message"])
				assert.Regexp(t, guidPattern, body["correlationId"])
			}
			assert.NotContains(t, body, "access_token")
			assert.Zero(t, id.Requests())
		})
	}
}

func TestIMDSIssuesATokenWithStringNumbers(t *testing.T) {
	const clientID = "00000000-0000-0000-0000-0000000000b1"
	id, srv := newIdentityServer(t, clientID, time.Hour)

	resp, body := tokenRequest{path: IMDSPath, query: imdsQuery(clientID),
		header: http.Header{"Metadata": {"true"}}}.do(t, srv.URL)

	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, testToken, body["access_token"])
	assert.Equal(t, clientID, body["client_id"])
	assert.Equal(t, "3600", body["expires_in"])
	assert.Equal(t, "3600", body["ext_expires_in"])
	assert.Equal(t, graphResource, body["resource"])
	assert.Equal(t, "Bearer", body["token_type"])
	expiresOn, err := strconv.ParseInt(body["expires_on"].(string), 10, 64)
	require.NoError(t, err)
	notBefore, err := strconv.ParseInt(body["not_before"].(string), 10, 64)
	require.NoError(t, err)
	assert.Equal(t, int64(3600), expiresOn-notBefore)
	assert.Equal(t, []string{graphResource}, id.Resources())
}

func TestIMDSRefusesBadRequests(t *testing.T) {
	const clientID = "00000000-0000-0000-0000-0000000000b2"
	metadata := http.Header{"Metadata": {"true"}}
	tests := []struct {
		name        string
		req         tokenRequest
		description string
	}{
		{"a missing Metadata header is refused", tokenRequest{query: imdsQuery(clientID)}, "Required metadata header not specified"},
		{"an unknown client ID is not found", tokenRequest{query: imdsQuery("99999999-0000-0000-0000-000000000000"), header: metadata}, "Identity not found"},
		{"a wrong api-version is refused", tokenRequest{query: url.Values{"api-version": {"2019-08-01"}, "client_id": {clientID},
			"resource": {graphResource}}, header: metadata}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, srv := newIdentityServer(t, clientID, 0)
			tt.req.path = IMDSPath
			resp, body := tt.req.do(t, srv.URL)

			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Equal(t, "invalid_request", body["error"])
			if tt.description != "" {
				assert.Equal(t, tt.description, body["error_description"])
			}
			assert.Zero(t, id.Requests())
		})
	}
}

func TestIdentityAnswersOnlyGETOnItsTwoPaths(t *testing.T) {
	const clientID = "00000000-0000-0000-0000-0000000000c1"
	_, srv := newIdentityServer(t, clientID, 0)
	good := http.Header{"X-Identity-Header": {testHeader}}

	resp, _ := tokenRequest{method: http.MethodPost, path: AppServicePath, query: appServiceQuery(clientID), header: good}.do(t, srv.URL)
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "GET", resp.Header.Get("Allow"))

	resp, _ = tokenRequest{path: "/other", query: appServiceQuery(clientID), header: good}.do(t, srv.URL)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// The azidentity tests use a fresh client ID each run: MSAL caches tokens process-wide by identity
// and resource, so a reused ID would be answered from the cache, even under -count=2.

// setEnv sets environment variables for the test; "" hides a variable from MSAL.
func setEnv(t *testing.T, kv ...string) {
	for k := 0; k < len(kv); k += 2 {
		t.Setenv(kv[k], kv[k+1])
	}
}

func TestAzidentityGetsATokenFromTheAppServiceFake(t *testing.T) {
	clientID := newGUID()
	id, srv := newIdentityServer(t, clientID, 0)
	setEnv(t, "IDENTITY_ENDPOINT", srv.URL+AppServicePath, "IDENTITY_HEADER", testHeader, "IDENTITY_SERVER_THUMBPRINT", "")

	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(clientID)})
	require.NoError(t, err)
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{graphScope}})
	require.NoError(t, err)

	assert.Equal(t, testToken, tok.Token)
	assert.WithinDuration(t, time.Now().Add(24*time.Hour), tok.ExpiresOn, time.Minute)
	assert.Equal(t, []string{graphResource}, id.Resources(), "MSAL trims /.default to the resource")

	_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{graphScope}})
	require.NoError(t, err)
	assert.Equal(t, 1, id.Requests(), "the second token comes from the credential's cache")
}

func TestAzidentityFailsForAnUnknownAppServiceIdentity(t *testing.T) {
	_, srv := newIdentityServer(t, newGUID(), 0)
	setEnv(t, "IDENTITY_ENDPOINT", srv.URL+AppServicePath, "IDENTITY_HEADER", testHeader, "IDENTITY_SERVER_THUMBPRINT", "")

	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ID: azidentity.ClientID(newGUID())})
	require.NoError(t, err)
	_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{graphScope}})

	var failed *azidentity.AuthenticationFailedError
	require.ErrorAs(t, err, &failed)
	require.NotNil(t, failed.RawResponse)
	assert.Equal(t, http.StatusBadRequest, failed.RawResponse.StatusCode)
	assert.Contains(t, err.Error(), "Unable to load the proper Managed Identity.")
}

// imdsCredential builds a credential that must choose IMDS, reaching srv through IMDSTransport.
func imdsCredential(t *testing.T, srv *httptest.Server, clientID string) *azidentity.ManagedIdentityCredential {
	t.Helper()
	setEnv(t, "IDENTITY_ENDPOINT", "", "IDENTITY_HEADER", "", "MSI_ENDPOINT", "", "IMDS_ENDPOINT", "")
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ID:            azidentity.ClientID(clientID),
		ClientOptions: azcore.ClientOptions{Transport: IMDSTransport(srv.URL)},
	})
	require.NoError(t, err)
	return cred
}

func TestAzidentityGetsATokenFromTheIMDSFake(t *testing.T) {
	clientID := newGUID()
	id, srv := newIdentityServer(t, clientID, 0)

	tok, err := imdsCredential(t, srv, clientID).GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{graphScope}})
	require.NoError(t, err)

	assert.Equal(t, testToken, tok.Token)
	assert.Equal(t, []string{graphResource}, id.Resources())
}

func TestAzidentityFailsForAnUnknownIMDSIdentity(t *testing.T) {
	id, srv := newIdentityServer(t, newGUID(), 0)

	_, err := imdsCredential(t, srv, newGUID()).GetToken(context.Background(),
		policy.TokenRequestOptions{Scopes: []string{graphScope}})

	var failed *azidentity.AuthenticationFailedError
	require.ErrorAs(t, err, &failed)
	assert.Contains(t, err.Error(), "the requested identity isn't assigned to this resource")
	assert.Zero(t, id.Requests())
}

func TestIMDSTransportRefusesEveryOtherHost(t *testing.T) {
	var served atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served.Store(true) }))
	t.Cleanup(srv.Close)
	client := IMDSTransport(srv.URL)

	for _, target := range []string{srv.URL + IMDSPath, "http://example.com" + IMDSPath, "https://169.254.169.254" + IMDSPath} {
		resp, err := client.Get(target)
		if resp != nil {
			resp.Body.Close()
		}
		require.Error(t, err, target)
		assert.Contains(t, err.Error(), "only IMDS at http://169.254.169.254 is faked")
	}
	assert.False(t, served.Load())

	_, err := IMDSTransport("not a url").Get("http://169.254.169.254" + IMDSPath)
	var urlErr *url.Error
	require.ErrorAs(t, err, &urlErr)
	assert.Contains(t, err.Error(), "IMDS server URL")
}
