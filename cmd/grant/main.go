// Command grant gives the job's user-assigned managed identity the Microsoft
// Graph application permissions it needs, User.Read.All by default. An
// administrator runs it once, signed in through the Azure CLI (or another
// azidentity credential): no secret, and no GUID to copy but the identity's
// client ID.
//
//	grant -client-id <identity's client ID> [-permissions User.Read.All,...] [-dry-run]
//	      [-auth cli|default|managed-identity] [-auth-client-id <id>] [-tenant <id>] [-graph <url>]
//
// It finds the identity's service principal and Microsoft Graph's, reads each
// permission's app role from Graph's, and assigns those the identity lacks.
// Run again, it says each permission is already granted and exits 0.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"graphuserstimer/internal/grant"
	"graphuserstimer/internal/graph"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "grant:", err)
		os.Exit(1)
	}
}

// The job's settings grant takes its defaults from.
const (
	envClientID      = "AZURE_CLIENT_ID"
	envGraphEndpoint = "GRAPH_ENDPOINT"
)

// Ways the administrator signs in, the values of -auth.
const (
	authCLI             = "cli"
	authDefault         = "default"
	authManagedIdentity = "managed-identity"
)

// options are the command's flags.
type options struct {
	clientID, permissions, graph string
	auth, authClientID, tenant   string
	dryRun                       bool
}

// run grants the permissions and says what it found and did on stdout.
// getenv supplies the defaults the Function App's settings give:
// AZURE_CLIENT_ID and GRAPH_ENDPOINT.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("grant", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: grant -client-id <identity's client ID> [flags]\n\n"+
			"Grants a managed identity Microsoft Graph application permissions, as the administrator signed in.\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.clientID, "client-id", getenv(envClientID), "client ID of the managed identity to grant to (default $"+envClientID+")")
	fs.StringVar(&o.permissions, "permissions", "User.Read.All", "comma-separated Microsoft Graph application `permissions`")
	fs.BoolVar(&o.dryRun, "dry-run", false, "look everything up and print what would be granted, but change nothing")
	fs.StringVar(&o.auth, "auth", authCLI, "how you sign in: `cli` (az login), default (DefaultAzureCredential) or managed-identity")
	fs.StringVar(&o.authClientID, "auth-client-id", "", "with -auth managed-identity: client ID of the user-assigned identity you sign in as (empty: system-assigned)")
	fs.StringVar(&o.tenant, "tenant", "", "with -auth cli or default: the tenant `ID` to get the token from (empty: the signed-in default)")
	fs.StringVar(&o.graph, "graph", "", "Microsoft Graph root `URL` (default $"+envGraphEndpoint+", else "+graph.DefaultEndpoint+")")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil // the usage is already on stderr
	}
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.graph == "" {
		o.graph = cmp.Or(strings.TrimSpace(getenv(envGraphEndpoint)), graph.DefaultEndpoint)
	}
	perms, endpoint, err := o.validate()
	if err != nil {
		return err
	}
	cred, err := o.credential()
	if err != nil {
		return err
	}
	client, err := grant.NewClient(endpoint, cred, nil)
	if err != nil {
		return err
	}
	return grantAll(ctx, client, strings.TrimSpace(o.clientID), perms, o.dryRun, stdout)
}

// validate checks the flags together, naming every problem at once.
func (o options) validate() ([]string, *url.URL, error) {
	var problems []error
	if strings.TrimSpace(o.clientID) == "" {
		problems = append(problems, fmt.Errorf("-client-id is required: the managed identity's client ID "+
			"(az identity show -g <group> -n <identity> --query clientId -o tsv), or set %s", envClientID))
	}
	var perms []string
	for p := range strings.SplitSeq(o.permissions, ",") {
		if p = strings.TrimSpace(p); p != "" {
			perms = append(perms, p)
		}
	}
	if len(perms) == 0 {
		problems = append(problems, errors.New("-permissions is empty: name at least one, such as User.Read.All"))
	}
	endpoint, err := graph.ParseEndpoint(o.graph)
	if err != nil {
		problems = append(problems, fmt.Errorf("-graph: %w", err))
	}
	switch o.auth {
	case authCLI, authDefault:
		if o.authClientID != "" {
			problems = append(problems, errors.New("-auth-client-id goes with -auth managed-identity"))
		}
	case authManagedIdentity:
		if o.tenant != "" {
			problems = append(problems, errors.New("-tenant goes with -auth cli or default: a managed identity gets tokens from its own tenant"))
		}
	default:
		problems = append(problems, fmt.Errorf("-auth %q: want cli, default or managed-identity", o.auth))
	}
	if len(problems) > 0 {
		return nil, nil, errors.Join(problems...)
	}
	return perms, endpoint, nil
}

