package graph_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/fakeazure"
	"graphuserstimer/internal/graph"
)

func randomGUID(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// tenant is a fake Graph over TLS and a fake IMDS, with a Client that
// reaches them through the real managed identity credential.
type tenant struct {
	graph    *fakeazure.Graph
	identity *fakeazure.Identity
	client   *graph.Client
	url      *url.URL
}

func newTenant(t testing.TB, users int, o *graph.ClientOptions) *tenant {
	t.Helper()
	// IMDS is the source when no other is named in the environment.
	for _, k := range []string{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"} {
		t.Setenv(k, "")
	}
	clientID, token := randomGUID(t), "tok-"+randomGUID(t)
	tn := &tenant{
		graph:    fakeazure.NewGraph(fakeazure.GraphOptions{Users: users, Token: token}),
		identity: fakeazure.NewIdentity(fakeazure.IdentityOptions{ClientID: clientID, Token: token}),
	}
	gs := httptest.NewTLSServer(tn.graph)
	t.Cleanup(gs.Close)
	is := httptest.NewServer(tn.identity)
	t.Cleanup(is.Close)

	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ID:            azidentity.ClientID(clientID),
		ClientOptions: azcore.ClientOptions{Transport: fakeazure.IMDSTransport(is.URL)},
	})
	require.NoError(t, err)
	tn.url, err = url.Parse(gs.URL)
	require.NoError(t, err)
	if o == nil {
		o = &graph.ClientOptions{}
	}
	o.Transport = gs.Client()
	tn.client, err = graph.NewClient(tn.url, cred, o)
	require.NoError(t, err)
	return tn
}

// list lists every user and counts each id.
func (tn *tenant) list(t testing.TB, q graph.Query) (map[string]int, graph.Stats, error) {
	t.Helper()
	ids := map[string]int{}
	st, err := tn.client.ListUsers(context.Background(), q, graph.Sink{User: func(u []byte) error {
		ids[idOf(t, u)]++
		return nil
	}})
	return ids, st, err
}

func idOf(t testing.TB, user []byte) string {
	var v struct{ ID string }
	require.NoError(t, json.Unmarshal(user, &v))
	return v.ID
}

func assertEveryUserOnce(t *testing.T, ids map[string]int, users int) {
	t.Helper()
	assert.Len(t, ids, users)
	for i := range users {
		if !assert.Equal(t, 1, ids[fakeazure.UserID(i)], "user %d", i) {
			return
		}
	}
}

func TestListUsersFollowsEveryPageOverTLS(t *testing.T) {
	const users = 2_345
	tn := newTenant(t, users, nil)
	ids, st, err := tn.list(t, graph.Query{Select: []string{"id", "displayName"}, Top: 100})
	require.NoError(t, err)

	assertEveryUserOnce(t, ids, users)
	assert.Equal(t, graph.Stats{Users: users, Pages: 24}, st)
	assert.Equal(t, 24, tn.graph.Requests())
	assert.Equal(t, 1, tn.identity.Requests(), "one token for the whole listing")
	assert.Equal(t, []string{tn.url.String()}, tn.identity.Resources(), "the scope is GRAPH_ENDPOINT/.default")
}

func TestListUsersWithTheLargestPages(t *testing.T) {
	tn := newTenant(t, 2_000, nil)
	ids, st, err := tn.list(t, graph.Query{Select: []string{"id"}, Top: 999})
	require.NoError(t, err)
	assertEveryUserOnce(t, ids, 2_000)
	assert.Equal(t, 3, st.Pages)
}

func TestListUsersOfAnEmptyTenant(t *testing.T) {
	tn := newTenant(t, 0, nil)
	ids, st, err := tn.list(t, graph.Query{Select: []string{"id"}, Top: 10})
	require.NoError(t, err)
	assert.Empty(t, ids)
	assert.Equal(t, graph.Stats{Pages: 1}, st)
}

func TestListUsersSendsTheFilter(t *testing.T) {
	tn := newTenant(t, 250, nil)
	// Users 100 to 199 have user principal names starting "user0001".
	ids, _, err := tn.list(t, graph.Query{Select: []string{"id", "displayName"}, Filter: "startswith(userPrincipalName,'user0001')", Top: 30})
	require.NoError(t, err)
	assert.Len(t, ids, 100)
	for i := 100; i < 200; i++ {
		assert.Equal(t, 1, ids[fakeazure.UserID(i)], "user %d", i)
	}
}

func TestListUsersPassesGraphsRefusalOn(t *testing.T) {
	tn := newTenant(t, 10, nil)
	_, st, err := tn.list(t, graph.Query{Select: []string{"id", "noSuchProperty"}, Top: 10})
	require.Error(t, err)
	var ge *graph.ResponseError
	require.ErrorAs(t, err, &ge)
	assert.Equal(t, 400, ge.StatusCode)
	assert.Contains(t, ge.Message, "noSuchProperty")
	assert.NotEmpty(t, ge.RequestID)
	assert.Equal(t, 0, st.Retries, "a 400 is not retried")
}

func TestListUsersStopsWhenTheSinkFails(t *testing.T) {
	tn := newTenant(t, 50, nil)
	stop := fmt.Errorf("stdout closed")
	n := 0
	st, err := tn.client.ListUsers(context.Background(), graph.Query{Select: []string{"id"}, Top: 10}, graph.Sink{
		User: func([]byte) error {
			if n++; n == 15 {
				return stop
			}
			return nil
		},
	})
	require.ErrorIs(t, err, stop)
	assert.Equal(t, 14, st.Users)
	assert.Equal(t, 1, st.Pages)
}

func TestListUsersEndsWithTheContext(t *testing.T) {
	tn := newTenant(t, 50, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err := tn.client.ListUsers(ctx, graph.Query{Select: []string{"id"}, Top: 10}, graph.Sink{User: func([]byte) error { return nil }})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
