package fakeazure

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestFaultIsZeroOnlyWhenNoFieldIsSet(t *testing.T) {
	assert.True(t, Fault{}.IsZero())
	set := []Fault{
		{Status: 429}, {Code: "x"}, {Message: "x"}, {Header: http.Header{}}, {Cut: true}, {CutAfterUsers: 1},
		{Stall: true}, {Garbage: true}, {NextLink: "x"}, {LinkAfterValue: true}, {Delay: time.Nanosecond},
		{BytesPerSecond: 1}, {WithoutID: true},
	}
	for _, f := range set {
		assert.False(t, f.IsZero(), "%+v", f)
	}
	// Every field of Fault is in the list above, so that a new field
	// cannot be forgotten here either.
	assert.Len(t, set, reflect.TypeFor[Fault]().NumField())
}
