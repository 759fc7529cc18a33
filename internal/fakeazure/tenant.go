package fakeazure

import (
	"encoding/binary"
	"strconv"
	"strings"
	"time"
)

// DefaultProperties are the user properties Graph returns when a request has no $select, in
// Graph's order.
var DefaultProperties = []string{
	"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
	"officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id",
}

// property is one user property the fake tenant knows.
type property int

const (
	propBusinessPhones property = iota
	propDisplayName
	propGivenName
	propJobTitle
	propMail
	propMobilePhone
	propOfficeLocation
	propPreferredLanguage
	propSurname
	propUserPrincipalName
	propID
	propAccountEnabled
	propCreatedDateTime
	propDepartment
	propUserType
)

// propertyNames are the canonical names, indexed by property.
var propertyNames = [...]string{
	propBusinessPhones:    "businessPhones",
	propDisplayName:       "displayName",
	propGivenName:         "givenName",
	propJobTitle:          "jobTitle",
	propMail:              "mail",
	propMobilePhone:       "mobilePhone",
	propOfficeLocation:    "officeLocation",
	propPreferredLanguage: "preferredLanguage",
	propSurname:           "surname",
	propUserPrincipalName: "userPrincipalName",
	propID:                "id",
	propAccountEnabled:    "accountEnabled",
	propCreatedDateTime:   "createdDateTime",
	propDepartment:        "department",
	propUserType:          "userType",
}

// defaultProps is DefaultProperties as properties.
var defaultProps = []property{
	propBusinessPhones, propDisplayName, propGivenName, propJobTitle, propMail, propMobilePhone,
	propOfficeLocation, propPreferredLanguage, propSurname, propUserPrincipalName, propID,
}

// lookupProperty finds a property by name, ignoring case as Graph does.
func lookupProperty(name string) (property, bool) {
	for p, n := range propertyNames {
		if strings.EqualFold(n, name) {
			return property(p), true
		}
	}
	return 0, false
}

func (p property) String() string { return propertyNames[p] }

// Rotating values; the lists differ in length so neighbouring users differ in several fields.
var (
	givenNames  = []string{"Adele", "Alex", "Diego", "Grady", "Isaiah", "Johanna", "Lee", "Lidia", "Megan", "Nestor", "Patti"}
	surnames    = []string{"Vance", "Wilber", "Siciliani", "Archie", "Langer", "Lauer", "Gu", "Holloway", "Bowen", "Wilke", "Fernandez", "Gupta", "Sanchez"}
	jobTitles   = []string{"Product Manager", "Developer", "Marketing Assistant", "Retail Manager", "Attorney", "Sales Representative", "IT Admin"}
	offices     = []string{"18/2111", "131/1104", "20/1101", "12/1110"}
	departments = []string{"Sales", "Engineering", "Marketing", "Legal", "Finance", "Operations"}
	createdBase = time.Date(2020, time.January, 1, 0, 0, 0, 0, time.UTC)
)

// Users whose names exercise JSON encoding: every 16th user from 5 has non-ASCII letters, every
// 16th from 11 has double quotes that JSON must escape and a single quote that an OData literal
// must double.
const (
	nonASCIIEvery, nonASCIIAt = 16, 5
	quotedEvery, quotedAt     = 16, 11
)

// UserID returns the directory object id of user i (0-based): a lowercase GUID that looks random
// but is the same on every call, and differs for every non-negative i.
func UserID(i int) string { return string(appendUserID(nil, i)) }

// appendUserID appends UserID(i) to dst. Bytes 0-5 and 10-11 hold v, a bijection of i, which keeps
// ids distinct; the other bytes come from a second mix, with the version 4 and variant bits set.
func appendUserID(dst []byte, i int) []byte {
	v := mix64(uint64(i) + 0x9e3779b97f4a7c15) // the offset keeps user 0 from mapping to zero
	w := mix64(v ^ 0x5851f42d4c957f2d)
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], v)
	binary.BigEndian.PutUint64(b[8:16], w)
	b[10], b[11] = b[6], b[7]
	b[6] = 0x40 | byte(w>>40)&0x0f // w's bytes 2-3, which v's bytes displaced
	b[7] = byte(w >> 32)
	b[8] = 0x80 | b[8]&0x3f
	return appendGUID(dst, b)
}

