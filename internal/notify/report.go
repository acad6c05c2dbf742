package notify

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"yubin/store"
)

// Reporter sends each domain's daily report: the messages scanning stopped
// in the 24 hours before the report time, to the domain's report address.
// A report is keyed by its day in the store, so it is sent once per day,
// also when the server was down at the report time (it goes out at the
// next start) — never twice.
type Reporter struct {
	n *Notifier
	daily
}

// NewReporter sends reports at hh:mm in loc every day.
func NewReporter(n *Notifier, at string, loc *time.Location) (*Reporter, error) {
	d, err := newDaily(at, loc)
	if err != nil {
		return nil, fmt.Errorf("report time %w", err)
	}
	return &Reporter{n: n, daily: d}, nil
}

// daily is a time of day, every day, in a time zone: when reports and
// digests go out.
type daily struct {
	hour, minute int
	loc          *time.Location
}

// newDaily parses "HH:MM" (loc nil: local time).
func newDaily(at string, loc *time.Location) (daily, error) {
	var h, m int
	if _, err := fmt.Sscanf(at, "%d:%d", &h, &m); err != nil || h < 0 || h > 23 || m < 0 || m > 59 || len(at) != 5 {
		return daily{}, fmt.Errorf("%q: want HH:MM", at)
	}
	if loc == nil {
		loc = time.Local
	}
	return daily{hour: h, minute: m, loc: loc}, nil
}

// on is the time on the day of t (in the time zone).
func (d daily) on(t time.Time) time.Time {
	t = t.In(d.loc)
	return time.Date(t.Year(), t.Month(), t.Day(), d.hour, d.minute, 0, 0, d.loc)
}

// last is the latest time at or before now.
func (d daily) last(now time.Time) time.Time {
	t := d.on(now)
	if t.After(now) {
		t = t.AddDate(0, 0, -1)
	}
	return t
}

// Next is the first time after now.
func (d daily) Next(now time.Time) time.Time { return d.last(now).AddDate(0, 0, 1) }

// run calls once with the time now, and again at every time of the day
// (and at least hourly, so that a changed clock or setting is noticed),
// until ctx ends; a failure or a panic is logged as what's.
func (d daily) run(ctx context.Context, n *Notifier, what string, once func(ctx context.Context, now time.Time) error) {
	for {
		func() {
			defer func() {
				if v := recover(); v != nil {
					n.log.Error(what+": panic", "panic", v)
				}
			}()
			if err := once(ctx, n.now()); err != nil {
				n.log.Error(what, "err", err)
			}
		}()
		wait := min(time.Until(d.Next(n.now())), time.Hour)
		t := time.NewTimer(max(wait, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// RunOnce sends every report that is due at now and not sent yet, and
// returns the domains it sent one for.
func (r *Reporter) RunOnce(ctx context.Context, now time.Time) ([]string, error) {
	at := r.last(now)
	domains, err := r.n.parentDomains(ctx)
	if err != nil {
		return nil, err
	}
	var sent []string
	for _, d := range domains {
		ok, err := r.send(ctx, d, at, "report/"+d+"/"+at.Format("2006-01-02"))
		if err != nil {
			return sent, fmt.Errorf("report for %s: %w", d, err)
		}
		if ok {
			sent = append(sent, d)
		}
	}
	return sent, nil
}

// parentDomains are the names of the parent domains: those with accounts
// and settings (a child's stops and held mail are its parent's accounts').
func (n *Notifier) parentDomains(ctx context.Context) ([]string, error) {
	all, err := n.st.Domains(ctx)
	var out []string
	for _, d := range all {
		if d.Parent == "" {
			out = append(out, d.Name)
		}
	}
	return out, err
}

// SendNow sends domain's report for the 24 hours before now, whatever was
// sent before (yubin report send). It reports whether a report went out
// (false: no report address, or warnings off).
func (r *Reporter) SendNow(ctx context.Context, domain string, now time.Time) (bool, error) {
	return r.send(ctx, domain, now, "")
}

func (r *Reporter) send(ctx context.Context, domain string, at time.Time, key string) (bool, error) {
	set, err := r.n.st.DomainSettings(ctx, domain)
	if err != nil {
		return false, err
	}
	if set.WarningsOff || set.ReportTo == "" {
		return false, nil
	}
	acct, ok := r.n.Allowed(ctx, set.ReportTo)
	if !ok {
		r.n.log.Warn("daily report not sent: the report address is not one of ours", "domain", domain, "to", set.ReportTo)
		return false, nil
	}
	stops, err := r.n.st.Stops(ctx, at.Add(-24*time.Hour), at, domain)
	if err != nil {
		return false, err
	}
	msg := r.build(acct, domain, at, stops, set.Language)
	d := store.Delivery{Recipients: []string{acct}, Message: msg}
	if key == "" {
		_, err := r.n.st.Deliver(ctx, d)
		return err == nil, err
	}
	sent, err := r.n.st.DeliverOnce(ctx, key, d)
	if sent {
		r.n.log.Info("daily report sent", "domain", domain, "to", acct, "stopped", len(stops))
	}
	return sent, err
}

// Run sends due reports now and then at every report time until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	r.run(ctx, r.n, "daily report", func(ctx context.Context, now time.Time) error {
		_, err := r.RunOnce(ctx, now)
		return err
	})
}

func (r *Reporter) build(account, domain string, at time.Time, stops []store.Stop, lang string) []byte {
	var body bytes.Buffer
	from := at.Add(-24 * time.Hour)
	if lang != "ja" {
		fmt.Fprintf(&body, "Daily virus check report for %s\n%s to %s\n\n", domain, from.Format("2006-01-02 15:04"), at.Format("2006-01-02 15:04 MST"))
		fmt.Fprintf(&body, "Messages stopped: %d\n\n", len(stops))
	}
	if lang != "en" {
		fmt.Fprintf(&body, "%s のウイルスチェック日次報告\n%s から %s まで\n\n", domain, from.Format("2006-01-02 15:04"), at.Format("2006-01-02 15:04 MST"))
		fmt.Fprintf(&body, "検出・処理したメール: %d 通\n\n", len(stops))
	}
	if len(stops) > 0 {
		tw := tabwriter.NewWriter(&body, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, pick(lang, "TIME", "日時")+"\t"+pick(lang, "DIRECTION", "方向")+"\t"+pick(lang, "SENDER", "送信者")+"\t"+
			pick(lang, "RECIPIENTS", "宛先")+"\t"+pick(lang, "REASON", "判断理由")+"\t"+pick(lang, "VIRUS", "ウイルス")+"\t"+pick(lang, "FILE", "ファイル")+"\t"+pick(lang, "ACTION", "処理"))
		for _, s := range stops {
			sender := s.Sender
			if sender == "" {
				sender = "<>"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Time.In(at.Location()).Format("01-02 15:04:05"), s.Direction, sender,
				strings.Join(s.Recipients, ","), strings.Join(s.Reasons, ","), dash(s.Virus), dash(s.File), s.Action)
		}
		tw.Flush()
	}
	subject := pick(lang, "Daily virus check report for "+domain, domain+" のウイルスチェック日次報告") + " " + at.Format("2006-01-02")
	return r.n.plainMail("Yubin Virus Check", account, subject, body.Bytes())
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
