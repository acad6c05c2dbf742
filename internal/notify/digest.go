package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"yubin/internal/mailtext"
	"yubin/store"
)

// QuarantineLister lists the mail held for the accounts of a domain.
type QuarantineLister interface {
	Quarantined(ctx context.Context, f store.QuarantineFilter) ([]store.QuarantineEntry, error)
}

// Digest sends each account whose quarantine received mail since its last
// digest a daily list of that mail (SPEC section 10), at the report time,
// in its domain's language, to the account only — through Allowed, like
// every warning. Each digest is delivered with DeliverOnce under a key of
// the account and the day, so an account gets at most one a day, also
// across restarts and crashes; a server that was down at the digest time
// sends it at its next start. A digest lists what arrived between the
// digest time of the day of the account's previous digest (the start of
// the 14 days the quarantine keeps, for a first one) and today's digest
// time, so every held message is in exactly one digest unless it was
// released or deleted first. Warnings off for the domain: no digest.
type Digest struct {
	n *Notifier
	q QuarantineLister
	daily
}

// NewDigest sends digests at hh:mm in loc (nil: local time) every day.
func NewDigest(n *Notifier, q QuarantineLister, at string, loc *time.Location) (*Digest, error) {
	d, err := newDaily(at, loc)
	if err != nil {
		return nil, fmt.Errorf("digest time %w", err)
	}
	return &Digest{n: n, q: q, daily: d}, nil
}

// MaxDigestEntries is how many held messages one digest lists; it says how
// many more there are.
const MaxDigestEntries = 100

// digestKey is the DeliverOnce key of an account's digest of a day.
func digestKey(account string, day time.Time) string {
	return digestPrefix(account) + day.Format(time.DateOnly)
}

func digestPrefix(account string) string { return "quarantine-digest/" + account + "/" }

// Run sends due digests now and then at every digest time until ctx ends.
func (d *Digest) Run(ctx context.Context) {
	d.run(ctx, d.n, "quarantine digest", func(ctx context.Context, now time.Time) error {
		sent, err := d.RunOnce(ctx, now)
		d.n.log.Debug("quarantine digests done", "due", d.last(now).Format(time.DateTime), "sent", len(sent))
		return err
	})
}

// RunOnce sends every digest due at now that was not sent yet, and returns
// the accounts it sent one to. An account whose mailbox is full is skipped
// (and logged); it gets its digest at the next run that finds room.
func (d *Digest) RunOnce(ctx context.Context, now time.Time) ([]string, error) {
	at := d.last(now)
	domains, err := d.n.parentDomains(ctx)
	if err != nil {
		return nil, err
	}
	var sent []string
	for _, dom := range domains {
		set, err := d.n.st.DomainSettings(ctx, dom)
		if err != nil {
			return sent, err
		}
		if set.WarningsOff {
			continue
		}
		held, err := d.q.Quarantined(ctx, store.QuarantineFilter{Domain: dom})
		if err != nil {
			return sent, fmt.Errorf("quarantine digest for %s: %w", dom, err)
		}
		byAccount := map[string][]store.QuarantineEntry{}
		for _, e := range held {
			if e.Arrived.Before(at) {
				byAccount[e.Account] = append(byAccount[e.Account], e)
			}
		}
		accounts := make([]string, 0, len(byAccount))
		for a := range byAccount {
			accounts = append(accounts, a)
		}
		slices.Sort(accounts)
		for _, a := range accounts {
			ok, err := d.send(ctx, a, at, byAccount[a], set.Language)
			var qe *store.QuotaError
			if errors.As(err, &qe) {
				d.n.log.Warn("quarantine digest not sent: the mailbox is full", "account", a)
				continue
			}
			if err != nil {
				return sent, fmt.Errorf("quarantine digest for %s: %w", a, err)
			}
			if ok {
				sent = append(sent, a)
			}
		}
	}
	return sent, nil
}

