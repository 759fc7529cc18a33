package fakeazure

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listFiltered lists every page of $filter=filter and returns the ids found.
func (gs graphServer) listFiltered(t *testing.T, filter string, top int) []string {
	t.Helper()
	q := url.Values{"$filter": {filter}, "$select": {"id"}, "$top": {strconv.Itoa(top)}}
	return ids(t, gs.listAll(t, gs.srv.URL+"/v1.0/users?"+q.Encode()))
}

// expected returns the ids of the listed users that pass keep, in listing order.
func (gs graphServer) expected(keep func(i int, upn string) bool) []string {
	var out []string
	for _, i := range gs.ListedUsers() {
		if keep(i, gs.UPN(i)) {
			out = append(out, UserID(i))
		}
	}
	return out
}

func folded(upn, prefix string) bool {
	return strings.HasPrefix(strings.ToLower(upn), strings.ToLower(prefix))
}

func TestFilterCombinesStartsWithAndEqualityAsGraphDoes(t *testing.T) {
	gs := newGraphServerWith(t, GraphOptions{Users: 8000, Realistic: true})
	pop := population{realistic: true}
	enabled := func(i int) bool { return pop.accountEnabled(i) }
	guest := func(i int) bool { return pop.guest(i) }
	tests := []struct {
		name, filter string
		keep         func(i int, upn string) bool
	}{
		{"a UPN prefix ignores case", "startsWith(userPrincipalName,'JA')",
			func(_ int, upn string) bool { return folded(upn, "ja") }},
		{"the function and property names ignore case", "STARTSWITH(userprincipalname, 'm')",
			func(_ int, upn string) bool { return folded(upn, "m") }},
		{"a prefix longer than the index's", "startswith(userPrincipalName,'james.s')",
			func(_ int, upn string) bool { return folded(upn, "james.s") }},
		{"a doubled quote is a quote", "startsWith(userPrincipalName,'''')",
			func(_ int, upn string) bool { return strings.HasPrefix(upn, "'") }},
		{"punctuation is a prefix like any other", "startsWith(userPrincipalName,'#')",
			func(_ int, upn string) bool { return strings.HasPrefix(upn, "#") }},
		{"an empty prefix matches everyone", "startsWith(userPrincipalName,'')",
			func(int, string) bool { return true }},
		{"a user's filter and a stream's prefix", "(accountEnabled eq true) and startsWith(userPrincipalName,'m')",
			func(i int, upn string) bool { return enabled(i) && folded(upn, "m") }},
		{"guests of a stream", "(userType eq 'Guest') and startsWith(userPrincipalName,'a')",
			func(i int, upn string) bool { return guest(i) && folded(upn, "a") }},
		{"members, in any case", "userType eq 'member'",
			func(i int, _ string) bool { return !guest(i) }},
		{"disabled accounts", "accountEnabled eq false",
			func(i int, _ string) bool { return !enabled(i) }},
		{"or, and and nested parentheses", "((startsWith(userPrincipalName,'j')) and (accountEnabled eq false or userType eq 'Guest'))",
			func(i int, upn string) bool { return folded(upn, "j") && (!enabled(i) || guest(i)) }},
		{"or of two prefixes, upper-case keywords", "startsWith(userPrincipalName,'q') OR startsWith(displayName,'Xavier')",
			func(i int, upn string) bool {
				return folded(upn, "q") || strings.HasPrefix(string(pop.appendDisplayName(nil, i)), "Xavier")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := gs.expected(tt.keep)
			require.NotEmpty(t, want, "the tenant should hold some such users")

			assert.Equal(t, want, gs.listFiltered(t, tt.filter, 397))
		})
	}
}

func TestFilterRefusesWhatTheFakeDoesNotImplement(t *testing.T) {
	gs := newGraphServer(t, 10)
	for _, filter := range []string{
		"not startsWith(userPrincipalName,'a')",
		"accountEnabled ne true",
		"endsWith(userPrincipalName,'x')",
		"startsWith(mail,'a')",
		"startsWith(userPrincipalName,'a'",
		"startsWith(userPrincipalName,'a'))",
		"(startsWith(userPrincipalName,'a')",
		"startsWith(userPrincipalName,'a') and",
		"startsWith(userPrincipalName,'a') xor accountEnabled eq true",
		"userType eq Guest",
		"accountEnabled eq 'true'",
		"startsWith(userPrincipalName,'it''s)",
		"",
	} {
		t.Run(filter, func(t *testing.T) {
			r := gs.get(t, gs.srv.URL+"/v1.0/users?$filter="+url.QueryEscape(filter), bearer(graphToken))
			errorOf(t, r, http.StatusBadRequest, "Request_UnsupportedQuery")
		})
	}
}

