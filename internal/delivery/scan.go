package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"yubin/internal/notify"
	"yubin/scan"
	"yubin/store"
)

// ScanStage scans every message (SPEC section 4) and acts on the verdict:
// on submission it refuses anything infected or over a limit; on port 25
// it decides per recipient account, by the account's policy, between
// delivering (clean or unchecked), delivering with infected attachments
// stripped, and discarding with a report — and refuses the transaction
// when every recipient's outcome is a discard.
type ScanStage struct {
	Scanner  *scan.Scanner
	Store    store.Directory // the recipients' scan policies
	Notifier *notify.Notifier
	Log      *slog.Logger // may be nil
	// Metrics, if set, gets the time each scan took.
	Metrics Metrics
}

// Name implements Stage.
func (s *ScanStage) Name() string { return "scan" }

// Process implements Stage.
//
// A verdict header that came with the message was removed when it came in
// (smtpd, mailheader.StripOwned), so the only one is ours.
func (s *ScanStage) Process(ctx context.Context, m *Message) error {
	t0 := time.Now()
	raw, v, err := s.scan(ctx, m)
	if s.Metrics != nil {
		s.Metrics.ScanDuration(time.Since(t0))
	}
	if err != nil {
		m.Verdict = "scan-failed"
		return replyReject(scan.ReplyTempFail, err)
	}
	m.Verdict = v.HeaderValue()
	if m.Env.Source == Submission {
		return s.submission(ctx, m, v)
	}
	return s.inbound(ctx, m, v, raw)
}

// scan scans the whole message and returns it with the verdict. A
// message in a spool file is read into memory only when it is within the
// scanner's size limit (the scanner and Strip work on memory); over it,
// the verdict is oversize without reading it, and the message returned is
// its header section.
func (s *ScanStage) scan(ctx context.Context, m *Message) ([]byte, *scan.Verdict, error) {
	if m.Tail != nil && s.Scanner.Limits().TooLarge(m.Size()) {
		v, err := s.Scanner.ScanReader(ctx, m.Reader())
		return m.Raw, v, err
	}
	raw, err := m.ReadAll()
	if err != nil {
		return nil, nil, err
	}
	v, err := s.Scanner.Scan(ctx, raw)
	return raw, v, err
}

func (s *ScanStage) submission(ctx context.Context, m *Message, v *scan.Verdict) error {
	var pol store.ScanPolicy
	if a, err := s.Store.Account(ctx, m.Env.AuthUser); err == nil {
		pol = a.Scan.Effective()
	}
	reply, ok := v.Submission(scan.Disposition(pol.Encrypted))
	if ok {
		m.PrependHeader(scan.HeaderName + ": " + v.HeaderValue())
		return nil
	}
	// Nothing infected leaves; the record feeds the warnings and reports.
	findings := blocking(v)
	m.Stops = append(m.Stops, s.stop(m, "outbound", "rejected", findings, m.Env.Recipients))
	ev := s.event(m, notify.OutboundRejected, findings, notify.HeaderSection(m.Raw))
	if _, err := s.Notifier.WarnOutbound(ctx, m.Env.AuthUser, m.AllRecipients(), ev); err != nil {
		s.logWarnFailure(m, err)
	}
	return replyReject(reply, nil)
}

// inbound decides per recipient; raw is the whole message as scanned
// (Strip cuts parts out of it).
func (s *ScanStage) inbound(ctx context.Context, m *Message, v *scan.Verdict, raw []byte) error {
	if len(m.Remote) > 0 {
		// A bounce on its way back to a remote sender (SRS): we relay it,
		// so nothing infected goes, as on submission.
		if reply, ok := v.Submission(scan.Accept); !ok {
			m.Stops = nil
			return replyReject(reply, nil)
		}
		if len(m.Local) == 0 {
			m.PrependHeader(scan.HeaderName + ": " + v.HeaderValue())
			return nil
		}
	}
	headers := notify.HeaderSection(raw)
	var discarded, stripped []string
	var discardDecision scan.Decision
	var stripDecision scan.Decision
	// Recipients stripped of the same parts share one stripped body; the
	// verdict header goes on top of each recipient's own header fields.
	var stripCache map[string]*Body
	for _, r := range m.Local {
		var pol store.ScanPolicy
		if a, err := s.Store.Account(ctx, r.Account); err == nil {
			pol = a.Scan
		}
		d := v.Inbound(toScanPolicy(pol))
		switch d.Action {
		case scan.Deliver:
			r.Header = verdictField(d.Header, r.Header)
		case scan.DeliverStripped:
			if stripCache == nil {
				stripCache = map[string]*Body{}
			}
			key := fmt.Sprint(d.Strip)
			body, ok := stripCache[key]
			if !ok {
				out, err := scan.Strip(raw, d.Strip)
				if err != nil {
					// Cannot remove the part cleanly: discard instead.
					r.Drop, r.Why = true, "discarded: "+err.Error()
					discarded = append(discarded, r.Account)
					discardDecision = d
					continue
				}
				body = &Body{Raw: out}
				stripCache[key] = body
			}
			r.Header, r.Body, r.Stripped = verdictField(d.Header, r.Header), body, true
			stripped = append(stripped, r.Account)
			stripDecision = d
		case scan.DiscardMessage:
			r.Drop, r.Why = true, "discarded"
			discarded = append(discarded, r.Account)
			discardDecision = d
		}
	}
	if len(stripped) > 0 {
		m.Stops = append(m.Stops, s.stop(m, "inbound", "stripped", stripDecision.Strip, stripped))
	}
	var reports []func(context.Context)
	if len(discarded) > 0 {
		m.Stops = append(m.Stops, s.stop(m, "inbound", "discarded", discardDecision.Reasons, discarded))
		ev := s.event(m, notify.InboundDiscarded, discardDecision.Reasons, headers)
		reports = append(reports, func(ctx context.Context) { s.warnInbound(ctx, m, discarded, ev) })
	}
	if len(stripped) > 0 {
		ev := s.event(m, notify.InboundStripped, stripDecision.Strip, headers)
		reports = append(reports, func(ctx context.Context) { s.warnInbound(ctx, m, stripped, ev) })
	}
	if len(discarded) > 0 && len(discarded) == len(m.Local) && len(m.Remote) == 0 {
		// Nobody gets it: refuse with the condition's reply. The
		// recipients still get their report, and the Deliverer records
		// the stop, although nothing else of this message is stored.
		for _, fn := range reports {
			fn(ctx)
		}
		return replyReject(discardDecision.Reply, nil)
	}
	for _, fn := range reports {
		m.AfterCommit(fn)
	}
	return nil
}

