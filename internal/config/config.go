// Package config reads the job's settings from the environment into one
// validated value.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Setting names, as they appear in the Function App's application settings.
const (
	Port         = "FUNCTIONS_CUSTOMHANDLER_PORT"
	ClientID     = "AZURE_CLIENT_ID"
	GraphURL     = "GRAPH_ENDPOINT"
	UsersSelect  = "GRAPH_USERS_SELECT"
	UsersFilter  = "GRAPH_USERS_FILTER"
	UsersTop     = "GRAPH_USERS_PAGE_SIZE"
	UsersLogEach = "GRAPH_USERS_LOG_EACH"
	Schedule     = "GRAPH_USERS_SCHEDULE"
	RunTimeout   = "GRAPH_USERS_RUN_TIMEOUT"
	LogLevel     = "LOG_LEVEL"
)

// Defaults for the optional settings.
const (
	DefaultPort          = 8080
	DefaultGraphEndpoint = "https://graph.microsoft.com"
	DefaultSelect        = "id,displayName,userPrincipalName,mail"
	DefaultPageSize      = 999
	DefaultSchedule      = "0 0 * * * *"
)

// Config is the job's validated configuration.
type Config struct {
	// Port is the loopback port the Functions host dials.
	Port int
	// ClientID is the client ID of the user-assigned managed identity.
	ClientID string
	// GraphEndpoint is the Microsoft Graph root, without a trailing slash,
	// such as https://graph.microsoft.com.
	GraphEndpoint *url.URL
	// Select lists the user properties to request; it always holds "id".
	Select []string
	// Filter is the OData $filter, or empty.
	Filter string
	// PageSize is the $top of each page, 1 to 999.
	PageSize int
	// LogEach says whether every user gets a log line of its own.
	LogEach bool
	// Schedule is the timer's NCRONTAB expression or TimeSpan; the host reads
	// it through function.json, the handler only checks it.
	Schedule string
	// RunTimeout, when not zero, bounds one run, overriding the bound taken
	// from host.json's functionTimeout.
	RunTimeout time.Duration
	// LogLevel is the lowest level logged.
	LogLevel slog.Level
}

// Load reads every setting through getenv and validates it. Its error names
// every missing or invalid setting at once, one per line.
func Load(getenv func(string) string) (Config, error) {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }

	c := Config{
		Port:     DefaultPort,
		PageSize: DefaultPageSize,
		LogEach:  true,
		Schedule: DefaultSchedule,
		LogLevel: slog.LevelInfo,
	}

	if v := get(Port); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			bad(Port, "%q is not a TCP port (1 to 65535)", v)
		}
		c.Port = p
	}

	c.ClientID = strings.ToLower(get(ClientID))
	switch {
	case c.ClientID == "":
		bad(ClientID, "required: set it to the client ID of the user-assigned managed identity assigned to this Function App")
	case !guid.MatchString(c.ClientID):
		bad(ClientID, "%q is not a client ID: expected a GUID such as 11111111-2222-3333-4444-555555555555", getenv(ClientID))
	}

	endpoint := get(GraphURL)
	if endpoint == "" {
		endpoint = DefaultGraphEndpoint
	}
	u, err := ParseGraphEndpoint(endpoint)
	if err != nil {
		bad(GraphURL, "%v", err)
	}
	c.GraphEndpoint = u

	sel := get(UsersSelect)
	if sel == "" {
		sel = DefaultSelect
	}
	c.Select, err = parseSelect(sel)
	if err != nil {
		bad(UsersSelect, "%v", err)
	}

	c.Filter = get(UsersFilter)

	if v := get(UsersTop); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 999 {
			bad(UsersTop, "%q is not a page size: Graph accepts 1 to 999", v)
		}
		c.PageSize = n
	}

	if v := get(UsersLogEach); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad(UsersLogEach, "%q is not true or false", v)
		}
		c.LogEach = b
	}

	if v := get(Schedule); v != "" {
		if !validSchedule(v) {
			bad(Schedule, "%q is neither a 6-field NCRONTAB expression (\"0 0 * * * *\") nor a TimeSpan (\"01:00:00\")", v)
		}
		c.Schedule = v
	}

	if v := get(RunTimeout); v != "" {
		d, err := ParseDuration(v)
		if err != nil || d <= 0 {
			bad(RunTimeout, "%q is not a positive duration such as 4m30s or 00:04:30", v)
		}
		c.RunTimeout = d
	}

	if v := get(LogLevel); v != "" {
		l, ok := levels[strings.ToLower(v)]
		if !ok {
			bad(LogLevel, "%q is not one of debug, info, warn, error", v)
		}
		c.LogLevel = l
	}

	if len(errs) > 0 {
		return Config{}, fmt.Errorf("invalid settings:\n%w", errors.Join(errs...))
	}
	return c, nil
}