// mix64 is the splitmix64 finalizer: a bijection on uint64 that scatters neighbouring inputs.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// appendGUID appends b in the 8-4-4-4-12 lowercase hex form.
func appendGUID(dst []byte, b [16]byte) []byte {
	const hex = "0123456789abcdef"
	for k, c := range b {
		if k == 4 || k == 6 || k == 8 || k == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hex[c>>4], hex[c&0x0f])
	}
	return dst
}

// UserJSON returns user i as the JSON object Graph would send, holding just props in the order
// given. Names match case-insensitively; names the fake tenant does not know are left out.
func UserJSON(i int, props []string) []byte {
	ps := make([]property, 0, len(props))
	for _, name := range props {
		if p, ok := lookupProperty(name); ok {
			ps = append(ps, p)
		}
	}
	return appendUser(nil, i, ps)
}

// appendUser appends user i as a JSON object holding props.
func appendUser(dst []byte, i int, props []property) []byte {
	dst = append(dst, '{')
	for k, p := range props {
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, p.String())
		dst = append(dst, ':')
		dst = appendValue(dst, i, p)
	}
	return append(dst, '}')
}

// appendValue appends the JSON value of property p of user i.
func appendValue(dst []byte, i int, p property) []byte {
	switch p {
	case propBusinessPhones:
		if i%5 == 4 {
			return append(dst, "[]"...)
		}
		dst = append(dst, `["+1 425 555 01`...)
		return append(appendPadded(dst, i%100, 2), `"]`...)
	case propDisplayName:
		var scratch [32]byte
		return appendJSONString(dst, string(appendDisplayName(scratch[:0], i)))
	case propGivenName:
		return appendJSONString(dst, givenName(i))
	case propJobTitle:
		if i%9 == 8 {
			return append(dst, "null"...)
		}
		return appendJSONString(dst, jobTitles[i%len(jobTitles)])
	case propMail, propUserPrincipalName:
		return append(appendUPN(append(dst, '"'), i), '"')
	case propMobilePhone:
		if i%3 == 0 {
			return append(dst, "null"...)
		}
		dst = append(dst, `"+1 206 555 `...)
		return append(appendPadded(dst, i%10000, 4), '"')
	case propOfficeLocation:
		return appendJSONString(dst, offices[i%len(offices)])
	case propPreferredLanguage:
		return append(dst, `"en-US"`...)
	case propSurname:
		return appendJSONString(dst, surname(i))
	case propID:
		return append(appendUserID(append(dst, '"'), i), '"')
	case propAccountEnabled:
		return strconv.AppendBool(dst, i%50 != 49)
	case propCreatedDateTime:
		dst = append(dst, '"')
		dst = createdBase.Add(time.Duration(i)*time.Hour).AppendFormat(dst, "2006-01-02T15:04:05Z")
		return append(dst, '"')
	case propDepartment:
		return appendJSONString(dst, departments[i%len(departments)])
	case propUserType:
		return append(dst, `"Member"`...)
	}
	return append(dst, "null"...)
}

// appendDisplayName appends user i's display name: "User 000042" for most users.
func appendDisplayName(dst []byte, i int) []byte {
	switch {
	case i%nonASCIIEvery == nonASCIIAt:
		dst = append(dst, "Zoë Ångström "...)
	case i%quotedEvery == quotedAt:
		dst = append(dst, `Dana "DJ" O'Neil `...)
	default:
		dst = append(dst, "User "...)
	}
	return appendPadded(dst, i, 6)
}

// appendUPN appends user i's userPrincipalName, which is also the user's mail. It is plain ASCII,
// so it needs no JSON escaping.
func appendUPN(dst []byte, i int) []byte {
	dst = appendPadded(append(dst, "user"...), i, 6)
	return append(dst, "@contoso.onmicrosoft.com"...)
}

func givenName(i int) string {
	switch {
	case i%nonASCIIEvery == nonASCIIAt:
		return "Zoë"
	case i%quotedEvery == quotedAt:
		return "Dana"
	}
	return givenNames[i%len(givenNames)]
}

func surname(i int) string {
	switch {
	case i%nonASCIIEvery == nonASCIIAt:
		return "Ångström"
	case i%quotedEvery == quotedAt:
		return "O'Neil"
	}
	return surnames[i%len(surnames)]
}

// appendPadded appends n in decimal, zero-padded to at least width digits.
func appendPadded(dst []byte, n, width int) []byte {
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], int64(n), 10)
	for k := len(d); k < width; k++ {
		dst = append(dst, '0')
	}
	return append(dst, d...)
}
