package fakeazure

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// AzureCLIOptions configure an AzureCLI.
type AzureCLIOptions struct {
	// Token is the access token `az account get-access-token` prints.
	Token string
	// Tenant is the tenant ID it prints.
	Tenant string
	// SignedOut answers as az does before `az login`, with exit code 1.
	SignedOut bool
}

// AzureCLI is a stand-in for the Azure CLI as azidentity.AzureCLICredential
// uses it: an executable shell script named az that answers
// `az account get-access-token -o json --resource <resource> [--tenant <id>]`
// with the JSON az prints, and records the arguments of every call. Put Dir
// first on PATH. It needs /bin/sh, as the credential does.
type AzureCLI struct {
	// Dir holds the az script and its call log.
	Dir string
}

var tokenChars = regexp.MustCompile(`^[A-Za-z0-9._~+/=-]+$`)

// NewAzureCLI writes the az script into dir.
func NewAzureCLI(dir string, o AzureCLIOptions) (AzureCLI, error) {
	if !tokenChars.MatchString(o.Token) || (o.Tenant != "" && !tokenChars.MatchString(o.Tenant)) {
		return AzureCLI{}, errors.New("fakeazure: the fake az prints the token and tenant unquoted: use letters, digits and ._~+/=-")
	}
	c := AzureCLI{Dir: dir}
	expires := time.Now().Add(time.Hour)
	answer := fmt.Sprintf(`{"accessToken":"%s","expiresOn":"%s","expires_on":%d,"subscription":"%s","tenant":"%s","tokenType":"Bearer"}`,
		o.Token, expires.Format("2006-01-02 15:04:05.000000"), expires.Unix(), newGUID(), o.Tenant)
	reply := "cat <<'EOF'\n" + answer + "\nEOF\n"
	if o.SignedOut {
		reply = "echo \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n"
	}
	script := "#!/bin/sh\n" +
		"# A fake Azure CLI: it only answers 'az account get-access-token'.\n" +
		"printf '%s\\n' \"$*\" >> " + shellQuote(c.log()) + "\n" +
		"if [ \"$1 $2\" != 'account get-access-token' ]; then\n" +
		"  echo \"ERROR: the fake az only answers 'az account get-access-token', not: $*\" >&2\n  exit 2\nfi\n" +
		reply
	if err := os.WriteFile(filepath.Join(dir, "az"), []byte(script), 0o755); err != nil {
		return AzureCLI{}, fmt.Errorf("fakeazure: write the fake az: %w", err)
	}
	return c, nil
}

func (c AzureCLI) log() string { return filepath.Join(c.Dir, "az-calls.log") }

// Calls returns the arguments of each call so far, one string per call.
func (c AzureCLI) Calls() ([]string, error) {
	b, err := os.ReadFile(c.log())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fakeazure: read the fake az's calls: %w", err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"), nil
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
