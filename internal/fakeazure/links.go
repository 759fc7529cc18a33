package fakeazure

// SkipToken is the page token of the page that starts at user offset, as
// the fake Graph writes it into @odata.nextLink, so that a test can make a
// link that leads back, or ahead, on purpose.
func SkipToken(offset int) string { return encodeSkipToken(offset) }
