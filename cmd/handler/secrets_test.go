package main

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/config"
	"graphuserstimer/internal/customhandler"
	"graphuserstimer/internal/fakeazure"
)

func TestStartUpNeverRepeatsASecretPastedIntoAnySetting(t *testing.T) {
	values := fakeazure.PastedSecrets()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	// Every setting the handler reads, and every setting of the storage
	// connection it reads in delta mode.
	var settings []string
	for _, s := range config.Settings {
		settings = append(settings, s.Name)
	}
	for _, k := range []string{"accountName", "blobServiceUri", "serviceUri", "credential", "clientId",
		"managedIdentityClientId", "managedIdentityResourceId", "managedIdentityObjectId", "clientSecret"} {
		settings = append(settings, "AzureWebJobsStorage__"+k)
	}
	// The host ID names the state's and the exports' blobs.
	settings = append(settings, customhandler.HostIDSetting)

	for _, setting := range settings {
		for what, v := range values {
			t.Run(setting+" holding "+what, func(t *testing.T) {
				env := map[string]string{
					"AZURE_CLIENT_ID": fakeazure.NewClientID(), "GRAPH_USERS_SCHEDULE": "0 0 * * * *",
					"FUNCTIONS_CUSTOMHANDLER_PORT": freePort(t), "GRAPH_USERS_MODE": "delta", "FUNCTIONS_APP_ROOT_PATH": root,
				}
				// Somewhere for the blob service, unless the setting says it.
				if !slices.Contains([]string{"AzureWebJobsStorage__accountName", "AzureWebJobsStorage__blobServiceUri", "AzureWebJobsStorage__serviceUri"}, setting) {
					env["AzureWebJobsStorage__accountName"] = "prodaccount"
				}
				env[setting] = v
				var stdout, stderr bytes.Buffer
				// A handler that started anyway serves until the context ends.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				err := run(ctx, nil, func(k string) string { return env[k] }, &stdout, &stderr)
				require.Error(t, err, "a secret is no value of %s: the handler must not start", setting)
				out := err.Error() + stdout.String() + stderr.String()
				for _, part := range append(fakeazure.SecretParts(), strings.TrimSpace(v)) {
					assert.NotContains(t, out, part)
				}
				assert.Contains(t, err.Error(), setting+":", "the error names the setting")
				assert.Empty(t, stdout.String(), "refused before it serves")
			})
		}
	}
}

func TestStartUpAsksForASettingsNameWhereAConnectionStringWasPasted(t *testing.T) {
	key := "c2VjcmV0LWtleS1vZi10aGUtdGVzdC1hY2NvdW50LW5ldmVyLXRvLWJlLXByaW50ZWQtYW55d2hlcmUhIQ=="
	env := map[string]string{
		"AZURE_CLIENT_ID": fakeazure.NewClientID(), "GRAPH_USERS_SCHEDULE": "0 0 * * * *",
		"FUNCTIONS_CUSTOMHANDLER_PORT": freePort(t), "GRAPH_USERS_MODE": "delta",
		"GRAPH_USERS_STORAGE": "DefaultEndpointsProtocol=https;AccountName=prodaccount;AccountKey=" + key,
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), nil, func(k string) string { return env[k] }, &stdout, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "GRAPH_USERS_STORAGE: holds what looks like a secret")
	assert.Contains(t, err.Error(), "expected the name of an app setting, such as AzureWebJobsStorage")
	assert.NotContains(t, err.Error()+stdout.String()+stderr.String(), key[:40])
}
