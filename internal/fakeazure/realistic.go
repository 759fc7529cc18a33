package fakeazure

import (
	"strconv"
)

// The realistic tenant (GraphOptions.Realistic) names its users as a real directory does, so that
// a listing split by userPrincipalName prefix meets the skew it would meet in production:
//
//   - most UPNs are "given.surname" with a number when the pair repeats, such as
//     adele.vance17@contoso.com; about one in ten is capitalized, Adele.Vance17@contoso.com;
//   - first letters follow first names: j and m lead with about 11 % and 10 % of users, the
//     largest two-letter prefix (ma) holds about 4.6 %, q, x and z are rare;
//   - about 5 % are guests, adele.vance17_fabrikam.com#EXT#@contoso.onmicrosoft.com;
//   - about 1 % begin with a digit (employee numbers; 7 is rare), and about 0.3 % with one of
//     the punctuation marks a UPN allows (' . - _ ! # ^ ~), as service accounts do.
//
// User i is computed from i alone. Indexes come in blocks of 65,536; within a block a keyed
// permutation deals each index one slot of a fixed table in which every name, digit and
// punctuation mark holds slots in proportion to its weight. A full block therefore holds the
// table's distribution exactly, neighbouring indexes get unrelated names (so the first page of
// an unfiltered listing is a fair sample), and a user's ordinal among the users of its slot's
// entry, which numbers the repeats, makes every UPN unique, also when case is ignored.

const (
	realBlockBits = 16
	realBlock     = 1 << realBlockBits
	// Slots held by users whose UPN begins with a digit or a punctuation mark; names hold the rest.
	realDigitSlots = 655 // 1.0 %
	realPunctSlots = 197 // 0.3 %

	realMemberDomain = "@contoso.com"
	realGuestDomain  = "#EXT#@contoso.onmicrosoft.com"
)

// weighted is one entry of a slot table: the text a UPN begins with and its weight.
type weighted struct {
	text   string
	weight int
}

