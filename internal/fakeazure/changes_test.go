package fakeazure

import (
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// upnFilter is the filter of a stream of a split listing.
func upnFilter(prefix string) string {
	return "startsWith(userPrincipalName,'" + strings.ReplaceAll(prefix, "'", "''") + "')"
}

// listUsers lists every user with props and decodes them.
func (gs graphServer) listUsers(t *testing.T, query url.Values) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, p := range gs.listAll(t, gs.srv.URL+"/v1.0/users?"+query.Encode()) {
		for _, v := range p.Value {
			var u map[string]any
			require.NoError(t, json.Unmarshal(v, &u))
			out = append(out, u)
		}
	}
	return out
}

func TestChangesShowInListingsCountsAndPrefixes(t *testing.T) {
	for _, indexFirst := range []bool{true, false} {
		name := "index built after the changes"
		if indexFirst {
			name = "index kept up to date"
		}
		t.Run(name, func(t *testing.T) {
			gs := newGraphServerWith(t, GraphOptions{Users: 3000, Realistic: true})
			if indexFirst {
				gs.listFiltered(t, upnFilter("a"), 999)
			}
			listed := gs.ListedUsers()
			renamed, soft, hard, updated := listed[10], listed[20], listed[30], listed[40]
			oldUPN := gs.UPN(renamed)
			require.NoError(t, gs.RenameUser(renamed, "zelda.moved@contoso.com"))
			require.NoError(t, gs.SoftDeleteUser(soft))
			require.NoError(t, gs.HardDeleteUser(hard))
			require.NoError(t, gs.UpdateUser(updated, UserUpdate{DisplayName: "Renamed Person", JobTitle: "Chief Tester"}))
			added := gs.AddUsers(2)
			assert.Equal(t, []int{3000, 3001}, added)

			all := gs.listUsers(t, url.Values{"$select": {"id,userPrincipalName,displayName,jobTitle"}, "$top": {"999"}})
			byID := map[string]map[string]any{}
			for _, u := range all {
				byID[u["id"].(string)] = u
			}
			assert.Len(t, all, 3000-2+2, "deleted users are gone, added ones listed")
			assert.Len(t, byID, len(all), "no user twice")
			assert.NotContains(t, byID, UserID(soft))
			assert.NotContains(t, byID, UserID(hard))
			assert.Equal(t, "zelda.moved@contoso.com", byID[UserID(renamed)]["userPrincipalName"])
			assert.Equal(t, "Renamed Person", byID[UserID(updated)]["displayName"])
			assert.Equal(t, "Chief Tester", byID[UserID(updated)]["jobTitle"])
			assert.Equal(t, RealisticUPN(3001), byID[UserID(3001)]["userPrincipalName"], "an added user is the population's next")
			props := []string{"id", "userPrincipalName", "displayName", "jobTitle"}
			for _, i := range []int{renamed, updated, added[0], listed[50]} {
				var want map[string]any
				require.NoError(t, json.Unmarshal(gs.UserJSON(i, props), &want))
				assert.Equal(t, want, byID[UserID(i)], "Graph.UserJSON is what the listing holds for user %d", i)
			}

			assert.NotContains(t, gs.listFiltered(t, upnFilter(oldUPN[:2]), 999), UserID(renamed), "the renamed user left its prefix")
			assert.Contains(t, gs.listFiltered(t, upnFilter("ZE"), 999), UserID(renamed), "and joined another")
			assert.Equal(t, len(gs.listFiltered(t, upnFilter("z"), 999)), gs.PrefixCounts(1)["z"])
			assert.Equal(t, 3000, countOf(t, gs.get(t, gs.srv.URL+"/v1.0/users/$count", eventualBearer())))

			require.NoError(t, gs.RestoreUser(soft))
			assert.Contains(t, gs.listFiltered(t, upnFilter(gs.UPN(soft)[:3]), 999), UserID(soft), "a restored user is listed again")
			require.ErrorIs(t, gs.RestoreUser(hard), ErrNoSuchUser, "a hard-deleted user is gone")
			require.ErrorIs(t, gs.UpdateUser(hard, UserUpdate{JobTitle: "x"}), ErrNoSuchUser)
			require.ErrorIs(t, gs.SoftDeleteUser(5000), ErrNoSuchUser)
			assert.False(t, gs.Listed(hard))
			assert.True(t, gs.Listed(soft))
		})
	}
}

