// Package config reads the job's settings from the environment into one
// validated value. Every setting is one row of Settings: its name, default,
// parser and documentation, which Load, the README's table, the local
// settings example and the fake host all follow.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"graphuserstimer/internal/customhandler"
	"graphuserstimer/internal/graph"
	"graphuserstimer/internal/storage"
)

// Setting names, as they appear in the Function App's application settings;
// each named for the Config field that holds its value, with Setting after.
const (
	PortSetting          = "FUNCTIONS_CUSTOMHANDLER_PORT"
	ClientIDSetting      = "AZURE_CLIENT_ID"
	GraphEndpointSetting = "GRAPH_ENDPOINT"
	SelectSetting        = "GRAPH_USERS_SELECT"
	FilterSetting        = "GRAPH_USERS_FILTER"
	PageSizeSetting      = "GRAPH_USERS_PAGE_SIZE"
	LogEachSetting       = "GRAPH_USERS_LOG_EACH"
	ParallelSetting      = "GRAPH_USERS_PARALLEL"
	ModeSetting          = "GRAPH_USERS_MODE"
	StorageSetting       = "GRAPH_USERS_STORAGE"
	ContainerSetting     = "GRAPH_USERS_CONTAINER"
	ExportSetting        = "GRAPH_USERS_EXPORT"
	ScheduleSetting      = "GRAPH_USERS_SCHEDULE"
	RunTimeoutSetting    = "GRAPH_USERS_RUN_TIMEOUT"
	LogLevelSetting      = "LOG_LEVEL"
)

// Config is the job's validated configuration.
type Config struct {
	// Port is the loopback port the Functions host dials.
	Port int
	// ClientID is the client ID of the user-assigned managed identity.
	ClientID string
	// GraphEndpoint is the Microsoft Graph root, normalised as
	// graph.ParseEndpoint returns it, such as https://graph.microsoft.com.
	GraphEndpoint *url.URL
	// Select lists the user properties to request; it always holds "id".
	Select []string
	// Filter is the OData $filter, or empty.
	Filter string
	// PageSize is the $top of each page, 1 to 999.
	PageSize int
	// LogEach says whether every user gets a log line of its own.
	LogEach bool
	// Parallel is how many streams may list users at once, 1 to 64; 1 is a
	// single cursor.
	Parallel int
	// Mode is ModeList, a full listing every run, or ModeDelta, a full
	// listing and then only what changed.
	Mode string
	// StorageName names the storage connection, read as the host reads it.
	StorageName string
	// Storage is that connection, read when Mode is ModeDelta or Export is
	// set, which need it; otherwise the zero Connection.
	Storage storage.Connection
	// Container is the blob container of the state and the exports.
	Container string
	// Export writes each run's users or changes to Blob Storage.
	Export bool
	// Schedule is the timer's NCRONTAB expression or TimeSpan; the host reads
	// it through function.json, the handler only checks it.
	Schedule string
	// RunTimeout, when not zero, is how long one run may take, as set; see
	// RunTimeoutWithin for the bound a run actually gets.
	RunTimeout time.Duration
	// LogLevel is the lowest level of the diagnostic lines logged; user
	// lines and summaries are written whatever it says.
	LogLevel slog.Level
}

// Origin says who sets a setting.
type Origin int

const (
	// ByOperator settings are the Function App's application settings.
	ByOperator Origin = iota
	// ByHost settings are set by the Functions host in the handler's
	// environment.
	ByHost
)

// Setting is one setting the handler reads.
type Setting struct {
	// Name is the setting's name, an environment variable.
	Name string
	// Default is the value taken when the setting is unset or blank, as it
	// would be written; "" when there is none.
	Default string
	// DefaultDoc describes the default where Default cannot: "required",
	// or a value worked out from elsewhere. Empty when Default says it.
	DefaultDoc string
	// Doc says what the setting means, as the README's table does.
	Doc string
	// Origin says who sets it.
	Origin Origin
	// shape says what a value looks like, for the error about a value
	// that is not one and cannot be repeated, such as a secret.
	shape string
	// parse reads a value, Default included, into c. The value is trimmed;
	// it is "" only when the setting is unset and has no Default.
	parse func(c *Config, v string) error
}