// realGivenNames are lowercase first names with weights that give real first-letter frequencies.
var realGivenNames = []weighted{
	// j: 11 %
	{"james", 210}, {"jason", 90}, {"jacob", 55}, {"jack", 30}, {"jasmine", 15},
	{"john", 200}, {"joseph", 85}, {"joshua", 55}, {"jonathan", 40}, {"jose", 30}, {"joan", 10},
	{"jennifer", 100}, {"jeffrey", 45}, {"jessica", 35},
	{"julie", 25}, {"justin", 25}, {"julia", 10}, {"jill", 10},
	// m: 10 %, and the largest two-letter prefix, ma
	{"mary", 110}, {"mark", 95}, {"matthew", 90}, {"maria", 75}, {"margaret", 40}, {"martin", 28}, {"marcus", 12},
	{"michael", 230}, {"michelle", 55}, {"miguel", 20}, {"mia", 20},
	{"megan", 55}, {"melissa", 55}, {"mohammed", 30}, {"monica", 20}, {"muhammad", 20}, {"mya", 5},
	// a: 8 %
	{"andrew", 90}, {"anthony", 80}, {"angela", 50}, {"anna", 40}, {"ana", 20},
	{"amanda", 60}, {"amy", 40}, {"alex", 60}, {"alice", 40}, {"alan", 30}, {"adele", 40}, {"adam", 50},
	{"arthur", 30}, {"aria", 20}, {"ashley", 45}, {"aisha", 20}, {"abigail", 30}, {"ahmed", 30}, {"aaron", 35},
	// d: 6.5 %
	{"david", 230}, {"daniel", 120}, {"deborah", 50}, {"dennis", 40}, {"diego", 40}, {"diana", 40},
	{"donald", 40}, {"dorothy", 30}, {"dylan", 40},
	// c: 6 %
	{"christopher", 130}, {"charles", 80}, {"christine", 40}, {"chloe", 30}, {"charlotte", 30},
	{"carol", 50}, {"catherine", 40}, {"carlos", 40}, {"cameron", 30}, {"claire", 30}, {"clara", 20},
	{"connor", 30}, {"cody", 20}, {"cynthia", 20}, {"craig", 20},
	// s: 6.5 %
	{"sarah", 120}, {"samuel", 50}, {"sandra", 50}, {"steven", 80}, {"stephanie", 70}, {"stella", 40},
	{"sharon", 50}, {"shawn", 40}, {"sean", 40}, {"sophia", 40}, {"susan", 50}, {"simon", 20},
	// r: 6 %
	{"robert", 220}, {"ronald", 60}, {"richard", 110}, {"rita", 20}, {"rachel", 50}, {"raj", 30},
	{"rebecca", 50}, {"ryan", 40},
	// k: 5 %
	{"karen", 70}, {"kate", 40}, {"kayla", 40}, {"katherine", 50}, {"kevin", 90}, {"kenneth", 60},
	{"kimberly", 70}, {"kyle", 30}, {"kristen", 30}, {"khalid", 20},
	// l: 5 %
	{"linda", 70}, {"lisa", 40}, {"lidia", 20}, {"liam", 50}, {"laura", 60}, {"lauren", 40}, {"larry", 20},
	{"lee", 40}, {"leah", 40}, {"louis", 30}, {"logan", 20}, {"lucas", 30}, {"lucy", 20}, {"lynn", 20},
	// b: 4.5 %
	{"brian", 90}, {"brandon", 50}, {"brenda", 40}, {"bradley", 30}, {"bruce", 20}, {"barbara", 60},
	{"betty", 30}, {"benjamin", 50}, {"bianca", 20}, {"bill", 30}, {"bobby", 30},
	// t: 4.5 %
	{"thomas", 120}, {"theresa", 30}, {"timothy", 60}, {"tiffany", 50}, {"tanya", 30}, {"tara", 30},
	{"tony", 30}, {"tom", 30}, {"tyler", 40}, {"travis", 30},
	// e: 4.5 %
	{"elizabeth", 90}, {"ella", 30}, {"elena", 20}, {"eleanor", 40}, {"emily", 60}, {"emma", 20},
	{"eric", 60}, {"ethan", 60}, {"edward", 40}, {"evan", 30},
	// the rest
	{"gregory", 40}, {"grady", 20}, {"grace", 20}, {"gary", 50}, {"gabriel", 50}, {"gavin", 20},
	{"george", 50}, {"gloria", 30}, {"gina", 20},
	{"henry", 40}, {"helen", 40}, {"hector", 30}, {"hiroshi", 30}, {"hannah", 40}, {"harold", 30},
	{"howard", 20}, {"hugo", 30},
	{"patricia", 70}, {"pamela", 40}, {"patti", 20}, {"paul", 60}, {"peter", 50}, {"philip", 30}, {"priya", 20},
	{"nancy", 40}, {"naomi", 40}, {"nathan", 40}, {"nicole", 50}, {"nicholas", 40}, {"nestor", 20}, {"neil", 20},
	{"victoria", 30}, {"vincent", 30}, {"vanessa", 40}, {"valerie", 40},
	{"william", 100}, {"wei", 50}, {"walter", 30}, {"wendy", 20},
	{"frank", 50}, {"frances", 30}, {"fatima", 40}, {"felix", 20},
	{"isaiah", 40}, {"isabella", 40}, {"irene", 20}, {"ivan", 20},
	{"olivia", 30}, {"omar", 40}, {"oscar", 20},
	{"yuki", 15}, {"yusuf", 30}, {"yasmin", 15},
	{"uma", 10}, {"usman", 10},
	{"quinn", 8},
	{"xavier", 6},
	{"zachary", 6}, {"zoe", 6},
}

