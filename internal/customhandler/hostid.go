package customhandler

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
)

// HostIDSetting is the app setting that gives the host ID outright.
const HostIDSetting = "AzureFunctionsWebHost__hostid"

// maxHostID is how long a host ID the host derives may be; longer names
// are cut (ScriptConstants.MaximumHostIdLength).
const maxHostID = 32

// HostID is the Functions host's ID for this app: what keeps apart the
// Function Apps that share one storage account, derived from the settings
// as the host derives it (azure-functions-host, ScriptHostIdProvider):
//
//   - AzureFunctionsWebHost__hostid when set, as given;
//   - on Flex Consumption (WEBSITE_SKU=FlexConsumption), the MD5 of the
//     site and slot name, as a GUID's 32 hex digits;
//   - on App Service (WEBSITE_INSTANCE_ID set) or Kubernetes, WEBSITE_SITE_NAME
//     plus "-<WEBSITE_SLOT_NAME>" for a slot other than production;
//   - on Linux Consumption, WEBSITE_HOSTNAME without ".azurewebsites.net";
//   - elsewhere, as Core Tools run it, the machine name's letters and digits,
//     "-" and the absolute value of the host's stable hash of appRoot (the
//     app's folder, FUNCTIONS_APP_ROOT_PATH);
//
// each but the first two cut to 32 characters, lowercased, trailing "-"
// removed. appRoot is made absolute when it is not, as the host's is.
// It fails when the settings name no app (a host still in placeholder
// mode) or the host ID cannot be one segment of a blob name.
func HostID(getenv func(string) string, appRoot string) (string, error) {
	return hostID(getenv, appRoot, os.Hostname)
}

// hostID is HostID with the machine's name from hostname.
func hostID(getenv func(string) string, appRoot string, hostname func() (string, error)) (string, error) {
	if id := getenv(HostIDSetting); id != "" {
		if err := checkSegment(id); err != nil {
			// Not repeated: a value pasted into the wrong setting can be a secret.
			return "", fmt.Errorf("%s: %w: use lowercase letters, digits and dashes, as the host's own IDs are", HostIDSetting, err)
		}
		return id, nil
	}
	id, err := defaultHostID(getenv, appRoot, hostname)
	if err != nil {
		return "", fmt.Errorf("derive the Functions host ID: %w", err)
	}
	if err := checkSegment(id); err != nil {
		return "", fmt.Errorf("the Functions host ID derived from the app's settings, %q, %w: set %s", id, err, HostIDSetting)
	}
	return id, nil
}

// defaultHostID derives the host ID when no setting gives it.
func defaultHostID(getenv func(string) string, appRoot string, hostname func() (string, error)) (string, error) {
	set := func(k string) bool { return getenv(k) != "" }
	appService := set("WEBSITE_INSTANCE_ID")
	managedApp := set("MANAGED_ENVIRONMENT")
	kubernetes := set("KUBERNETES_SERVICE_HOST") && set("POD_NAMESPACE") && !managedApp
	// In placeholder mode Flex Consumption shows only these.
	legion := !appService && (set("CONTAINER_NAME") || set("WEBSITE_POD_NAME")) && set("LEGION_SERVICE_HOST")
	flex := strings.EqualFold(getenv("WEBSITE_SKU"), "FlexConsumption") || legion
	atlas := !appService && set("CONTAINER_NAME") && !set("LEGION_SERVICE_HOST")
	noSite := fmt.Errorf("WEBSITE_SITE_NAME is not set, as while the host is still a placeholder: set %s", HostIDSetting)

	var id string
	switch {
	case flex:
		name := uniqueSlotName(getenv)
		if name == "" {
			return "", noSite
		}
		// Not cut: all 32 hex digits.
		return guidHex(md5.Sum([]byte(name))), nil
	case appService || managedApp || kubernetes:
		if id = uniqueSlotName(getenv); id == "" {
			return "", noSite
		}
	case atlas && !managedApp:
		if id = strings.ReplaceAll(getenv("WEBSITE_HOSTNAME"), ".azurewebsites.net", ""); id == "" {
			return "", fmt.Errorf("WEBSITE_HOSTNAME is not set: set %s", HostIDSetting)
		}
	default:
		local, err := localHostID(appRoot, hostname)
		if err != nil {
			return "", err
		}
		id = local
	}
	return strings.TrimRight(strings.ToLower(cutUTF16(id, maxHostID)), "-"), nil
}

// uniqueSlotName is the site's name, with its slot's unless that is
// production, lowercased (GetAzureWebsiteUniqueSlotName).
func uniqueSlotName(getenv func(string) string) string {
	name := getenv("WEBSITE_SITE_NAME")
	if name == "" {
		return ""
	}
	if slot := getenv("WEBSITE_SLOT_NAME"); slot != "" && !strings.EqualFold(slot, "production") {
		name += "-" + slot
	}
	return strings.ToLower(name)
}

// guidHex is the 16 bytes as .NET's new Guid(bytes).ToString("N") writes
// them: the first three fields little-endian.
func guidHex(b [16]byte) string {
	b[0], b[1], b[2], b[3] = b[3], b[2], b[1], b[0]
	b[4], b[5] = b[5], b[4]
	b[6], b[7] = b[7], b[6]
	return hex.EncodeToString(b[:])
}

// localHostID is Core Tools' host ID before it is cut: the machine name's
// letters and digits, "-", and |stable hash of the app's folder|. The host
// takes .NET's Environment.MachineName, which on Linux and macOS is the host
// name up to its first dot; on Windows it is the NetBIOS name, which can
// differ from the host name past 15 characters.
func localHostID(appRoot string, hostname func() (string, error)) (string, error) {
	machine, err := hostname()
	if err != nil {
		return "", fmt.Errorf("the machine's name: %w: set %s", err, HostIDSetting)
	}
	machine, _, _ = strings.Cut(machine, ".")
	machine = strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return -1
	}, machine)
	root, err := filepath.Abs(appRoot)
	if err != nil {
		return "", fmt.Errorf("the app's folder %s: %w: set %s", appRoot, err, HostIDSetting)
	}
	h := int64(stableHash(root))
	if h < 0 {
		h = -h
	}
	return machine + "-" + strconv.FormatInt(h, 10), nil
}

// stableHash is the host's Utility.GetStableHash: over the string's UTF-16
// code units, 23, then hash*31 + unit, wrapping as a 32-bit int.
func stableHash(s string) int32 {
	h := int32(23)
	for _, u := range utf16.Encode([]rune(s)) {
		h = h*31 + int32(u)
	}
	return h
}

// cutUTF16 cuts s to n UTF-16 code units, as .NET's Substring counts, but
// never inside a surrogate pair.
func cutUTF16(s string, n int) string {
	units := 0
	for i, r := range s {
		units += utf16.RuneLen(r)
		if units > n {
			return s[:i]
		}
	}
	return s
}

// checkSegment reports why id cannot be one segment of a blob name, which
// the job's state and exports are kept under.
func checkSegment(id string) error {
	switch {
	case id == "":
		return errors.New("is empty")
	case id == "." || id == "..":
		return errors.New("is not a name")
	case strings.HasSuffix(id, "."):
		return errors.New("ends with a dot, which Blob Storage drops from a name")
	case strings.ContainsAny(id, `/\`):
		return errors.New("holds a slash, which would split it in a blob name")
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return errors.New("holds a control character")
	}
	return nil
}
