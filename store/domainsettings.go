package store

// DomainSettings are a domain's warning-mail settings.
type DomainSettings struct {
	// WarningsOff stops warning mails and the daily report for the domain
	// (warnings are on by default).
	WarningsOff bool `json:"warnings_off,omitempty"`
	// Language of warning mails: "en", "ja" or "both" ("" = both).
	Language string `json:"language,omitempty"`
	// ReportTo receives the daily report ("" = no report): an address on
	// the domain or one of its children.
	ReportTo string `json:"report_to,omitempty"`
}
