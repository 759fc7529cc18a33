package customhandler

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Function is the app's timer function as its folder's function.json
// declares it.
type Function struct {
	// Name is the function's folder name, which is also the route the host
	// POSTs its invocations to.
	Name string
	// Binding is the timer trigger binding's name, the key of its value in
	// an invocation's Data.
	Binding string
	// Schedule is the binding's schedule as written, often "%SETTING%".
	Schedule string
}

type functionJSON struct {
	Bindings []struct {
		Type      string `json:"type"`
		Direction string `json:"direction"`
		Name      string `json:"name"`
		Schedule  string `json:"schedule"`
	} `json:"bindings"`
}

// FindTimerFunction looks through the folders of the app root for the one
// function.json with a timerTrigger binding.
func FindTimerFunction(root string) (Function, error) {
	paths, err := filepath.Glob(filepath.Join(root, "*", "function.json"))
	if err != nil {
		return Function{}, fmt.Errorf("find function.json under %s: %w", root, err)
	}
	var found []Function
	var errs []error
	for _, p := range paths {
		fn, ok, err := readTimerFunction(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			found = append(found, fn)
		}
	}
	switch {
	case len(errs) > 0:
		return Function{}, errors.Join(errs...)
	case len(found) == 0:
		return Function{}, fmt.Errorf("no <function>/function.json with a timerTrigger binding under %s: run from the function app's root or set FUNCTIONS_APP_ROOT_PATH to it", root)
	case len(found) > 1:
		names := make([]string, len(found))
		for i, fn := range found {
			names[i] = fn.Name
		}
		return Function{}, fmt.Errorf("more than one timer function under %s (%s): this handler serves one", root, strings.Join(names, ", "))
	}
	return found[0], nil
}

func readTimerFunction(path string) (Function, bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Function{}, false, fmt.Errorf("read %s: %w", path, err)
	}
	var fj functionJSON
	if err := json.Unmarshal(b, &fj); err != nil {
		return Function{}, false, fmt.Errorf("parse %s: %w", path, err)
	}
	for _, b := range fj.Bindings {
		if strings.EqualFold(b.Type, "timerTrigger") && strings.EqualFold(b.Direction, "in") {
			if b.Name == "" {
				return Function{}, false, fmt.Errorf("%s: the timerTrigger binding has no name", path)
			}
			return Function{Name: filepath.Base(filepath.Dir(path)), Binding: b.Name, Schedule: b.Schedule}, true, nil
		}
	}
	return Function{}, false, nil
}

// DefaultFunctionTimeout is the host's functionTimeout when host.json sets
// none, on the plan where it is smallest (Consumption).
const DefaultFunctionTimeout = 5 * time.Minute

// App is the function app the handler serves, as its files declare it.
type App struct {
	// Function is the app's one timer function.
	Function Function
	// FunctionTimeout is how long the host lets one invocation run before it
	// kills the handler: host.json's functionTimeout, DefaultFunctionTimeout
	// when host.json sets none, and 0 when it sets -1 (no limit).
	FunctionTimeout time.Duration
}

// LoadApp reads the function app under root: its timer function and
// host.json's functionTimeout.
func LoadApp(root string) (App, error) {
	fn, err := FindTimerFunction(root)
	if err != nil {
		return App{}, err
	}
	ft, err := functionTimeout(root)
	if err != nil {
		return App{}, err
	}
	return App{Function: fn, FunctionTimeout: ft}, nil
}

// functionTimeout reads host.json's functionTimeout under root.
func functionTimeout(root string) (time.Duration, error) {
	path := filepath.Join(root, "host.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return DefaultFunctionTimeout, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read host.json: %w", err)
	}
	var h struct {
		FunctionTimeout *string `json:"functionTimeout"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	if h.FunctionTimeout == nil {
		return DefaultFunctionTimeout, nil
	}
	if strings.TrimSpace(*h.FunctionTimeout) == "-1" {
		return 0, nil
	}
	d, err := ParseTimeSpan(*h.FunctionTimeout)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: functionTimeout %q: want a TimeSpan such as 00:10:00, or -1", path, *h.FunctionTimeout)
	}
	return d, nil
}

// ParseTimeSpan reads a .NET TimeSpan as the host reads host.json's
// functionTimeout: surrounding spaces, then d (days), hh:mm, hh:mm:ss,
// d.hh:mm[:ss] or d:hh:mm:ss, the seconds with up to 7 fractional digits.
func ParseTimeSpan(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a TimeSpan such as 00:10:00", s)
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, bad
	}
	num := func(f string, maxDigits int) (int64, bool) {
		if f == "" || len(f) > maxDigits {
			return 0, false
		}
		for _, c := range f {
			if c < '0' || c > '9' {
				return 0, false
			}
		}
		n, err := strconv.ParseInt(f, 10, 64)
		return n, err == nil
	}
	if !strings.Contains(t, ":") {
		days, ok := num(t, 7)
		if !ok {
			return 0, bad
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	var days int64
	if d, rest, ok := strings.Cut(t, "."); ok && !strings.Contains(d, ":") {
		n, ok := num(d, 7)
		if !ok {
			return 0, bad
		}
		days, t = n, rest
	}
	var frac time.Duration
	if i := strings.LastIndexByte(t, '.'); i > strings.LastIndexByte(t, ':') {
		digits := t[i+1:]
		n, ok := num(digits, 7)
		if !ok {
			return 0, bad
		}
		for k := len(digits); k < 7; k++ {
			n *= 10
		}
		frac, t = time.Duration(n)*100*time.Nanosecond, t[:i]
	}
	parts := strings.Split(t, ":")
	if len(parts) == 4 && days == 0 {
		n, ok := num(parts[0], 7)
		if !ok {
			return 0, bad
		}
		days, parts = n, parts[1:]
	}
	if len(parts) < 2 || len(parts) > 3 || len(parts) == 2 && frac != 0 {
		return 0, bad
	}
	limits := []int64{23, 59, 59}
	var v [3]int64
	for k, p := range parts {
		n, ok := num(p, 2)
		if !ok || n > limits[k] {
			return 0, bad
		}
		v[k] = n
	}
	return time.Duration(days)*24*time.Hour + time.Duration(v[0])*time.Hour +
		time.Duration(v[1])*time.Minute + time.Duration(v[2])*time.Second + frac, nil
}
