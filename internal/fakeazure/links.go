package fakeazure

// SkipToken is the page token of the page that starts at user offset and is
// page (from 0) of its listing, as the fake Graph writes it into
// @odata.nextLink, so that a test can make a link that leads back, or ahead,
// on purpose.
func SkipToken(offset, page int) string { return encodeSkipToken(offset, page) }
