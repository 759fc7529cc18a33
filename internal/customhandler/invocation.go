// Package customhandler speaks the Azure Functions custom handler protocol: it
// decodes the host's invocation requests, encodes the responses, and serves
// them over HTTP.
package customhandler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Invocation is the body the host POSTs to /<FunctionName> for one trigger.
type Invocation struct {
	// Data holds each input binding's value by binding name.
	Data map[string]json.RawMessage `json:"Data"`
	// Metadata holds the trigger metadata and the host's sys values.
	Metadata Metadata `json:"Metadata"`
}

// Metadata is the invocation's metadata. Fields the host adds over time are
// ignored.
type Metadata struct {
	Sys          Sys           `json:"sys"`
	RetryContext *RetryContext `json:"RetryContext"`
}

// Sys is the host's own metadata for an invocation.
type Sys struct {
	MethodName string `json:"MethodName"`
	UtcNow     Time   `json:"UtcNow"`
	RandGuid   string `json:"RandGuid"`
}

// RetryContext appears when the function has a retry policy.
type RetryContext struct {
	RetryCount    int             `json:"RetryCount"`
	MaxRetryCount int             `json:"MaxRetryCount"`
	Exception     json.RawMessage `json:"Exception"`
}

// Timer is the timer trigger's binding value.
type Timer struct {
	Schedule struct {
		AdjustForDST bool `json:"AdjustForDST"`
	} `json:"Schedule"`
	// ScheduleStatus is nil when the host's schedule monitor is off.
	ScheduleStatus *ScheduleStatus `json:"ScheduleStatus"`
	// IsPastDue says the invocation is later than scheduled, such as after a
	// restart.
	IsPastDue bool `json:"IsPastDue"`
}

// ScheduleStatus is what the host's schedule monitor remembers.
type ScheduleStatus struct {
	Last        Time `json:"Last"`
	Next        Time `json:"Next"`
	LastUpdated Time `json:"LastUpdated"`
}

// DecodeInvocation decodes an invocation body. Only a body that is not a
// JSON object is an error: the run needs nothing else from it, so fields it
// does not know, or whose type changed, are ignored.
func DecodeInvocation(body []byte) (Invocation, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return Invocation{}, fmt.Errorf("decode invocation: %w", err)
	}
	if top == nil {
		return Invocation{}, errors.New("decode invocation: the body is null, not a JSON object")
	}
	var inv Invocation
	for k, v := range top {
		switch {
		case strings.EqualFold(k, "Data"):
			_ = json.Unmarshal(v, &inv.Data)
		case strings.EqualFold(k, "Metadata"):
			inv.Metadata = decodeMetadata(v)
		}
	}
	return inv, nil
}

// decodeMetadata reads what it can of the metadata, field by field.
func decodeMetadata(raw json.RawMessage) Metadata {
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(raw, &fields)
	var md Metadata
	for k, v := range fields {
		switch {
		case strings.EqualFold(k, "sys"):
			var sys map[string]json.RawMessage
			_ = json.Unmarshal(v, &sys)
			for sk, sv := range sys {
				switch {
				case strings.EqualFold(sk, "MethodName"):
					_ = json.Unmarshal(sv, &md.Sys.MethodName)
				case strings.EqualFold(sk, "UtcNow"):
					_ = md.Sys.UtcNow.UnmarshalJSON(sv)
				case strings.EqualFold(sk, "RandGuid"):
					_ = json.Unmarshal(sv, &md.Sys.RandGuid)
				}
			}
		case strings.EqualFold(k, "RetryContext"):
			var rc RetryContext
			if json.Unmarshal(v, &rc) == nil && string(v) != "null" {
				md.RetryContext = &rc
			}
		}
	}
	return md
}

// Timer returns the timer binding named binding. A missing or unreadable
// timer yields the zero Timer and false: a timer field never fails a run.
func (inv Invocation) Timer(binding string) (Timer, bool) {
	raw, ok := inv.Data[binding]
	if !ok {
		for name, v := range inv.Data {
			if strings.EqualFold(name, binding) {
				raw, ok = v, true
				break
			}
		}
	}
	if !ok {
		return Timer{}, false
	}
	// Some host versions send a binding value as a JSON string holding JSON.
	if s := bytes.TrimSpace(raw); len(s) > 0 && s[0] == '"' {
		var inner string
		if json.Unmarshal(s, &inner) != nil {
			return Timer{}, false
		}
		raw = json.RawMessage(inner)
	}
	var t Timer
	if json.Unmarshal(raw, &t) != nil {
		return Timer{}, false
	}
	return t, true
}

// Time is a .NET-serialized timestamp read tolerantly: with an offset or Z,
// or with neither (taken as UTC), up to 7 fractional digits. Anything else,
// null included, reads as the zero time and never as an error.
type Time struct{ time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	t.Time = time.Time{}
	var s string
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999"} {
		if v, err := time.Parse(layout, s); err == nil {
			if v.Year() > 1 {
				t.Time = v.UTC()
			}
			return nil
		}
	}
	return nil
}

// Response is the body the handler answers an invocation with.
type Response struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// NewResponse returns a response carrying logs and no outputs.
func NewResponse(logs ...string) Response {
	if logs == nil {
		logs = []string{}
	}
	return Response{Outputs: map[string]any{}, Logs: logs}
}
