package fakeazure

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var guidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestUserIDIsAStableLowercaseGUIDDistinctForEveryUser(t *testing.T) {
	const n = 200_000
	seen := make(map[string]int, n)
	for i := range n {
		id := UserID(i)
		require.Regexp(t, guidPattern, id, "user %d", i)
		if j, dup := seen[id]; dup {
			t.Fatalf("users %d and %d share id %s", j, i, id)
		}
		seen[id] = i
	}
	assert.Equal(t, UserID(42), UserID(42))
	assert.NotEqual(t, UserID(1)[:8], UserID(2)[:8], "neighbouring ids should look unrelated")
}

// keys returns the keys of a JSON object in the order they appear.
func keys(t *testing.T, obj []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(obj))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	var out []string
	for dec.More() {
		tok, err := dec.Token()
		require.NoError(t, err)
		out = append(out, tok.(string))
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	return out
}

func decodeUser(t *testing.T, i int, props ...string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(UserJSON(i, props), &m))
	return m
}

func TestUserJSONHoldsJustTheGivenPropertiesInOrder(t *testing.T) {
	assert.Equal(t, DefaultProperties, keys(t, UserJSON(7, DefaultProperties)))
	assert.Equal(t, []string{"id", "displayName"}, keys(t, UserJSON(7, []string{"id", "displayName"})))
	assert.Equal(t, []string{"mail"}, keys(t, UserJSON(7, []string{"MAIL", "noSuchProperty"})),
		"names match without case and unknown names are left out")
	assert.Equal(t, "{}", string(UserJSON(7, nil)))
}

func TestUserJSONValuesAreDeterministicAndGraphShaped(t *testing.T) {
	u := decodeUser(t, 42, DefaultProperties...)
	assert.Equal(t, UserID(42), u["id"])
	assert.Equal(t, "User 000042", u["displayName"])
	assert.Equal(t, "user000042@contoso.onmicrosoft.com", u["userPrincipalName"])
	assert.Equal(t, u["userPrincipalName"], u["mail"])
	assert.Equal(t, "en-US", u["preferredLanguage"])
	assert.Equal(t, []any{"+1 425 555 0142"}, u["businessPhones"])
	assert.Equal(t, UserJSON(42, DefaultProperties), UserJSON(42, DefaultProperties))

	assert.Equal(t, "User 1234567", decodeUser(t, 1234567, "displayName")["displayName"], "padding is a minimum")

	var emptyPhones, nullMobile, nullTitle bool
	for i := range 20 {
		u := decodeUser(t, i, DefaultProperties...)
		emptyPhones = emptyPhones || len(u["businessPhones"].([]any)) == 0
		nullMobile = nullMobile || u["mobilePhone"] == nil
		nullTitle = nullTitle || u["jobTitle"] == nil
		assert.NotEmpty(t, u["givenName"])
		assert.NotEmpty(t, u["surname"])
		assert.NotEmpty(t, u["officeLocation"])
	}
	assert.True(t, emptyPhones, "some user has no business phone")
	assert.True(t, nullMobile, "some user has a null mobilePhone")
	assert.True(t, nullTitle, "some user has a null jobTitle")
}

func TestUserJSONEscapesNamesThatNeedIt(t *testing.T) {
	raw := string(UserJSON(5, []string{"displayName"}))
	assert.Equal(t, `{"displayName":"Zo\u00eb \u00c5ngstr\u00f6m 000005"}`, raw)
	assert.Equal(t, "Zoë Ångström 000005", decodeUser(t, 5, "displayName")["displayName"])
	assert.Equal(t, `Dana "DJ" O'Neil 000011`, decodeUser(t, 11, "displayName")["displayName"])
}

func TestAppendJSONStringRoundTrips(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "tab\tnew\nline\rcr\x00nul\x7f",
		"é ü 李", "emoji 😀", "bad \xff utf-8", "</script>&"} {
		raw := appendJSONString(nil, s)
		for _, c := range raw {
			require.Less(t, c, byte(0x80), "output is ASCII: %q", raw)
		}
		var got string
		require.NoError(t, json.Unmarshal(raw, &got), "%s", raw)
		assert.Equal(t, strings.ToValidUTF8(s, "\ufffd"), got)
	}
}
