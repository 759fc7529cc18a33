package functions

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// FunctionTimeout returns host.json's functionTimeout under root as written,
// "" when host.json sets none.
func FunctionTimeout(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "host.json"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read host.json: %w", err)
	}
	var h struct {
		FunctionTimeout *string `json:"functionTimeout"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return "", fmt.Errorf("parse %s: %w", filepath.Join(root, "host.json"), err)
	}
	if h.FunctionTimeout == nil {
		return "", nil
	}
	return *h.FunctionTimeout, nil
}
