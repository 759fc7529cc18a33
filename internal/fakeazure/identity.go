package fakeazure

import (
	"cmp"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Paths the managed identity endpoints serve.
const (
	// AppServicePath is the App Service / Functions token endpoint: IDENTITY_ENDPOINT is the
	// server's URL followed by AppServicePath.
	AppServicePath = "/msi/token"
	// IMDSPath is the Instance Metadata Service token endpoint.
	IMDSPath = "/metadata/identity/oauth2/token"
)

// API versions MSAL sends.
const (
	appServiceAPIVersion = "2019-08-01"
	imdsAPIVersion       = "2018-02-01"
	imdsHost             = "169.254.169.254"
)

// IdentityOptions configure an Identity.
type IdentityOptions struct {
	ClientID string // the only user-assigned client ID that has an identity here
	// ResourceID, when set, is that identity's Azure resource ID, by which a
	// caller may name it instead: mi_res_id on App Service, msi_res_id on IMDS.
	ResourceID string
	Header     string        // the IDENTITY_HEADER secret App Service callers must send as X-IDENTITY-HEADER; empty refuses them all
	Token      string        // the access token issued
	Lifetime   time.Duration // token lifetime; zero means 24h
	// Fault, when set, is asked before each authorized token request what
	// to do to its answer; attempt counts token requests from 1. Status
	// answers that status with the endpoint's error shape, Garbage a 200
	// that is not JSON, Cut a token response that breaks off; Header and
	// Delay apply as in Graph.
	Fault func(attempt int) Fault
}

// Identity fakes the managed identity token endpoints of App Service / Functions (at
// AppServicePath) and of IMDS (at IMDSPath). It knows one user-assigned identity. It is safe for
// concurrent use.
type Identity struct {
	opts IdentityOptions

	requests  atomic.Int64
	attempts  atomic.Int64
	mu        sync.Mutex
	resources []string
}

// NewIdentity returns an Identity that issues o.Token to o.ClientID.
func NewIdentity(o IdentityOptions) *Identity {
	if o.Lifetime == 0 {
		o.Lifetime = 24 * time.Hour
	}
	return &Identity{opts: o}
}

// Requests returns how many token requests were answered 200 so far.
func (f *Identity) Requests() int { return int(f.requests.Load()) }

// Resources returns the resource of every answered token request, in order.
func (f *Identity) Resources() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.resources...)
}

// ServeHTTP answers token requests in the App Service and IMDS protocols.
func (f *Identity) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var serve func(http.ResponseWriter, *http.Request)
	switch r.URL.Path {
	case AppServicePath:
		serve = f.serveAppService
	case IMDSPath:
		serve = f.serveIMDS
	default:
		writeJSON(w, http.StatusNotFound, imdsError{Error: "not_found", ErrorDescription: "no token endpoint at this path"})
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeJSON(w, http.StatusMethodNotAllowed, imdsError{Error: "invalid_request", ErrorDescription: "token requests must use GET"})
		return
	}
	if f.opts.Fault != nil && f.authorized(r) {
		if f.fault(w, r, f.opts.Fault(int(f.attempts.Add(1)))) {
			return
		}
	}
	serve(w, r)
}

// authorized reports whether a request carries what its protocol requires
// of a caller: X-IDENTITY-HEADER for App Service, Metadata: true for IMDS.
func (f *Identity) authorized(r *http.Request) bool {
	if r.URL.Path == IMDSPath {
		return r.Header.Get("Metadata") == "true"
	}
	return f.opts.Header != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("X-IDENTITY-HEADER")), []byte(f.opts.Header)) == 1
}

// fault does what flt says to a token request's answer, and reports
// whether it answered.
func (f *Identity) fault(w http.ResponseWriter, r *http.Request, flt Fault) bool {
	for k, vs := range flt.Header {
		w.Header()[k] = vs
	}
	if flt.Delay > 0 {
		select {
		case <-time.After(flt.Delay):
		case <-r.Context().Done():
			return true
		}
	}
	switch {
	case flt.Status != 0:
		msg := cmp.Or(flt.Message, http.StatusText(flt.Status))
		if r.URL.Path == IMDSPath {
			writeJSON(w, flt.Status, imdsError{Error: cmp.Or(flt.Code, "unknown_error"), ErrorDescription: msg})
		} else {
			writeJSON(w, flt.Status, appServiceError{StatusCode: flt.Status, Message: msg})
		}
	case flt.Garbage:
		writeBody(w, http.StatusOK, "text/html", []byte("<html><body>502 Bad Gateway</body></html>"))
	case flt.Cut:
		body := []byte(`{"access_token":"` + f.opts.Token + `","expires_on":"`)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)+64))
		w.WriteHeader(http.StatusOK)
		// Only the start goes out, short of the token: the connection
		// closes mid-body.
		_, _ = w.Write(body[:len(`{"access_`)])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		panic(http.ErrAbortHandler)
	default:
		return false
	}
	return true
}

