package admin

import (
	"context"
	"strings"
	"time"

	"yubin/internal/notify"
	"yubin/store"
)

// DomainSettings are a domain's settings as the admin sees them.
type DomainSettings struct {
	Domain   string `json:"domain"`
	Warnings bool   `json:"warnings"` // warning mails, the daily report and the quarantine digest on
	Language string `json:"language"` // en, ja or both
	ReportTo string `json:"report_to,omitempty"`
	// SpamRejectScore refuses mail from port 25 whose spam score reaches
	// it for every recipient (0 = off).
	SpamRejectScore float64 `json:"spam_reject_score"`
}

// SettingsChange changes the fields that are not nil.
type SettingsChange struct {
	Warnings *bool   `json:"warnings,omitempty"`
	Language *string `json:"language,omitempty"`
	ReportTo *string `json:"report_to,omitempty"`
	// SpamRejectScore is "off" or a score above the default spam
	// threshold and at most 1.
	SpamRejectScore *string `json:"spam_reject_score,omitempty"`
}

// ReportResult says what "report send" did.
type ReportResult struct {
	Domain string `json:"domain"`
	Sent   bool   `json:"sent"`
	To     string `json:"to,omitempty"`
	Why    string `json:"why,omitempty"` // when not sent
}

// SetReporter lets the Service send reports (report send).
func (s *Service) SetReporter(r *notify.Reporter) { s.reporter = r }

func view(domain string, ds store.DomainSettings) DomainSettings {
	lang := ds.Language
	if lang == "" {
		lang = "both"
	}
	return DomainSettings{Domain: domain, Warnings: !ds.WarningsOff, Language: lang, ReportTo: ds.ReportTo, SpamRejectScore: ds.SpamRejectScore}
}

// parentDomain checks name and returns it with its domain record; a
// child domain is an error: its settings are its parent's.
func (s *Service) parentDomain(ctx context.Context, name string) (store.Domain, error) {
	return s.parentDomainFor(ctx, name, "it follows %[2]s's settings")
}

// parentDomainFor is parentDomain with why, for a child domain, saying
// what to do instead: a format with the child as %[1]s, the parent %[2]s.
func (s *Service) parentDomainFor(ctx context.Context, name, why string) (store.Domain, error) {
	n, err := parseDomain("domain", name)
	if err != nil {
		return store.Domain{}, err
	}
	d, err := s.st.Domain(ctx, n)
	if err != nil {
		return d, errorf(store.ErrNoSuchDomain, "unknown domain %s", n)
	}
	if d.Parent != "" {
		return d, errorf(store.ErrInvalid, "%[1]s is a child domain of %[2]s: "+why, n, d.Parent)
	}
	return d, nil
}

// DomainSettings returns a parent domain's settings.
func (s *Service) DomainSettings(ctx context.Context, domain string) (DomainSettings, error) {
	d, err := s.parentDomain(ctx, domain)
	if err != nil {
		return DomainSettings{}, err
	}
	ds, err := s.st.DomainSettings(ctx, d.Name)
	if err != nil {
		return DomainSettings{}, translate(err)
	}
	return view(d.Name, ds), nil
}

// UpdateDomainSettings changes the fields of a parent domain's settings
// that are set in ch.
func (s *Service) UpdateDomainSettings(ctx context.Context, domain string, ch SettingsChange) (DomainSettings, error) {
	d, err := s.parentDomain(ctx, domain)
	if err != nil {
		return DomainSettings{}, err
	}
	ds, err := s.st.DomainSettings(ctx, d.Name)
	if err != nil {
		return DomainSettings{}, translate(err)
	}
	if ch.Warnings != nil {
		ds.WarningsOff = !*ch.Warnings
	}
	if ch.Language != nil {
		switch l := strings.ToLower(*ch.Language); l {
		case "en", "ja", "both":
			ds.Language = l
		default:
			return DomainSettings{}, errorf(store.ErrInvalid, "language must be en, ja or both, not %q", *ch.Language)
		}
	}
	if ch.ReportTo != nil {
		to := strings.TrimSpace(*ch.ReportTo)
		if to != "" {
			a, err := parseAddress(to)
			if err != nil {
				return DomainSettings{}, err
			}
			rd, err := s.st.Domain(ctx, a.Domain)
			if err != nil || (rd.Name != d.Name && rd.Parent != d.Name) {
				return DomainSettings{}, errorf(store.ErrInvalid, "the report address %s must be on %s or one of its child domains", a, d.Name)
			}
			if _, err := s.st.Resolve(ctx, a.String()); err != nil {
				return DomainSettings{}, errorf(store.ErrNoSuchAccount, "no account receives mail for %s", a)
			}
			to = a.String()
		}
		ds.ReportTo = to
	}
	if ch.SpamRejectScore != nil {
		if ds.SpamRejectScore, err = parseRejectScore(*ch.SpamRejectScore); err != nil {
			return DomainSettings{}, err
		}
	}
	if err := s.st.SetDomainSettings(ctx, d.Name, ds); err != nil {
		return DomainSettings{}, translate(err)
	}
	return view(d.Name, ds), nil
}

// SendReport sends the domain's report for the last 24 hours now.
func (s *Service) SendReport(ctx context.Context, domain string) (ReportResult, error) {
	d, err := s.parentDomain(ctx, domain)
	if err != nil {
		return ReportResult{}, err
	}
	ds, err := s.st.DomainSettings(ctx, d.Name)
	if err != nil {
		return ReportResult{}, translate(err)
	}
	res := ReportResult{Domain: d.Name, To: ds.ReportTo}
	switch {
	case ds.ReportTo == "":
		return res, errorf(store.ErrInvalid, "%s has no report address (yubin report set %s ADDRESS)", d.Name, d.Name)
	case ds.WarningsOff:
		return res, errorf(store.ErrInvalid, "warnings are off for %s (yubin warnings on %s)", d.Name, d.Name)
	case s.reporter == nil:
		return res, errorf(nil, "this yubin cannot send reports (no reporter configured)")
	}
	sent, err := s.reporter.SendNow(ctx, d.Name, time.Now())
	if err != nil {
		return res, translate(err)
	}
	res.Sent = sent
	if !sent {
		res.Why = "the report address is not one of our accounts"
	}
	return res, nil
}
