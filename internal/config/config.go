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
	// LogLevel is the lowest level logged.
	LogLevel slog.Level
}

// GraphScope is the one token scope the job asks for: the Graph endpoint's
// resource with "/.default".
func (c Config) GraphScope() string {
	return c.GraphEndpoint.String() + "/.default"
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
	timeSpan = regexp.MustCompile(`^(\d+\.)?\d{1,2}:\d{2}(:\d{2})?$`)
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