func (s *ScanStage) warnInbound(ctx context.Context, m *Message, accounts []string, ev notify.Event) {
	if _, err := s.Notifier.WarnInbound(ctx, accounts, ev); err != nil {
		s.logWarnFailure(m, err)
	}
}

// logWarnFailure: a warning that could not be written never fails the
// delivery it is about.
func (s *ScanStage) logWarnFailure(m *Message, err error) {
	if s.Log != nil {
		s.Log.Error("warning mail not written", "queue_id", m.Env.QueueID, "err", err)
	}
}

func (s *ScanStage) event(m *Message, kind notify.Kind, fs []scan.Finding, headers []byte) notify.Event {
	ev := notify.Event{Kind: kind, QueueID: m.Env.QueueID, Sender: m.Env.From, Recipients: m.Env.Recipients, OriginalHeaders: headers}
	for _, f := range fs {
		ev.Findings = append(ev.Findings, notify.Finding{Reason: f.Condition.Description(), ReasonJA: f.Condition.ReasonJA(), Virus: f.Virus, File: f.Path})
	}
	return ev
}

// stop makes the record of a stopped message for rcpts.
func (s *ScanStage) stop(m *Message, direction, action string, fs []scan.Finding, rcpts []string) store.Stop {
	st := store.Stop{QueueID: m.Env.QueueID, Direction: direction, Sender: m.Env.From, Recipients: rcpts, Action: action}
	doms := rcpts
	if direction == "outbound" && m.Env.AuthUser != "" {
		doms = []string{m.Env.AuthUser}
	}
	for _, a := range doms {
		if i := strings.LastIndexByte(a, '@'); i >= 0 && !contains(st.Domains, a[i+1:]) {
			st.Domains = append(st.Domains, a[i+1:])
		}
	}
	for _, f := range fs {
		if !contains(st.Reasons, string(f.Condition)) {
			st.Reasons = append(st.Reasons, string(f.Condition))
		}
		if f.Virus != "" && st.Virus == "" {
			st.Virus = f.Virus
		}
		if f.Path != "" && st.File == "" {
			st.File = f.Path
		}
	}
	return st
}

// blocking returns the findings that make a submission fail.
func blocking(v *scan.Verdict) []scan.Finding {
	var out []scan.Finding
	for _, f := range v.Findings {
		if f.Condition.Blocking() || f.Condition == scan.Encrypted {
			out = append(out, f)
		}
	}
	return out
}

func toScanPolicy(p store.ScanPolicy) scan.Policy {
	return scan.Policy{
		Oversize: scan.Disposition(p.Oversize), Depth: scan.Disposition(p.Depth),
		ExtractSize: scan.Disposition(p.ExtractSize), Partial: scan.Disposition(p.Partial),
		Encrypted: scan.Disposition(p.Encrypted),
	}
}

func replyReject(r scan.Reply, cause error) error {
	var e [3]int
	for i, p := range strings.SplitN(r.Enhanced, ".", 3) {
		e[i], _ = strconv.Atoi(p)
	}
	rj := &Reject{Code: r.Code, Enhanced: e, Text: r.Text}
	if cause != nil {
		return fmt.Errorf("%w (%v)", rj, cause)
	}
	return rj
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// verdictField puts the scan verdict header on top of a recipient's own
// header fields.
func verdictField(verdict string, header []byte) []byte {
	return Prepend([]byte(scan.HeaderName+": "+verdict+"\r\n"), header)
}