// Settings are every setting the handler reads, in the README's order.
var Settings = []Setting{
	{
		Name: PortSetting, Default: "8080", Origin: ByHost,
		shape: "a TCP port, such as 8080, which the host sets",
		Doc:   "set by the host; the handler listens on `127.0.0.1` only",
		parse: integer(1, 65535, "a TCP port:", func(c *Config, n int) { c.Port = n }),
	},
	{
		Name: ClientIDSetting, DefaultDoc: "required",
		shape: "the client ID (a GUID) of the user-assigned managed identity, such as 11111111-2222-3333-4444-555555555555",
		Doc:   "client ID (GUID) of the user-assigned managed identity",
		parse: func(c *Config, v string) error {
			c.ClientID = strings.ToLower(v)
			switch {
			case v == "":
				return errors.New("required: set it to the client ID of the user-assigned managed identity assigned to this Function App")
			case !guid.MatchString(c.ClientID):
				return fmt.Errorf("%q is not a client ID: expected a GUID such as 11111111-2222-3333-4444-555555555555", v)
			}
			return nil
		},
	},
	{
		Name: GraphEndpointSetting, Default: graph.DefaultEndpoint,
		shape: "the Graph root URL, such as https://graph.microsoft.com",
		Doc: "Graph root, for national clouds (`https://graph.microsoft.us`, …); https, or http on a loopback " +
			"address for the local fakes. The token is asked for `GRAPH_ENDPOINT/.default` and only ever sent there",
		parse: func(c *Config, v string) (err error) {
			c.GraphEndpoint, err = graph.ParseEndpoint(v)
			return err
		},
	},
	{
		Name: SelectSetting, Default: "id,displayName,userPrincipalName,mail",
		shape: "a comma-separated list of user properties, such as id,displayName,mail",
		Doc:   "`$select`; `id` is always added",
		parse: func(c *Config, v string) (err error) {
			c.Select, err = parseSelect(v)
			return err
		},
	},
	{
		Name: FilterSetting, DefaultDoc: "empty",
		shape: "an OData $filter, such as accountEnabled eq true",
		Doc:   "`$filter`, e.g. `accountEnabled eq true`; not in `delta` mode, whose rounds Graph filters by id alone",
		parse: func(c *Config, v string) error { c.Filter = v; return nil },
	},
	{
		Name: PageSizeSetting, Default: "999",
		shape: "a page size from 1 to 999",
		Doc:   "`$top`, 1..999",
		parse: integer(1, 999, "a page size: Graph accepts", func(c *Config, n int) { c.PageSize = n }),
	},
	{
		Name: LogEachSetting, Default: "true",
		shape: "true or false",
		Doc:   "one log line per user, or the summary alone",
		parse: boolean(func(c *Config, b bool) { c.LogEach = b }),
	},
	{
		Name: ParallelSetting, Default: "16",
		shape: "a number of streams from 1 to 64",
		Doc: "how many listing streams run at once, 1..64, when the users do not fit on one page; 1 is one cursor. " +
			"See [Parallel streams](#parallel-streams)",
		parse: integer(1, 64, "a number of streams:", func(c *Config, n int) { c.Parallel = n }),
	},
	{
		Name: ModeSetting, Default: ModeList,
		shape: "list or delta",
		Doc: "`list`: every user, every run. `delta`: every user on the first run, then only what changed, " +
			"its place kept in Blob Storage. See [Delta mode](#delta-mode)",
		parse: func(c *Config, v string) error {
			switch m := strings.ToLower(v); m {
			case ModeList, ModeDelta:
				c.Mode = m
				return nil
			}
			return fmt.Errorf("%q is not list or delta", v)
		},
	},
	{
		Name: StorageSetting, Default: "AzureWebJobsStorage",
		shape: "the name of an app setting, such as AzureWebJobsStorage, whose value is the connection string (or <name>__blobServiceUri for a managed identity): the connection string goes in that setting, not here",
		Doc: "the storage connection for `delta` and exports, read as the host reads it: `<name>` as a connection " +
			"string (`UseDevelopmentStorage=true` is Azurite), or `<name>__blobServiceUri` or `<name>__accountName` " +
			"for a managed identity, with `<name>__clientId` (default `AZURE_CLIENT_ID`)",
		parse: func(c *Config, v string) error {
			if !settingName.MatchString(v) {
				return fmt.Errorf("%q is not the name of an app setting: expected the name of an app setting, such as AzureWebJobsStorage, "+
					"whose value is the connection string", v)
			}
			c.StorageName = v
			return nil
		},
	},
	{
		Name: ContainerSetting, Default: "graphuserstimer",
		shape: "a container name, such as graphuserstimer",
		Doc:   "the blob container of the delta state and the exports; created when missing",
		parse: func(c *Config, v string) error {
			if err := storage.CheckContainerName(v); err != nil {
				return err
			}
			c.Container = v
			return nil
		},
	},
	{
		Name: ExportSetting, Default: "false",
		shape: "true or false",
		Doc: "`true`: write each run's users, or a delta round's changes, to Blob Storage as `.jsonl.gz`. " +
			"See [Exports](#exports)",
		parse: boolean(func(c *Config, b bool) { c.Export = b }),
	},
	{
		Name: ScheduleSetting, DefaultDoc: "required",
		shape: "a 6-field NCRONTAB schedule such as 0 0 * * * *, or a TimeSpan such as 01:00:00",
		Doc: "the timer's 6-field NCRONTAB schedule, such as `0 0 * * * *` (hourly), or a TimeSpan such as `01:00:00`; " +
			"`function.json` reads it as `%GRAPH_USERS_SCHEDULE%`, so the host cannot index the function without it",
		parse: func(c *Config, v string) error {
			if v == "" {
				return errors.New("required: function.json reads the timer's schedule from it, such as 0 0 * * * * (hourly)")
			}
			if err := CheckSchedule(v); err != nil {
				return err
			}
			c.Schedule = v
			return nil
		},
	},
	{
		Name: RunTimeoutSetting, DefaultDoc: "host.json's `functionTimeout` less 30 s",
		shape: "a duration such as 4m30s or 00:04:30",
		Doc:   "how long one run may take, as `4m30s` or `00:04:30`; shorter than `functionTimeout`",
		parse: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			d, err := ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("%q is not a positive duration such as 4m30s or 00:04:30", v)
			}
			c.RunTimeout = d
			return nil
		},
	},
	{
		Name: LogLevelSetting, Default: "info",
		shape: "one of debug, info, warn, error",
		Doc: "the lowest level of diagnostic lines: debug, info, warn, error. User lines and summaries are the job's " +
			"output and are written whatever it says",
		parse: func(c *Config, v string) error {
			l, ok := levels[strings.ToLower(v)]
			if !ok {
				return fmt.Errorf("%q is not one of debug, info, warn, error", v)
			}
			c.LogLevel = l
			return nil
		},
	},
}