// credential builds the administrator's credential. None holds a secret:
// the Azure CLI's sign-in, the default chain, or a managed identity.
func (o options) credential() (azcore.TokenCredential, error) {
	var cred azcore.TokenCredential
	var err error
	switch o.auth {
	case authCLI:
		cred, err = azidentity.NewAzureCLICredential(&azidentity.AzureCLICredentialOptions{TenantID: o.tenant})
	case authDefault:
		cred, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{TenantID: o.tenant})
	case authManagedIdentity:
		var mo azidentity.ManagedIdentityCredentialOptions
		if o.authClientID != "" {
			mo.ID = azidentity.ClientID(o.authClientID)
		}
		cred, err = azidentity.NewManagedIdentityCredential(&mo)
	}
	if err != nil {
		return nil, fmt.Errorf("-auth %s: %w", o.auth, err)
	}
	return signIn{cred: cred, auth: o.auth}, nil
}

// signInHints say, for each -auth, how to get a token when there is none.
var signInHints = map[string]string{
	authCLI: "-auth cli signs in through the Azure CLI: install it and run az login (az login --tenant <tenant> " +
		"for another tenant), or choose -auth default.",
	authDefault: "-auth default tries environment variables, workload identity, managed identity, the Azure CLI " +
		"and the Azure Developer CLI in turn: sign in to one of them, such as az login.",
	authManagedIdentity: "-auth managed-identity works where Azure gives the machine an identity (a VM, Cloud " +
		"Shell, an App Service), or against the local fakes with IDENTITY_ENDPOINT and IDENTITY_HEADER set.",
}

// signIn is the administrator's credential, whose failures say how to sign
// in.
type signIn struct {
	cred azcore.TokenCredential
	auth string
}

// GetToken gets a token from the credential.
func (s signIn) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := s.cred.GetToken(ctx, opts)
	if err != nil {
		return tok, fmt.Errorf("sign in (-auth %s): %w\n%s", s.auth, err, signInHints[s.auth])
	}
	return tok, nil
}

// grantAll plans the grant, prints what it found, and assigns what is missing
// unless dryRun.
func grantAll(ctx context.Context, client *grant.Client, clientID string, perms []string, dryRun bool, stdout io.Writer) error {
	plan, err := client.Plan(ctx, clientID, perms)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Managed identity: %s (client ID %s, service principal %s)\n",
		plan.Identity.DisplayName, plan.Identity.AppID, plan.Identity.ID)
	fmt.Fprintf(stdout, "Microsoft Graph: service principal %s at %s\n", plan.Graph.ID, client.Endpoint())

	granted := 0
	for _, s := range plan.Steps {
		name := fmt.Sprintf("%s (%s)", s.Role.Value, s.Role.ID)
		switch {
		case s.Granted():
			fmt.Fprintf(stdout, "%s: already granted (assignment %s)\n", name, s.Existing)
		case dryRun:
			body, err := json.Marshal(plan.Request(s))
			if err != nil {
				return fmt.Errorf("encode the request for %s: %w", s.Role.Value, err)
			}
			fmt.Fprintf(stdout, "%s: would grant: POST %s %s\n", name, client.AssignURL(plan), body)
		default:
			a, already, err := client.Assign(ctx, plan, s)
			if err != nil {
				return err
			}
			if already {
				fmt.Fprintf(stdout, "%s: already granted\n", name)
				continue
			}
			granted++
			fmt.Fprintf(stdout, "%s: granted (assignment %s)\n", name, a.ID)
		}
	}
	if dryRun {
		fmt.Fprintln(stdout, "Dry run: nothing was changed.")
	}
	if granted > 0 {
		fmt.Fprintln(stdout, "Tokens issued from now on carry the new permissions; a token the identity already "+
			"holds keeps its old ones until it expires, which for a managed identity can take up to 24 hours.")
	}
	return nil
}
