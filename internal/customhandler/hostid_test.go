package customhandler

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The cases of the host's own tests (azure-functions-host,
// ScriptHostIdProviderTests), and the slot and machine names they leave out.
func TestHostIDIsTheHostsOwn(t *testing.T) {
	long := "TEST-FUNCTIONS-" + strings.Repeat("X", 74)
	azure := func(site, instance string) map[string]string {
		return map[string]string{
			"WEBSITE_SITE_NAME":   site,
			"WEBSITE_INSTANCE_ID": instance,
			"CONTAINER_NAME":      "testContainer",
			"WEBSITE_HOSTNAME":    "testsite.azurewebsites.net",
		}
	}
	flex := func(site string) map[string]string {
		return map[string]string{"WEBSITE_SKU": "FlexConsumption", "WEBSITE_SITE_NAME": site}
	}
	// "-" and |stable hash| of /home/dev/app, worked out apart from this
	// package: 23, then h*31 + each UTF-16 unit, as a 32-bit int.
	const appHash = "-1245021457"
	tests := []struct {
		name    string
		env     map[string]string
		machine string
		want    string
		wantErr string
	}{
		{name: "the setting, as given", env: map[string]string{HostIDSetting: "test-host-id", "WEBSITE_SITE_NAME": "other", "WEBSITE_INSTANCE_ID": "1"}, want: "test-host-id"},
		{name: "the site's name, lowercased, trailing dashes removed", env: azure("TEST-FUNCTIONS--", "123123"), want: "test-functions"},
		{name: "a long site name cut to 32", env: azure(long, "123123"), want: "test-functions-xxxxxxxxxxxxxxxxx"},
		{name: "a name cut at a dash loses it", env: azure("TEST-FUNCTIONS-XXXXXXXXXXXXXXXX-XXXX", "123123"), want: "test-functions-xxxxxxxxxxxxxxxx"},
		{name: "Linux Consumption: the host name", env: azure("TEST-FUNCTIONS-XXXXXXXXXXXXXXXX-XXXX", ""), want: "testsite"},
		{name: "a placeholder names no site", env: azure("", "123123"), wantErr: "WEBSITE_SITE_NAME is not set"},
		{name: "Flex Consumption: a GUID of the name", env: flex("myfunctionstestapp"), want: "6606e225f163a70190e4f4357d3dad78"},
		{name: "Flex Consumption: a long name, not cut", env: flex(long), want: "9dd2d6d54f1135ee6db6116f084b29bd"},
		{name: "Flex Consumption: names that differ only past 32", env: flex(long[:len(long)-1] + "A"), want: "c842e18afa2a84eac2818a956687a72e"},
		{name: "Flex Consumption: and another", env: flex(long[:len(long)-1] + "B"), want: "b595edd5b794d34e79c81361c823487c"},
		{name: "Flex Consumption placeholder", env: map[string]string{"CONTAINER_NAME": "testContainer", "LEGION_SERVICE_HOST": "legionhost"}, wantErr: "WEBSITE_SITE_NAME is not set"},
		{name: "a slot other than production", env: map[string]string{"WEBSITE_SITE_NAME": "MyApp", "WEBSITE_SLOT_NAME": "Staging", "WEBSITE_INSTANCE_ID": "1"}, want: "myapp-staging"},
		{name: "the production slot", env: map[string]string{"WEBSITE_SITE_NAME": "MyApp", "WEBSITE_SLOT_NAME": "Production", "WEBSITE_INSTANCE_ID": "1"}, want: "myapp"},
		{name: "Flex Consumption with a slot", env: map[string]string{"WEBSITE_SKU": "flexconsumption", "WEBSITE_SITE_NAME": "myfunctionstestapp", "WEBSITE_SLOT_NAME": "production"}, want: "6606e225f163a70190e4f4357d3dad78"},
		{name: "locally: machine name and the folder's hash", machine: "DevBox", want: "devbox" + appHash},
		{name: "locally: the machine name's letters and digits before its first dot", machine: "my-laptop_2.corp.example", want: "mylaptop2" + appHash},
		{name: "locally: cut to 32", machine: strings.Repeat("M", 30), want: strings.Repeat("m", 30) + "-1"},
		{name: "locally: cut to 32, a trailing dash removed", machine: strings.Repeat("M", 31), want: strings.Repeat("m", 31)},
		{name: "a setting with a slash", env: map[string]string{HostIDSetting: "a/b"}, wantErr: HostIDSetting + ": holds a slash"},
		{name: "a setting that is a dot", env: map[string]string{HostIDSetting: "."}, wantErr: "is not a name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			machine := func() (string, error) { return tt.machine, nil }
			got, err := hostID(func(k string) string { return tt.env[k] }, "/home/dev/app", machine)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Contains(t, err.Error(), HostIDSetting, "says which setting fixes it")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestHostIDHashesTheFolderAsTheHostDoes(t *testing.T) {
	// The literal of the host's own test, which fails when the hash changes.
	assert.Equal(t, int32(473716271), abs(stableHash(`c:\testing\FUNCTIONS-TEST\test$#`)))
	assert.Equal(t, int32(23), stableHash(""))

	// A relative folder is the absolute one, as Core Tools give the host.
	env := func(string) string { return "" }
	machine := func() (string, error) { return "box", nil }
	rel, err := hostID(env, ".", machine)
	require.NoError(t, err)
	wd, err := os.Getwd()
	require.NoError(t, err)
	full, err := hostID(env, wd, machine)
	require.NoError(t, err)
	assert.Equal(t, full, rel)

	_, err = hostID(env, "/app", func() (string, error) { return "", errors.New("no name") })
	require.Error(t, err)
	assert.Contains(t, err.Error(), HostIDSetting)
}

func abs(n int32) int32 {
	if n < 0 {
		return -n
	}
	return n
}
