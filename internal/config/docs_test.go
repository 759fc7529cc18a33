package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// settingsTable renders Settings as the README's settings table.
func settingsTable() string {
	var b strings.Builder
	b.WriteString("| setting | default | meaning |\n|---|---|---|\n")
	for _, s := range Settings {
		def := s.DefaultDoc
		if def == "" {
			def = "`" + s.Default + "`"
		}
		b.WriteString("| `" + s.Name + "` | " + def + " | " + s.Doc + " |\n")
	}
	return b.String()
}

func TestTheREADMEsSettingsTableIsSettings(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	assert.Contains(t, string(readme), settingsTable(),
		"the README's settings table is config.Settings, row for row; paste this one in:\n%s", settingsTable())
}

// platformSettings are the settings of local.settings.json.example that the
// host and the platform read, not the handler.
var platformSettings = map[string]bool{
	"FUNCTIONS_WORKER_RUNTIME": true, "AzureWebJobsStorage": true,
	"IDENTITY_ENDPOINT": true, "IDENTITY_HEADER": true,
}

func TestTheLocalSettingsExampleNamesOnlyKnownSettings(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "local.settings.json.example"))
	require.NoError(t, err)
	var ls struct{ Values map[string]string }
	require.NoError(t, json.Unmarshal(b, &ls))

	known := map[string]Setting{}
	for _, s := range Settings {
		known[s.Name] = s
	}
	for name := range ls.Values {
		s, ok := known[name]
		if !ok {
			assert.True(t, platformSettings[name], "%s is neither a setting of config.Settings nor one the platform reads", name)
			continue
		}
		assert.Equal(t, ByOperator, s.Origin, "%s is set by the host, not in the app's settings", name)
	}
	for _, s := range Settings {
		if s.DefaultDoc == "required" {
			assert.Contains(t, ls.Values, s.Name, "func start needs every required setting")
		}
	}
	_, err = Load(func(k string) string { return ls.Values[k] })
	assert.NoError(t, err, "the handler starts with the example's settings")
}