// boolean parses true or false into a field.
func boolean(set func(*Config, bool)) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		set(c, b)
		return nil
	}
}

// integer parses a whole number from lo to hi into a field; what says what
// the number is, for the error.
func integer(lo, hi int, what string, set func(*Config, int)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("%q is not %s %d to %d", v, what, lo, hi)
		}
		set(c, n)
		return nil
	}
}

// Load reads every setting through getenv and validates it. Its error names
// every missing or invalid setting at once, one per line, and never repeats
// a value that looks like a secret (storage.LooksSecret).
func Load(getenv func(string) string) (Config, error) {
	var c Config
	var errs []error
	for _, s := range Settings {
		v := strings.TrimSpace(getenv(s.Name))
		if storage.LooksSecret(v) {
			// No setting takes a secret: one pasted into the wrong setting
			// is named, never repeated, in an error anyone may read.
			errs = append(errs, storage.SecretError(s.Name, s.shape))
			continue
		}
		if v == "" {
			v = s.Default
		}
		if err := s.parse(&c, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
		}
	}
	if c.Mode == ModeDelta && c.Filter != "" {
		// Delta's $filter takes only id eq: a round would report every
		// user's changes, whatever the filter listed.
		errs = append(errs, fmt.Errorf("%s: GRAPH_USERS_MODE=delta cannot apply a filter, as Graph's delta query takes "+
			"none but id eq: leave it empty in delta mode, or use GRAPH_USERS_MODE=list", FilterSetting))
	}
	if (c.Mode == ModeDelta || c.Export) && c.StorageName != "" {
		conn, err := storage.ParseConnection(c.StorageName, getenv, c.ClientID)
		if err != nil {
			why := "GRAPH_USERS_EXPORT=true"
			if c.Mode == ModeDelta {
				why = "GRAPH_USERS_MODE=delta"
			}
			errs = append(errs, fmt.Errorf("%s: %s needs a storage connection: %w", StorageSetting, why, err))
		}
		c.Storage = conn
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("invalid settings:\n%w", errors.Join(errs...))
	}
	return c, nil
}