func TestChangeSaysWhatChangedAndPicksTheSameUsersEveryTime(t *testing.T) {
	c := Changes{Add: 3, Update: 4, Rename: 5, SoftDelete: 6, HardDelete: 2}
	a, b := NewGraph(GraphOptions{Users: 500, Realistic: true}), NewGraph(GraphOptions{Users: 500, Realistic: true})

	first := a.Change(c)
	assert.Equal(t, first, b.Change(c), "the same changes pick the same users")
	assert.Equal(t, []int{500, 501, 502}, first.Added)
	assert.Len(t, first.Updated, 4)
	assert.Len(t, first.Renamed, 5)
	assert.Len(t, first.SoftDeleted, 6)
	assert.Len(t, first.HardDeleted, 2)
	seen := map[int]bool{}
	for _, group := range [][]int{first.Updated, first.Renamed, first.SoftDeleted, first.HardDeleted} {
		for _, i := range group {
			assert.False(t, seen[i], "user %d changed twice in one Change", i)
			seen[i] = true
		}
	}
	for _, i := range first.Renamed {
		assert.NotEqual(t, strings.ToLower(RealisticUPN(i)[:1]), strings.ToLower(a.UPN(i)[:1]), "a rename moves the user to another first letter")
		assert.NoError(t, validUPN(a.UPN(i)))
	}
	assert.Len(t, a.ListedUsers(), 503-6-2)

	second := a.Change(Changes{Restore: 10})
	assert.ElementsMatch(t, first.SoftDeleted, second.Restored, "only soft-deleted users come back")
	assert.Len(t, a.ListedUsers(), 503-2)
}

func TestRenameRefusesUPNsTakenOrInvalid(t *testing.T) {
	g := NewGraph(GraphOptions{Users: 100})
	taken := g.UPN(7)

	assert.ErrorContains(t, g.RenameUser(3, strings.ToUpper(taken)), "user 7 already has it")
	assert.NoError(t, g.RenameUser(3, "someone.new@contoso.onmicrosoft.com"))
	assert.ErrorContains(t, g.RenameUser(4, "SOMEONE.New@contoso.onmicrosoft.com"), "user 3 already has it")
	assert.NoError(t, g.RenameUser(3, "someone.new@contoso.onmicrosoft.com"), "a user keeps its own UPN")
	for _, bad := range []string{"no-at-sign", "@contoso.com", "a b@contoso.com", "trailing.@contoso.com", "é@contoso.com", "a@b@c"} {
		assert.Error(t, g.RenameUser(4, bad), bad)
	}
	require.NoError(t, g.HardDeleteUser(7))
	assert.NoError(t, g.RenameUser(4, taken), "a hard-deleted user's UPN is free")
}

func TestSyntheticRenamesLeaveTheUserPrefix(t *testing.T) {
	g := NewGraph(GraphOptions{Users: 100})

	changed := g.Change(Changes{Rename: 20})

	require.Len(t, changed.Renamed, 20)
	for _, i := range changed.Renamed {
		upn := g.UPN(i)
		assert.False(t, strings.HasPrefix(upn, "u"), upn)
		assert.True(t, strings.HasSuffix(upn, "@contoso.onmicrosoft.com"), upn)
	}
}

func TestChangesWhileListingAreSafeAndEachListingHasEveryUserOnce(t *testing.T) {
	gs := newGraphServerWith(t, GraphOptions{Users: 4000, Realistic: true})
	stop := make(chan struct{})
	var changer sync.WaitGroup
	changer.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				gs.Change(Changes{Add: 3, Update: 5, Rename: 5, SoftDelete: 4, HardDelete: 1, Restore: 2})
				time.Sleep(time.Millisecond)
			}
		}
	})
	var listers sync.WaitGroup
	for _, filter := range []string{"", upnFilter("j"), "(accountEnabled eq true) and " + upnFilter("ma")} {
		listers.Go(func() {
			for range 3 {
				q := url.Values{"$select": {"id"}, "$top": {"150"}}
				if filter != "" {
					q.Set("$filter", filter)
				}
				ids := ids(t, gs.listAll(t, gs.srv.URL+"/v1.0/users?"+q.Encode()))
				seen := map[string]bool{}
				for _, id := range ids {
					assert.False(t, seen[id], "%s listed %s twice", filter, id)
					seen[id] = true
				}
			}
		})
	}
	listers.Wait()
	close(stop)
	changer.Wait()

	assert.Len(t, gs.listFiltered(t, upnFilter("j"), 999), gs.PrefixCounts(1)["j"], "when changes stop, listings agree with the tenant")
}