var (
	guid     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	property = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	timeSpan = regexp.MustCompile(`^(\d+\.)?(\d{1,2}):(\d{2})(:\d{2})?$`)
	levels   = map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo,
		"warn": slog.LevelWarn, "warning": slog.LevelWarn, "error": slog.LevelError,
	}
)

// ParseGraphEndpoint checks that s is a bare Graph root: https, or http on a
// loopback address for local fakes, with no path, query or credentials. A
// bearer token is only ever sent there.
func ParseGraphEndpoint(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute URL such as %s", s, DefaultGraphEndpoint)
	}
	switch {
	case u.User != nil:
		return nil, fmt.Errorf("%q must not carry credentials", s)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return nil, fmt.Errorf("%q must be the Graph root alone, such as %s (no path, query or fragment)", s, DefaultGraphEndpoint)
	case u.Scheme == "https":
	case u.Scheme == "http" && IsLoopback(u.Hostname()):
	case u.Scheme == "http":
		return nil, fmt.Errorf("%q uses plain http: a token is only sent over https, or over http to a loopback address for local fakes", s)
	default:
		return nil, fmt.Errorf("%q must be an https URL", s)
	}
	return &url.URL{Scheme: u.Scheme, Host: strings.ToLower(u.Host)}, nil
}

// IsLoopback reports whether host names this machine: localhost or an
// address in 127.0.0.0/8 or ::1.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseSelect splits a $select list and makes sure it holds "id", first, so
// that every user line can be told apart.
func parseSelect(s string) ([]string, error) {
	props := []string{"id"}
	seen := map[string]bool{"id": true}
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if !property.MatchString(p) {
			return nil, fmt.Errorf("%q is not a comma-separated list of user properties such as %s", s, DefaultSelect)
		}
		if k := strings.ToLower(p); !seen[k] {
			seen[k] = true
			props = append(props, p)
		}
	}
	return props, nil
}

// validSchedule accepts what the Functions timer trigger accepts: a 6-field
// NCRONTAB expression or a TimeSpan such as 01:00:00.
func validSchedule(s string) bool {
	return len(strings.Fields(s)) == 6 || timeSpan.MatchString(s)
}

// ParseDuration reads a duration written the Go way ("4m30s") or as a .NET
// TimeSpan ("00:04:30", "1.00:00:00"), as host.json writes functionTimeout.
func ParseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	m := timeSpan.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is neither a Go duration nor a TimeSpan", s)
	}
	var days, h, min, sec int
	if m[1] != "" {
		days, _ = strconv.Atoi(strings.TrimSuffix(m[1], "."))
	}
	h, _ = strconv.Atoi(m[2])
	min, _ = strconv.Atoi(m[3])
	if m[4] != "" {
		sec, _ = strconv.Atoi(m[4][1:])
	}
	if h > 23 || min > 59 || sec > 59 {
		return 0, fmt.Errorf("%q is not a TimeSpan: hours, minutes or seconds out of range", s)
	}
	return time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour +
		time.Duration(min)*time.Minute + time.Duration(sec)*time.Second, nil
}

// DefaultFunctionTimeout is the host's functionTimeout when host.json sets
// none, on the plan where it is smallest (Consumption).
const DefaultFunctionTimeout = 5 * time.Minute

// RunMargin is how long before the host's functionTimeout a run stops, so
// that it can say how far it got before the host kills the process.
const RunMargin = 30 * time.Second

// RunDeadline is how long one run may take: RunTimeout when set; otherwise
// functionTimeout, as host.json writes it, less RunMargin ("" means the
// default, "-1" no limit, which returns 0).
func (c Config) RunDeadline(functionTimeout string) (time.Duration, error) {
	if c.RunTimeout > 0 {
		return c.RunTimeout, nil
	}
	ft := DefaultFunctionTimeout
	switch strings.TrimSpace(functionTimeout) {
	case "":
	case "-1":
		return 0, nil
	default:
		d, err := ParseDuration(functionTimeout)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("host.json functionTimeout %q: want a TimeSpan such as 00:10:00, or -1", functionTimeout)
		}
		ft = d
	}
	if ft <= 2*RunMargin {
		return ft / 2, nil
	}
	return ft - RunMargin, nil
}
