package graph

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/fakeazure"
)

// firstChars is how many characters a UPN may begin with, letters in one
// case: a part for each when nothing is split.
var firstChars = 26 + len(upnOthers)

// planTotals is what a plan costs: its requests, the pages of its largest
// part, and the round trips it takes at least in streams.
func planTotals(parts []part, streams int) (requests, largest, bound int) {
	for _, p := range parts {
		requests += p.pages
		largest = max(largest, p.pages)
	}
	return requests, largest, splitBound(parts, streams)
}

func TestPlanSplitParts(t *testing.T) {
	tests := []struct {
		name        string
		upns        []string
		expected    int
		insensitive bool
		top         int
		streams     int
		// first are the plan's first parts, in order; parts how many it has.
		first []part
		parts int
		// requests is the sum of the parts' pages.
		requests int
	}{
		{
			name:        "without a count the sample's frequency orders one part per first character",
			upns:        []string{"ann@c", "bob@c", "bea@c", "bill@c"},
			insensitive: true, top: 999, streams: 16,
			first: []part{{"b", 3}, {"a", 1}, {"c", 0}},
			parts: firstChars, requests: 4,
		},
		{
			name: "when startsWith heeds case both cases are parts",
			upns: []string{"Ann@c", "bob@c"},
			top:  999, streams: 16,
			first: []part{{"b", 1}, {"A", 1}, {"a", 0}},
			parts: 26 + firstChars, requests: 2,
		},
		{
			name:     "a part no larger than a stream's share of the requests is not split",
			upns:     []string{"ann@c", "bob@c", "bea@c", "bill@c"},
			expected: 4000, insensitive: true, top: 1000, streams: 2,
			// b holds three of the four: 3,000 users, 3 pages; every other
			// part costs its one request.
			first: []part{{"b", 3}, {"a", 1}, {"c", 1}},
			parts: firstChars, requests: 3 + 1 + (firstChars - 2),
		},
		{
			name:     "the part that bounds the run is split by its next character",
			upns:     []string{"jo1@c", "jo2@c", "ja@c", "x@c"},
			expected: 4000, insensitive: true, top: 1000, streams: 64,
			// j's 3 pages bound the run: split, jo's 2 pages are the
			// largest, which a stream's share of the 89 requests equals.
			first: []part{{"jo", 2}, {"a", 1}, {"b", 1}},
			parts: (firstChars - 1) + (firstChars + 1), requests: 89,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := planSplit(tt.upns, tt.expected, tt.insensitive, tt.top, tt.streams)
			require.Len(t, parts, tt.parts)
			assert.Equal(t, tt.first, parts[:len(tt.first)])
			requests, _, _ := planTotals(parts, tt.streams)
			assert.Equal(t, tt.requests, requests)
			assertCoversEveryUPN(t, parts, tt.upns, tt.insensitive)
		})
	}
}

// assertCoversEveryUPN checks that each UPN of the sample is in exactly one
// part, the one its longest listed prefix names.
func assertCoversEveryUPN(t *testing.T, parts []part, upns []string, insensitive bool) {
	t.Helper()
	for _, u := range upns {
		if insensitive {
			u = strings.ToLower(u)
		}
		n := 0
		for _, p := range parts {
			if strings.HasPrefix(u, p.prefix) {
				n++
			}
		}
		assert.Equal(t, 1, n, "%s is in one part", u)
	}
}

// The README's figures for 1,000,000 users with realistic names, whose
// first page of 999 is the sample: the plan's estimate, which listing the
// parts then measures a little lower (1,496 requests, a largest part of 47
// pages at 32 streams; 1,926 and 33 at 64).
func TestPlanSplitAtAMillionRealisticUsers(t *testing.T) {
	var upns []string
	for i := range 999 {
		upns = append(upns, fakeazure.RealisticUPN(i))
	}
	tests := []struct {
		streams                  int
		requests, largest, bound int
	}{
		{streams: 32, requests: 1527, largest: 48, bound: 48},
		{streams: 64, requests: 1967, largest: 30, bound: 31},
	}
	for _, tt := range tests {
		parts := planSplit(upns, 1_000_000, true, 999, tt.streams)
		requests, largest, bound := planTotals(parts, tt.streams)
		assert.Equal(t, tt.requests, requests, "%d streams: requests", tt.streams)
		assert.Equal(t, tt.largest, largest, "%d streams: pages of the largest part", tt.streams)
		assert.Equal(t, tt.bound, bound, "%d streams: round trips at least", tt.streams)
		assert.Equal(t, largest, parts[0].pages, "%d streams: the largest part comes first", tt.streams)
		assertCoversEveryUPN(t, parts, upns, true)
	}
}