// realSurnames are surnames as displayed and as written in a UPN. None contains a dot or a digit,
// which keeps "given.surname<n>" unambiguous.
var realSurnames = [...]struct{ display, ascii string }{
	{"Vance", "vance"}, {"Wilber", "wilber"}, {"Siciliani", "siciliani"}, {"Archie", "archie"},
	{"Langer", "langer"}, {"Lauer", "lauer"}, {"Gu", "gu"}, {"Holloway", "holloway"}, {"Bowen", "bowen"},
	{"Wilke", "wilke"}, {"Fernandez", "fernandez"}, {"Gupta", "gupta"}, {"Sanchez", "sanchez"},
	{"Smith", "smith"}, {"Johnson", "johnson"}, {"Williams", "williams"}, {"Brown", "brown"},
	{"Jones", "jones"}, {"Garcia", "garcia"}, {"Miller", "miller"}, {"Davis", "davis"},
	{"Rodriguez", "rodriguez"}, {"Martinez", "martinez"}, {"Hernandez", "hernandez"}, {"Lopez", "lopez"},
	{"Gonzalez", "gonzalez"}, {"Wilson", "wilson"}, {"Anderson", "anderson"}, {"Thomas", "thomas"},
	{"Taylor", "taylor"}, {"Moore", "moore"}, {"Jackson", "jackson"}, {"Martin", "martin"},
	{"Lee", "lee"}, {"Perez", "perez"}, {"Thompson", "thompson"}, {"White", "white"},
	{"Harris", "harris"}, {"Clark", "clark"}, {"Ramirez", "ramirez"}, {"Lewis", "lewis"},
	{"Robinson", "robinson"}, {"Walker", "walker"}, {"Young", "young"}, {"Allen", "allen"},
	{"King", "king"}, {"Wright", "wright"}, {"Scott", "scott"}, {"Torres", "torres"},
	{"Nguyen", "nguyen"}, {"Hill", "hill"}, {"Flores", "flores"}, {"Green", "green"},
	{"Adams", "adams"}, {"Nelson", "nelson"}, {"Baker", "baker"}, {"Hall", "hall"},
	{"Rivera", "rivera"}, {"Campbell", "campbell"}, {"Mitchell", "mitchell"}, {"Carter", "carter"},
	{"Roberts", "roberts"}, {"Chen", "chen"}, {"Wang", "wang"}, {"Kim", "kim"}, {"Patel", "patel"},
	{"Singh", "singh"}, {"Kumar", "kumar"}, {"Sato", "sato"}, {"Suzuki", "suzuki"}, {"Tanaka", "tanaka"},
	{"Cohen", "cohen"}, {"Murphy", "murphy"}, {"Kelly", "kelly"}, {"Sullivan", "sullivan"},
	{"Novak", "novak"}, {"Kowalski", "kowalski"}, {"Andersson", "andersson"}, {"Larsen", "larsen"},
	{"Virtanen", "virtanen"}, {"Rossi", "rossi"}, {"Russo", "russo"}, {"Silva", "silva"},
	{"Santos", "santos"}, {"Costa", "costa"}, {"Dubois", "dubois"}, {"Moreau", "moreau"},
	{"Fischer", "fischer"}, {"Weber", "weber"}, {"Schneider", "schneider"}, {"Meyer", "meyer"},
	{"Van Dijk", "vandijk"}, {"De Vries", "devries"}, {"Ivanova", "ivanova"}, {"Petrov", "petrov"},
	{"Mensah", "mensah"}, {"Okafor", "okafor"}, {"Haddad", "haddad"}, {"Khan", "khan"},
	{"Ali", "ali"}, {"Yilmaz", "yilmaz"}, {"Papadopoulos", "papadopoulos"}, {"Horvat", "horvat"},
	{"Smith-Jones", "smith-jones"}, {"Parker", "parker"}, {"Evans", "evans"}, {"Edwards", "edwards"},
	{"Collins", "collins"}, {"Stewart", "stewart"}, {"Morris", "morris"}, {"Rogers", "rogers"},
	{"Reed", "reed"}, {"Cook", "cook"}, {"Morgan", "morgan"}, {"Bell", "bell"}, {"Cooper", "cooper"},
	{"Richardson", "richardson"}, {"Cox", "cox"}, {"Howard", "howard"}, {"Ward", "ward"},
	{"Peterson", "peterson"}, {"Gray", "gray"}, {"James", "james"}, {"Watson", "watson"},
	{"Brooks", "brooks"}, {"Bennett", "bennett"}, {"Wood", "wood"}, {"Barnes", "barnes"},
	{"Ross", "ross"}, {"Henderson", "henderson"}, {"Coleman", "coleman"}, {"Jenkins", "jenkins"},
	{"Perry", "perry"}, {"Powell", "powell"}, {"Long", "long"}, {"Patterson", "patterson"},
	{"Hughes", "hughes"}, {"Price", "price"}, {"Myers", "myers"}, {"Ford", "ford"},
	{"Hamilton", "hamilton"}, {"Graham", "graham"}, {"Sims", "sims"}, {"Wallace", "wallace"},
	{"Müller", "muller"}, {"Gárdonyi", "gardonyi"}, {"O'Neil", "oneil"}, {"Ångström", "angstrom"},
	{"Trần", "tran"}, {"Łukasiewicz", "lukasiewicz"}, {"Søndergaard", "sondergaard"},
	{"D'Angelo", "dangelo"}, {"Núñez", "nunez"}, {"Çelik", "celik"},
}

// realDigits weight the first digit of employee-number UPNs; 7 is rare, as numbering plans that
// skip a digit make it.
var realDigits = []weighted{
	{"1", 160}, {"2", 130}, {"3", 90}, {"4", 70}, {"5", 60}, {"6", 50}, {"7", 8}, {"8", 45}, {"9", 40}, {"0", 2},
}