func TestStartsWithIgnoresCaseUnlessTheKnobSaysOtherwise(t *testing.T) {
	const users = 3000
	folding := newGraphServerWith(t, GraphOptions{Users: users, Realistic: true})
	exact := newGraphServerWith(t, GraphOptions{Users: users, Realistic: true, CaseSensitiveStartsWith: true})
	lower := folding.expected(func(_ int, upn string) bool { return strings.HasPrefix(upn, "a") })
	upper := folding.expected(func(_ int, upn string) bool { return strings.HasPrefix(upn, "A") })
	require.NotEmpty(t, lower)
	require.NotEmpty(t, upper, "some UPNs are capitalized")
	either := folding.expected(func(_ int, upn string) bool { return folded(upn, "a") })

	assert.Equal(t, either, folding.listFiltered(t, "startsWith(userPrincipalName,'a')", 999))
	assert.Equal(t, either, folding.listFiltered(t, "startsWith(userPrincipalName,'A')", 999))
	assert.Equal(t, lower, exact.listFiltered(t, "startsWith(userPrincipalName,'a')", 999))
	assert.Equal(t, upper, exact.listFiltered(t, "startsWith(userPrincipalName,'A')", 999))
	assert.Empty(t, exact.listFiltered(t, "startsWith(displayName,'adele')", 999), "display names are capitalized")
}

func TestPrefixFilterPagesCostAboutThePageNotTheTenant(t *testing.T) {
	const users = 3 * realBlock
	gs := newGraphServerWith(t, GraphOptions{Users: users, Realistic: true})
	s := gs.store
	filter := "(accountEnabled eq true) and startsWith(userPrincipalName,'mar')"
	first := gs.srv.URL + "/v1.0/users?" + url.Values{"$filter": {filter}, "$top": {"999"}, "$select": {"id"}}.Encode()

	before := s.examined.Load()
	p := pageOf(t, gs.get(t, first, bearer(graphToken)))
	require.Len(t, p.Value, 999)
	firstCost := s.examined.Load() - before
	before = s.examined.Load()
	p = pageOf(t, gs.get(t, p.NextLink, bearer(graphToken)))
	require.Len(t, p.Value, 999)
	secondCost := s.examined.Load() - before

	// About 4 % of accounts are disabled: a page of 999 looks at about 1,040 users.
	assert.Less(t, firstCost, int64(1100), "the first page looks at its own users")
	assert.Less(t, secondCost, int64(1100), "a later page starts where the last one ended")
	before = s.examined.Load()
	gs.listFiltered(t, "startsWith(userPrincipalName,'q')", 999)
	assert.Equal(t, int64(gs.PrefixCounts(1)["q"]), s.examined.Load()-before, "a rare prefix costs its few users")

	entries := 0
	for _, b := range s.index.buckets {
		entries += len(b)
	}
	assert.Equal(t, 3*users, entries, "the index holds each user under three prefixes")
}

func TestFilteredListingsCountTheirPagesAndAttemptsApart(t *testing.T) {
	var mu sync.Mutex
	var seen []PageRequest
	gs := newGraphServerWith(t, GraphOptions{Users: 3000, Realistic: true, Fault: func(pr PageRequest) Fault {
		mu.Lock()
		seen = append(seen, pr)
		mu.Unlock()
		if pr.Prefix == "j" && pr.Page == 1 && pr.Attempt == 1 {
			return Fault{Status: http.StatusServiceUnavailable, Code: "serviceNotAvailable", Message: "Try again."}
		}
		return Fault{}
	}})
	streams := map[string]string{
		"j": "(accountEnabled eq true) and startsWith(userPrincipalName,'j')",
		"a": "(accountEnabled eq true) and startsWith(userPrincipalName,'a')",
	}
	got := map[string][]string{}
	var wg sync.WaitGroup
	for prefix, filter := range streams {
		wg.Go(func() {
			var ids []string
			link := gs.srv.URL + "/v1.0/users?" + url.Values{"$filter": {filter}, "$top": {"100"}, "$select": {"id"}}.Encode()
			for link != "" {
				r := gs.get(t, link, bearer(graphToken))
				if r.status == http.StatusServiceUnavailable {
					continue // the retry a client makes
				}
				p := pageOf(t, r)
				for _, v := range p.Value {
					ids = append(ids, string(v))
				}
				link = p.NextLink
			}
			mu.Lock()
			got[prefix] = ids
			mu.Unlock()
		})
	}
	wg.Wait()

	pages := map[string][]PageRequest{}
	for _, pr := range seen {
		assert.Equal(t, UsersPath, pr.Path)
		assert.Equal(t, streams[pr.Prefix], pr.Filter)
		pages[pr.Prefix] = append(pages[pr.Prefix], pr)
	}
	require.Greater(t, len(pages["j"]), 3)
	assert.Equal(t, []int{0, 1, 1, 2}, []int{pages["j"][0].Page, pages["j"][1].Page, pages["j"][2].Page, pages["j"][3].Page})
	assert.Equal(t, []int{1, 1, 2, 1}, []int{pages["j"][0].Attempt, pages["j"][1].Attempt, pages["j"][2].Attempt, pages["j"][3].Attempt},
		"the faulted page is asked again")
	for k, pr := range pages["a"] {
		assert.Equal(t, k, pr.Page, "stream a runs unfaulted")
		assert.Equal(t, 1, pr.Attempt)
	}
	for prefix := range streams {
		assert.Len(t, got[prefix], len(gs.expected(func(i int, upn string) bool {
			return folded(upn, prefix) && population{realistic: true}.accountEnabled(i)
		})))
	}
}
