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
	// SpamRejectScore refuses mail from port 25 at the end of DATA
	// (550 5.7.1) whose spam score is at least this for every recipient
	// on the domain; 0 = never.
	SpamRejectScore float64 `json:"spam_reject_score,omitempty"`
}
