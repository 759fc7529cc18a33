package main

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/azurite"
	"graphuserstimer/internal/fakeazure"
)

// TestStorageSignsInAsTheIdentityItsSettingsName checks that an
// identity-based storage connection naming its identity by resource ID gets
// its storage token as that identity: the fake identity endpoint knows it by
// that resource ID alone, and answers no other.
func TestStorageSignsInAsTheIdentityItsSettingsName(t *testing.T) {
	az := newAzure(t, 10)
	const rid = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/storage-id"
	// A second identity, known by its resource ID, at the same endpoint:
	// Graph's token still comes by AZURE_CLIENT_ID.
	storageID := fakeazure.NewIdentity(fakeazure.IdentityOptions{ClientID: fakeazure.NewClientID(), ResourceID: rid,
		Header: az.header, Token: "storage-" + fakeazure.NewClientID()})
	is := httptest.NewServer(storageID)
	t.Cleanup(is.Close)
	t.Setenv("IDENTITY_ENDPOINT", is.URL+fakeazure.AppServicePath)

	srv := azurite.Start(t)
	env := az.settings(t)
	env["IDENTITY_ENDPOINT"] = is.URL + fakeazure.AppServicePath
	env["GRAPH_USERS_MODE"] = "delta"
	env["AzureFunctionsWebHost__hostid"] = "app"
	env["AzureWebJobsStorage__blobServiceUri"] = srv.BlobEndpoint()
	env["AzureWebJobsStorage__managedIdentityResourceId"] = rid
	h := startHandler(t, env)

	// Azurite here checks no token: what matters is whose token was asked
	// for, whatever storage then makes of it.
	_, err := h.host.Invoke(context.Background(), "GraphUsersTimer", invocationBody(t, "timer.json"))
	require.NoError(t, err)
	require.NoError(t, h.stop())
	assert.Contains(t, storageID.Resources(), "https://storage.azure.com",
		"the storage token was asked for by the resource ID; stderr: %s", h.stderr)
	assert.NotContains(t, h.stdout.String()+h.stderr.String(), az.header)
}