// The modes of GRAPH_USERS_MODE.
const (
	ModeList  = "list"
	ModeDelta = "delta"
)

var (
	guid        = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	property    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_:.-]*$`)
	levels      = map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo,
		"warn": slog.LevelWarn, "warning": slog.LevelWarn, "error": slog.LevelError,
	}
)

// parseSelect splits a $select list and makes sure it holds "id", first, so
// that every user line can be told apart.
func parseSelect(s string) ([]string, error) {
	props := []string{"id"}
	seen := map[string]bool{"id": true}
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if !property.MatchString(p) {
			return nil, fmt.Errorf("%q is not a comma-separated list of user properties such as id,displayName,mail", s)
		}
		if k := strings.ToLower(p); !seen[k] {
			seen[k] = true
			props = append(props, p)
		}
	}
	return props, nil
}

// ParseDuration reads a duration written the Go way ("4m30s") or as a .NET
// TimeSpan ("00:04:30", "1.00:00:00"), as host.json writes functionTimeout.
func ParseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(strings.TrimSpace(s)); err == nil {
		return d, nil
	}
	d, err := customhandler.ParseTimeSpan(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a Go duration nor a TimeSpan", s)
	}
	return d, nil
}

// RunMargin is how long before the host's functionTimeout a run stops, so
// that it can say how far it got before the host kills the process.
const RunMargin = 30 * time.Second

// RunTimeoutWithin is how long one run may take when the host kills the
// handler after functionTimeout (0: never). GRAPH_USERS_RUN_TIMEOUT when
// set, which must then be shorter than functionTimeout; otherwise
// functionTimeout less RunMargin, or half of it when it is 2×RunMargin or
// less, so a short timeout still leaves the run time to say how far it got.
// It returns 0, no bound, when neither sets one.
func (c Config) RunTimeoutWithin(functionTimeout time.Duration) (time.Duration, error) {
	if c.RunTimeout > 0 {
		if functionTimeout > 0 && c.RunTimeout >= functionTimeout {
			return 0, fmt.Errorf("%s: %s is not shorter than host.json's functionTimeout of %s: the host would kill "+
				"the handler before the run could stop and say how far it got; set it below %s, or leave it unset",
				RunTimeoutSetting, c.RunTimeout, functionTimeout, functionTimeout)
		}
		return c.RunTimeout, nil
	}
	if functionTimeout <= 0 {
		return 0, nil
	}
	if functionTimeout <= 2*RunMargin {
		return functionTimeout / 2, nil
	}
	return functionTimeout - RunMargin, nil
}