// realPunct weight the punctuation marks service accounts begin with.
var realPunct = []weighted{
	{"_", 70}, {"#", 25}, {"-", 25}, {"~", 20}, {".", 15}, {"!", 15}, {"^", 10}, {"'", 17},
}

// realServiceWords are the names after a service account's first mark; none ends with a digit.
var realServiceWords = [...]string{
	"svc-backup", "ops.alerts", "admin", "temp", "build", "scanner", "noreply", "sync", "breakglass",
	"svc-print", "room.boardroom", "kiosk", "test", "monitoring", "helpdesk",
}

var realGuestDomains = [...]string{
	"fabrikam.com", "gmail.com", "outlook.com", "northwindtraders.com", "adatum.com", "litwareinc.com",
	"tailspintoys.com", "wingtiptoys.com",
}

const (
	realKindName = iota
	realKindDigit
	realKindPunct
)

// realEntry is one entry of the slot table.
type realEntry struct {
	kind    uint8
	text    string // lowercase name, digit or mark
	display string // name as displayed (names only)
	slots   int    // slots it holds in each block
}

// realTable is the slot table: entries, and for each slot its entry and its ordinal within it.
var realTable = buildRealTable()

type realSlotTable struct {
	entries []realEntry
	entry   [realBlock]uint16
	ordinal [realBlock]uint16
}

func buildRealTable() *realSlotTable {
	t := &realSlotTable{}
	add := func(kind uint8, ws []weighted, slots int) {
		for k, n := range apportion(ws, slots) {
			e := realEntry{kind: kind, text: ws[k].text, slots: n}
			if kind == realKindName {
				e.display = capitalize(ws[k].text)
			}
			t.entries = append(t.entries, e)
		}
	}
	add(realKindName, realGivenNames, realBlock-realDigitSlots-realPunctSlots)
	add(realKindDigit, realDigits, realDigitSlots)
	add(realKindPunct, realPunct, realPunctSlots)
	s := 0
	for k, e := range t.entries {
		for j := range e.slots {
			t.entry[s], t.ordinal[s] = uint16(k), uint16(j)
			s++
		}
	}
	if s != realBlock {
		panic("fakeazure: realistic slot table does not fill a block")
	}
	return t
}

