package mailheader

// ParseAll is parseAll for the tests: the summary without filterFields.
var ParseAll = parseAll