// serveAppService speaks the App Service 2019-08-01 protocol.
func (f *Identity) serveAppService(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		writeJSON(w, status, appServiceError{StatusCode: status, Message: msg})
	}
	// The secret is checked first, so an unauthenticated caller learns nothing else.
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-IDENTITY-HEADER")), []byte(f.opts.Header)) != 1 || f.opts.Header == "" {
		fail(http.StatusUnauthorized, "The X-IDENTITY-HEADER header is missing or does not match.")
		return
	}
	q := r.URL.Query()
	if v := q.Get("api-version"); v != appServiceAPIVersion {
		fail(http.StatusBadRequest, fmt.Sprintf("The api-version '%s' is not supported; use %s.", v, appServiceAPIVersion))
		return
	}
	resource := q.Get("resource")
	if resource == "" {
		fail(http.StatusBadRequest, "The resource query parameter is required.")
		return
	}
	if !f.known(q, "mi_res_id") {
		writeJSON(w, http.StatusBadRequest, appServiceError{
			StatusCode:    http.StatusBadRequest,
			Message:       "Unable to load the proper Managed Identity.",
			CorrelationID: newGUID(),
		})
		return
	}
	now := time.Now()
	f.issued(resource)
	writeJSON(w, http.StatusOK, struct {
		AccessToken string `json:"access_token"`
		ExpiresOn   string `json:"expires_on"`
		Resource    string `json:"resource"`
		TokenType   string `json:"token_type"`
		ClientID    string `json:"client_id"`
	}{f.opts.Token, unix(now.Add(f.opts.Lifetime)), resource, "Bearer", f.opts.ClientID})
}

// serveIMDS speaks the IMDS 2018-02-01 protocol.
func (f *Identity) serveIMDS(w http.ResponseWriter, r *http.Request) {
	fail := func(msg string) {
		writeJSON(w, http.StatusBadRequest, imdsError{Error: "invalid_request", ErrorDescription: msg})
	}
	if r.Header.Get("Metadata") != "true" {
		fail("Required metadata header not specified")
		return
	}
	q := r.URL.Query()
	if v := q.Get("api-version"); v != imdsAPIVersion {
		fail(fmt.Sprintf("Invalid or missing api-version %q; use %s", v, imdsAPIVersion))
		return
	}
	resource := q.Get("resource")
	if resource == "" {
		fail("Required query variable 'resource' is missing")
		return
	}
	if !f.known(q, "msi_res_id") {
		fail("Identity not found")
		return
	}
	now := time.Now()
	secs := strconv.FormatInt(int64(f.opts.Lifetime/time.Second), 10)
	f.issued(resource)
	writeJSON(w, http.StatusOK, struct {
		AccessToken  string `json:"access_token"`
		ClientID     string `json:"client_id"`
		ExpiresIn    string `json:"expires_in"`
		ExpiresOn    string `json:"expires_on"`
		ExtExpiresIn string `json:"ext_expires_in"`
		NotBefore    string `json:"not_before"`
		Resource     string `json:"resource"`
		TokenType    string `json:"token_type"`
	}{f.opts.Token, f.opts.ClientID, secs, unix(now.Add(f.opts.Lifetime)), secs, unix(now), resource, "Bearer"})
}

// known reports whether the request's query names the one identity here: by
// client_id, GUIDs compared without case, or by its resource ID in the
// parameter resParam, compared without case as Azure's resource IDs are.
func (f *Identity) known(q url.Values, resParam string) bool {
	if id := q.Get("client_id"); id != "" {
		return strings.EqualFold(id, f.opts.ClientID)
	}
	rid := q.Get(resParam)
	return rid != "" && f.opts.ResourceID != "" && strings.EqualFold(rid, f.opts.ResourceID)
}

// issued records a token answered for resource.
func (f *Identity) issued(resource string) {
	f.mu.Lock()
	f.resources = append(f.resources, resource)
	f.mu.Unlock()
	f.requests.Add(1)
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// IMDSTransport returns a client that sends requests for IMDS (http://169.254.169.254) to the
// plain-http server at serverURL instead, such as an httptest.NewServer running an Identity. Pass
// it as azidentity's ClientOptions.Transport: IMDS has no environment override. Requests for any
// other host fail without reaching the network.
func IMDSTransport(serverURL string) *http.Client {
	target, err := url.Parse(serverURL)
	if err == nil && (target.Scheme != "http" || target.Host == "") {
		err = errors.New("want an http://host:port URL")
	}
	if err != nil {
		err = fmt.Errorf("fakeazure: IMDS server URL %q: %w", serverURL, err)
	}
	return &http.Client{
		Transport: imdsRewriter{target: target, err: err, next: &http.Transport{}},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("fakeazure: IMDS does not redirect")
		},
	}
}

// imdsRewriter is the round tripper behind IMDSTransport.
type imdsRewriter struct {
	target *url.URL
	err    error
	next   http.RoundTripper
}

func (t imdsRewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	err := t.err
	if err == nil && (r.URL.Scheme != "http" || r.URL.Host != imdsHost) {
		err = fmt.Errorf("fakeazure: refusing %s %s://%s: only IMDS at http://%s is faked", r.Method, r.URL.Scheme, r.URL.Host, imdsHost)
	}
	if err != nil {
		if r.Body != nil {
			_ = r.Body.Close() // a RoundTripper closes the body even when it fails
		}
		return nil, err
	}
	out := r.Clone(r.Context())
	out.URL.Scheme = t.target.Scheme
	out.URL.Host = t.target.Host
	out.Host = ""
	return t.next.RoundTrip(out)
}