// send sends account its digest of the day of at, listing the entries
// (all arrived before at) that arrived since its previous digest.
func (d *Digest) send(ctx context.Context, account string, at time.Time, held []store.QuarantineEntry, lang string) (bool, error) {
	key := digestKey(account, at)
	last, err := d.n.st.LastOnceKey(ctx, digestPrefix(account))
	if err != nil || last >= key {
		return false, err // sent today already
	}
	var since time.Time
	if last != "" {
		day, err := time.ParseInLocation(time.DateOnly, strings.TrimPrefix(last, digestPrefix(account)), d.loc)
		if err != nil {
			return false, fmt.Errorf("the key of the last digest %q: %w", last, err)
		}
		since = d.on(day)
	}
	var fresh []store.QuarantineEntry
	for _, e := range held {
		if !e.Arrived.Before(since) {
			fresh = append(fresh, e)
		}
	}
	if len(fresh) == 0 {
		return false, nil
	}
	acct, ok := d.n.Allowed(ctx, account)
	if !ok {
		return false, nil
	}
	msg := d.build(acct, fresh, lang)
	sent, err := d.n.st.DeliverOnce(ctx, key, store.Delivery{Recipients: []string{acct}, Message: msg})
	if sent {
		d.n.log.Info("quarantine digest sent", "account", acct, "messages", len(fresh))
	}
	return sent, err
}

// digestText is a digest's wording in one language; the digest writes one
// or both.
type digestText struct {
	title, intro, kept string
	head               []string
	more, ask          string
	never              string
}

var digestTexts = map[string]digestText{
	"en": {
		title: "==== Yubin spam quarantine ====",
		intro: "%[2]s for %[1]s %[4]s held as spam since the last digest.",
		kept:  "They are not in your mailbox. Held mail is deleted after 14 days.",
		head:  []string{"ARRIVED", "SCORE", "FROM", "SUBJECT", "ID"},
		more:  "... and %d more.",
		ask: "If one of them is mail you want, ask your mail administrator to release it\n" +
			"into your INBOX (it is delivered as it arrived, and the filter learns from it):",
		never: "Never open links in mail you did not expect.",
	},
	"ja": {
		title: "==== Yubin 迷惑メール隔離のお知らせ ====",
		intro: "前回のお知らせ以降、%[1]s 宛てのメール %[3]d 通を迷惑メールとして隔離しました。",
		kept:  "これらのメールはメールボックスには届いていません。隔離されたメールは14日後に削除されます。",
		head:  []string{"受信日時", "スコア", "差出人", "件名", "ID"},
		more:  "... ほか %d 通",
		ask: "必要なメールがある場合は、メール管理者に次のコマンドでの解放を依頼してください。\n" +
			"受信箱(INBOX)に受信時のまま届けられ、フィルタはそのメールを迷惑メールでないと学習します。",
		never: "心当たりのないメールのリンクは開かないでください。",
	},
}

func (d *Digest) build(account string, held []store.QuarantineEntry, lang string) []byte {
	var body bytes.Buffer
	n := len(held)
	listed := held[:min(n, MaxDigestEntries)]
	for i, l := range []string{"en", "ja"} {
		if lang == l || lang == "" || lang == "both" {
			if i > 0 && body.Len() > 0 {
				body.WriteString("\n")
			}
			d.write(&body, digestTexts[l], account, n, listed)
		}
	}
	subject := pick(lang, fmt.Sprintf("Spam quarantine: %s held", plural(n, "message")), fmt.Sprintf("迷惑メール隔離: %d 通", n))
	return d.n.plainMail("Yubin", account, subject, body.Bytes())
}

// write writes a digest of n held messages, listed the ones listed, in
// the wording of t.
func (d *Digest) write(w *bytes.Buffer, t digestText, account string, n int, listed []store.QuarantineEntry) {
	fmt.Fprintf(w, "%s\n\n", t.title)
	fmt.Fprintf(w, t.intro+"\n", account, plural(n, "message"), n, map[bool]string{true: "was", false: "were"}[n == 1])
	fmt.Fprintf(w, "%s\n\n", t.kept)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.head, "\t"))
	for _, e := range listed {
		from := mailtext.Line(e.From, 50)
		if from == "" {
			from = mailtext.Line(e.Sender, 50)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%s\t%s\t%s\n", e.Arrived.In(d.loc).Format("01-02 15:04"), e.Score, dash(from), dash(mailtext.Line(e.Subject, 60)), e.ID)
	}
	tw.Flush()
	if more := n - len(listed); more > 0 {
		fmt.Fprintf(w, t.more+"\n", more)
	}
	fmt.Fprintf(w, "\n%s\n\n    yubin quarantine release ID\n\n%s\n", t.ask, t.never)
}

// plural is "1 message", "2 messages".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