// apportion splits slots among ws in proportion to their weights, by largest remainder, giving
// every entry at least one slot.
func apportion(ws []weighted, slots int) []int {
	total := 0
	for _, w := range ws {
		total += w.weight
	}
	out := make([]int, len(ws))
	rem := make([]int, len(ws))
	given := 0
	for k, w := range ws {
		out[k] = max(1, w.weight*slots/total)
		rem[k] = w.weight * slots % total
		given += out[k]
	}
	for given < slots {
		best := 0
		for k := range rem {
			if rem[k] > rem[best] {
				best = k
			}
		}
		out[best]++
		rem[best] = -1
		given++
	}
	for given > slots { // only when the minimum of one slot overshot: take from the largest
		best := 0
		for k := range out {
			if out[k] > out[best] {
				best = k
			}
		}
		out[best]--
		given--
	}
	return out
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// realUser is what the realistic tenant derives from an index.
type realUser struct {
	e *realEntry
	q int    // ordinal of the user among the users of its entry
	h uint64 // bits for the user's other traits
}

func realisticUser(i int) realUser {
	block, x := uint64(i)>>realBlockBits, uint32(i)&(realBlock-1)
	s := permute16(block, x)
	e := &realTable.entries[realTable.entry[s]]
	return realUser{e: e, q: int(block)*e.slots + int(realTable.ordinal[s]), h: mix64(uint64(i) ^ 0x2545f4914f6cdd1d)}
}

// permute16 is a bijection on 16 bits keyed by key: a four-round Feistel network.
func permute16(key uint64, x uint32) uint32 {
	l, r := x>>8, x&0xff
	for round := range uint64(4) {
		f := uint32(mix64(key*0x9e3779b97f4a7c15^round<<56^uint64(r))) & 0xff
		l, r = r, l^f
	}
	return l<<8 | r
}

func (u realUser) guest() bool    { return u.e.kind == realKindName && u.h%1000 < 51 }
func (u realUser) mixed() bool    { return u.e.kind == realKindName && u.h>>10%100 < 10 }
func (u realUser) disabled() bool { return u.h>>20%100 < 4 }

func (u realUser) surname() (display, ascii string) {
	s := &realSurnames[u.q%len(realSurnames)]
	return s.display, s.ascii
}

// repeat numbers a "given.surname" pair after its first use: 0 for none.
func (u realUser) repeat() int { return u.q / len(realSurnames) }

func (u realUser) guestDomain() string {
	return realGuestDomains[u.h>>32%uint64(len(realGuestDomains))]
}

// appendLocal appends the name part of a member's UPN, or of a guest's mail: adele.vance17.
func (u realUser) appendLocal(dst []byte, mixed bool) []byte {
	switch u.e.kind {
	case realKindDigit:
		return appendPadded(append(dst, u.e.text...), u.q, 6)
	case realKindPunct:
		dst = append(dst, u.e.text...)
		dst = append(dst, realServiceWords[u.q%len(realServiceWords)]...)
		if n := u.q / len(realServiceWords); n > 0 {
			dst = strconv.AppendInt(dst, int64(n+1), 10)
		}
		return dst
	}
	_, sur := u.surname()
	start := len(dst)
	dst = append(append(append(dst, u.e.text...), '.'), sur...)
	if mixed {
		dst[start] -= 'a' - 'A'
		if c := &dst[start+len(u.e.text)+1]; *c >= 'a' && *c <= 'z' {
			*c -= 'a' - 'A'
		}
	}
	if n := u.repeat(); n > 0 {
		dst = strconv.AppendInt(dst, int64(n+1), 10)
	}
	return dst
}

// appendUPN appends the user's userPrincipalName.
func (u realUser) appendUPN(dst []byte) []byte {
	dst = u.appendLocal(dst, u.mixed())
	if u.guest() {
		dst = append(append(append(dst, '_'), u.guestDomain()...), realGuestDomain...)
		return dst
	}
	return append(dst, realMemberDomain...)
}

// appendDisplayName appends the name people see: "Adele Vance", or the account's name for a
// service account.
func (u realUser) appendDisplayName(dst []byte) []byte {
	if u.e.kind == realKindPunct {
		return u.appendLocal(dst, false)
	}
	given, sur := u.names()
	return append(append(append(dst, given...), ' '), sur...)
}

// names are the user's given name and surname as displayed; an employee-number account has a
// person's name too, and a service account has none.
func (u realUser) names() (given, surname string) {
	switch u.e.kind {
	case realKindPunct:
		return "", ""
	case realKindDigit:
		// Any name will do: the UPN does not carry it.
		g := &realTable.entries[u.h>>40%uint64(len(realGivenNames))]
		s := &realSurnames[u.h>>48%uint64(len(realSurnames))]
		return g.display, s.display
	}
	display, _ := u.surname()
	return u.e.display, display
}

// appendRealValue appends the JSON value of property p of user i in the realistic tenant.
func appendRealValue(dst []byte, i int, p property) []byte {
	u := realisticUser(i)
	switch p {
	case propDisplayName:
		var scratch [64]byte
		return appendJSONString(dst, string(u.appendDisplayName(scratch[:0])))
	case propGivenName, propSurname:
		given, sur := u.names()
		v := given
		if p == propSurname {
			v = sur
		}
		if v == "" {
			return append(dst, "null"...)
		}
		return appendJSONString(dst, v)
	case propUserPrincipalName:
		return append(u.appendUPN(append(dst, '"')), '"')
	case propMail:
		switch {
		case u.e.kind == realKindPunct:
			return append(dst, "null"...)
		case u.guest():
			dst = u.appendLocal(append(dst, '"'), false)
			return append(append(append(dst, '@'), u.guestDomain()...), '"')
		}
		return append(u.appendUPN(append(dst, '"')), '"')
	case propAccountEnabled:
		if u.disabled() {
			return append(dst, "false"...)
		}
		return append(dst, "true"...)
	case propUserType:
		if u.guest() {
			return append(dst, `"Guest"`...)
		}
		return append(dst, `"Member"`...)
	case propJobTitle, propDepartment, propOfficeLocation, propBusinessPhones, propMobilePhone:
		if u.guest() || u.e.kind == realKindPunct {
			if p == propBusinessPhones {
				return append(dst, "[]"...)
			}
			return append(dst, "null"...)
		}
	}
	return appendValue(dst, i, p)
}

// RealisticUPN returns the userPrincipalName of user i (0-based) of the realistic tenant, as it
// was created: a Graph may have renamed the user since (see Graph.UPN).
func RealisticUPN(i int) string {
	var scratch [96]byte
	return string(realisticUser(i).appendUPN(scratch[:0]))
}
