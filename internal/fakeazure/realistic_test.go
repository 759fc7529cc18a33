package fakeazure

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// twoBlocks is a realistic tenant of two whole blocks, which hold the slot table's distribution
// exactly: what 1,000,000 users show, give or take the last, partial block.
const twoBlocks = 2 * realBlock

func TestRealisticUPNsAreUniqueInAnyCaseAndValid(t *testing.T) {
	seen := make(map[string]int, twoBlocks)
	for i := range twoBlocks {
		upn := RealisticUPN(i)
		require.NoError(t, validUPN(upn), "user %d: %q", i, upn)
		folded := strings.ToLower(upn)
		if j, dup := seen[folded]; dup {
			t.Fatalf("users %d and %d share the UPN %q", j, i, upn)
		}
		seen[folded] = i
	}
	assert.Equal(t, RealisticUPN(12345), RealisticUPN(12345), "a user's UPN depends on its index alone")
}

func share(counts map[string]int, key string, total int) float64 {
	return 100 * float64(counts[key]) / float64(total)
}

func largest(counts map[string]int) (string, int) {
	best, n := "", 0
	for k, c := range counts {
		if c > n || c == n && k < best {
			best, n = k, c
		}
	}
	return best, n
}

func TestRealisticFirstCharactersAreSkewedAsRealFirstNames(t *testing.T) {
	g := NewGraph(GraphOptions{Users: twoBlocks, Realistic: true})
	one, two, three := g.PrefixCounts(1), g.PrefixCounts(2), g.PrefixCounts(3)

	first, n := largest(one)
	assert.Equal(t, "j", first)
	assert.InDelta(t, 11, 100*float64(n)/twoBlocks, 0.5, "the largest first letter holds about 11 %%")
	assert.InDelta(t, 10, share(one, "m", twoBlocks), 0.5)
	prefix, n := largest(two)
	assert.Equal(t, "ma", prefix)
	assert.InDelta(t, 4.6, 100*float64(n)/twoBlocks, 0.2, "the largest two-letter prefix holds about 4.6 %%")
	prefix, n = largest(three)
	assert.Equal(t, "mar", prefix)
	assert.Less(t, 100*float64(n)/twoBlocks, 4.0)
	for _, rare := range []string{"q", "x", "z", "7"} {
		assert.Positive(t, one[rare], "%q begins some UPN", rare)
		assert.Less(t, share(one, rare, twoBlocks), 0.15, "%q is rare", rare)
	}

	digits, punct := 0, 0
	for k, c := range one {
		switch {
		case '0' <= k[0] && k[0] <= '9':
			digits += c
		case strings.Contains("'.-_!#^~", k):
			punct += c
		default:
			assert.True(t, 'a' <= k[0] && k[0] <= 'z', "unexpected first character %q", k)
		}
	}
	assert.InDelta(t, 1.0, 100*float64(digits)/twoBlocks, 0.05, "about 1 %% begin with a digit")
	assert.InDelta(t, 0.3, 100*float64(punct)/twoBlocks, 0.02, "about 0.3 %% begin with punctuation")
	for _, c := range "'.-_!#^~" {
		assert.Positive(t, one[string(c)], "%q begins some UPN", c)
	}
}

func TestRealisticTenantHasGuestsMixedCaseAndConsistentNames(t *testing.T) {
	const n = 5_000
	guests, mixed := 0, 0
	store := NewGraph(GraphOptions{Realistic: true}).store
	for i := range n {
		upn := RealisticUPN(i)
		var u map[string]any
		require.NoError(t, json.Unmarshal(store.appendUser(nil, i,
			[]property{propDisplayName, propGivenName, propSurname, propMail, propUserType, propUserPrincipalName, propID}), &u))
		assert.Equal(t, upn, u["userPrincipalName"])
		assert.Equal(t, UserID(i), u["id"])
		local, domain, _ := strings.Cut(upn, "@")
		if strings.HasSuffix(local, "#EXT#") {
			guests++
			assert.Equal(t, "contoso.onmicrosoft.com", domain)
			assert.Equal(t, "Guest", u["userType"])
			name, external, _ := strings.Cut(strings.TrimSuffix(local, "#EXT#"), "_")
			assert.Equal(t, strings.ToLower(name)+"@"+external, strings.ToLower(u["mail"].(string)), "a guest's mail is at home")
		} else {
			assert.Equal(t, "Member", u["userType"])
			assert.Equal(t, "contoso.com", domain)
		}
		if upn[0] >= 'A' && upn[0] <= 'Z' {
			mixed++
		}
		if given, ok := u["givenName"].(string); ok && upn[0] >= 'A' && upn[0] <= 'z' && !strings.HasPrefix(local, "#") {
			assert.True(t, strings.HasPrefix(strings.ToLower(local), strings.ToLower(given)+"."), "%q is named after %q", upn, given)
			assert.Equal(t, given+" "+u["surname"].(string), u["displayName"])
		}
	}
	assert.InDelta(t, 5, 100*float64(guests)/n, 1, "about 5 %% are guests")
	assert.InDelta(t, 10, 100*float64(mixed)/n, 2, "about 10 %% are capitalized")
}

func TestRealisticIndexOrderIsUnrelatedToUPNOrder(t *testing.T) {
	// The first page of an unfiltered listing is a fair sample: its first letters are spread as
	// the tenant's are, and its UPNs are in no order.
	firsts := map[byte]int{}
	ascending := 0
	for i := range maxTop {
		upn := strings.ToLower(RealisticUPN(i))
		firsts[upn[0]]++
		if i > 0 && strings.ToLower(RealisticUPN(i-1)) < upn {
			ascending++
		}
	}
	assert.InDelta(t, 11, 100*float64(firsts['j'])/maxTop, 3)
	assert.InDelta(t, 10, 100*float64(firsts['m'])/maxTop, 3)
	assert.Greater(t, len(firsts), 15, "the first page meets most first letters")
	assert.InDelta(t, 50, 100*float64(ascending)/maxTop, 6, "neighbouring users are in no order")
}

func TestRealisticTenantServesJSONThatDecodes(t *testing.T) {
	gs := newGraphServerWith(t, GraphOptions{Users: 300, Realistic: true})

	pages := gs.listAll(t, gs.srv.URL+"/v1.0/users?$select=id,displayName,givenName,surname,mail,userPrincipalName,userType,accountEnabled,jobTitle&$top=999")

	require.Len(t, pages, 1)
	require.Len(t, pages[0].Value, 300)
	for i, raw := range pages[0].Value {
		var u struct {
			ID, UserPrincipalName, DisplayName string
		}
		require.NoError(t, json.Unmarshal(raw, &u), "%s", raw)
		assert.Equal(t, UserID(i), u.ID)
		assert.Equal(t, RealisticUPN(i), u.UserPrincipalName)
		assert.NotEmpty(t, u.DisplayName)
	}
}
