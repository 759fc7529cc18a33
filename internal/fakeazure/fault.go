package fakeazure

import "reflect"

// IsZero reports whether f is the zero Fault, which serves a response as it
// is. Every field counts, those added later included.
func (f Fault) IsZero() bool { return reflect.ValueOf(f).IsZero() }
