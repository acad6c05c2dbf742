package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"yubin/admin"
	"yubin/internal/mailfiles"
	"yubin/internal/spam"
	"yubin/store"
)

const spamUsage = "usage: yubin spam policy ADDRESS [--action=off|junk|quarantine] [--threshold=N|default] [--tag=on|off] | spam show ADDRESS | spam reject DOMAIN [SCORE|off] | spam train DOMAIN --spam PATH --ham PATH"

const spamHelp = `Usage: yubin spam COMMAND [flags]

  policy ADDRESS [flags]   change an account's spam filter policy; only what the
                           flags name changes
      --action=off|junk|quarantine  what happens to spam: delivered as usual
                                    (off), to Junk (junk, the default), or held
                                    in the quarantine
      --threshold=N|default         the score from which mail is spam: above 0,
                                    at most 1 (default 0.5)
      --tag=on|off                  [SPAM] before the Subject of mail put in Junk
  show ADDRESS             an account's policy and the models that score its mail
  reject DOMAIN [SCORE|off]
                           show or set the domain's reject score: mail from port
                           25 that reaches it for every recipient is refused
                           (550 5.7.1); above 0.5, at most 1; off by default
  train DOMAIN --spam PATH --ham PATH
                           seed the domain's model (it scores its accounts' mail
                           until they have trained their own) from mbox files,
                           Maildirs or directories of message files; --spam and
                           --ham may each be given several times, or one alone

The CLI reads the files itself and sends the server the messages' tokens.
Flags of every command: --config FILE, --data DIR, --json.
`

func cmdSpam(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, spamUsage)
		return 2
	}
	switch args[0] {
	case "policy":
		return spamPolicy(e, args[1:])
	case "show":
		return spamShow(e, args[1:])
	case "reject":
		return spamReject(e, args[1:])
	case "train":
		return spamTrain(e, args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, spamHelp)
		return 0
	}
	fmt.Fprintf(e.stderr, "yubin: unknown spam command %q\n%s\n", args[0], spamUsage)
	return 2
}

func spamPolicy(e *env, args []string) int {
	a := newAdminCmd(e, "spam policy", "yubin spam policy ADDRESS [--action=off|junk|quarantine] [--threshold=N|default] [--tag=on|off]")
	action := a.fs.String("action", "", "what happens to spam: `off|junk|quarantine`")
	threshold := a.fs.String("threshold", "", "the score from which mail is spam: `N` above 0 and at most 1, or default (0.5)")
	tag := a.fs.String("tag", "", "[SPAM] before the Subject of spam put in Junk: `on|off`")
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	p, err := call(a, admin.OpSpamPolicy, admin.SpamPolicyChange{Address: pos[0], Action: *action, Threshold: *threshold, Tag: *tag})
	if err != nil {
		return fail(e, "spam policy: %v", err)
	}
	return a.out(p, func(w io.Writer) { printSpamPolicy(w, p) })
}

func printSpamPolicy(w io.Writer, p admin.SpamPolicy, more ...[]string) {
	threshold := score(p.Threshold)
	if p.DefaultThreshold {
		threshold += " (the default)"
	}
	fmt.Fprintf(w, "Spam filter of %s:\n", p.Address)
	table(w, append([][]string{
		{"  action", string(p.Action)},
		{"  threshold", threshold},
		{"  tag", onOff(p.Tag)},
	}, more...))
}

func score(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func spamShow(e *env, args []string) int {
	a := newAdminCmd(e, "spam show", "yubin spam show ADDRESS")
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	s, err := call(a, admin.OpSpamShow, pos[0])
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(s, func(w io.Writer) {
		speaker := map[string]string{
			spam.ModelAccount: "its own model",
			spam.ModelDomain:  "its domain's model (" + s.Domain + ")",
			spam.ModelNone:    "no model yet (too little training): the signals alone",
		}[s.Model]
		printSpamPolicy(w, s.SpamPolicy,
			[]string{"  held", plural(s.Quarantined, "message") + " in the quarantine"},
			[]string{"  scored by", speaker},
			[]string{"  own model", totals(s.OwnModel) + fmt.Sprintf("  (scores from %d spam and %d ham)", s.OwnNeeds, s.OwnNeeds)},
			[]string{"  domain model", totals(s.DomainModel) + fmt.Sprintf("  (stands in from %d spam and %d ham)", s.DomainNeeds, s.DomainNeeds)},
			[]string{"  reject score", rejectScore(s.RejectScore) + " (" + s.Domain + ")"},
		)
	})
}

func totals(t store.SpamTotals) string {
	return fmt.Sprintf("%s spam, %s ham, %s", thousands(t.Spam), thousands(t.Ham), plural(int(t.Tokens), "token"))
}

func rejectScore(f float64) string {
	if f == 0 {
		return "off"
	}
	return score(f)
}

// plural is "1 message", "2 messages".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return thousands(int64(n)) + " " + what + "s"
}

// thousands writes n with thousands separators: 52,311.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func spamReject(e *env, args []string) int {
	a := newAdminCmd(e, "spam reject", "yubin spam reject DOMAIN [SCORE|off]")
	pos, code, ok := a.parse(args, 1, 2)
	if !ok {
		return code
	}
	var ds admin.DomainSettings
	var err error
	if len(pos) == 1 {
		ds, err = call(a, admin.OpSettingsShow, pos[0])
	} else {
		ds, err = call(a, admin.OpSettingsUpdate, admin.SettingsUpdate{Domain: pos[0], Change: admin.SettingsChange{SpamRejectScore: &pos[1]}})
	}
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(map[string]any{"domain": ds.Domain, "spam_reject_score": ds.SpamRejectScore}, func(w io.Writer) {
		if ds.SpamRejectScore == 0 {
			fmt.Fprintf(w, "Reject score of %s: off (spam is never refused)\n", ds.Domain)
			return
		}
		fmt.Fprintf(w, "Reject score of %s: %s (mail scoring at least this for every recipient is refused with 550 5.7.1)\n", ds.Domain, score(ds.SpamRejectScore))
	})
}

// pathList is a flag that may be given several times.
type pathList []string

func (p *pathList) String() string     { return strings.Join(*p, ",") }
func (p *pathList) Set(v string) error { *p = append(*p, v); return nil }

// trainSet is one PATH to train with, as spam or ham.
type trainSet struct {
	class string
	src   *mailfiles.Source
	n     int // its messages
	done  int
}

// A training batch is sent when it holds this many messages or about this
// many bytes of tokens: far below the control socket's line limit.
const (
	trainBatchMessages = 200
	trainBatchBytes    = 256 << 10
)

// TrainSummary is what "spam train --json" prints.
type TrainSummary struct {
	Domain string           `json:"domain"`
	Spam   int              `json:"spam"` // messages trained as spam
	Ham    int              `json:"ham"`
	Model  store.SpamTotals `json:"model"` // the domain's model after it
}

func spamTrain(e *env, args []string) int {
	a := newAdminCmd(e, "spam train", "yubin spam train DOMAIN --spam PATH --ham PATH")
	var spamPaths, hamPaths pathList
	a.fs.Var(&spamPaths, "spam", "spam: an mbox file, a Maildir or a directory of message files (`PATH`; may be repeated)")
	a.fs.Var(&hamPaths, "ham", "ham (wanted mail): an mbox file, a Maildir or a directory of message files (`PATH`; may be repeated)")
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	if len(spamPaths)+len(hamPaths) == 0 {
		fmt.Fprintf(e.stderr, "yubin: spam train: give --spam PATH, --ham PATH or both\nusage: %s\n", a.synopsis)
		return 2
	}
	// Every path is read and checked before anything is trained.
	var sets []*trainSet
	for _, c := range []struct {
		class string
		paths []string
	}{{"spam", spamPaths}, {"ham", hamPaths}} {
		for _, p := range c.paths {
			src, err := mailfiles.Open(p)
			if err != nil {
				return fail(e, "spam train: %v", err)
			}
			set := &trainSet{class: c.class, src: src}
			if err := src.Each(func(mailfiles.Message) error { set.n++; return nil }); err != nil {
				return fail(e, "spam train: %v", err)
			}
			sets = append(sets, set)
		}
	}
	sum := TrainSummary{}
	err := a.with(func(ctx context.Context, api admin.API) error {
		// The domain first (an empty batch trains nothing): a wrong
		// domain is said before anything is read again.
		r, err := admin.Do(ctx, api, admin.OpSpamTrain, admin.SpamTrainBatch{Domain: pos[0], Class: "spam"})
		if err != nil {
			return err
		}
		sum.Domain, sum.Model = r.Domain, r.Model
		p := &trainProgress{e: e, sets: sets, live: e.stdoutIsTerminal && !a.c.json, quiet: a.c.json}
		for _, set := range sets {
			b := admin.SpamTrainBatch{Domain: sum.Domain, Class: set.class}
			size := 0
			send := func() error {
				if len(b.Messages) == 0 {
					return nil
				}
				r, err := admin.Do(ctx, api, admin.OpSpamTrain, b)
				if err != nil {
					return err
				}
				set.done += r.Trained
				sum.Model = r.Model
				b.Messages, size = b.Messages[:0], 0
				p.show()
				return nil
			}
			err := set.src.Each(func(m mailfiles.Message) error {
				toks := spam.Tokenize(m.Raw)
				b.Messages = append(b.Messages, toks)
				for _, t := range toks {
					size += len(t) + 4 // and its quotes and comma in JSON
				}
				if len(b.Messages) >= trainBatchMessages || size >= trainBatchBytes {
					return send()
				}
				return nil
			})
			if err == nil {
				err = send()
			}
			if err != nil {
				p.end()
				return err
			}
			p.setDone(set)
		}
		p.end()
		return nil
	})
	for _, set := range sets {
		if set.class == "spam" {
			sum.Spam += set.done
		} else {
			sum.Ham += set.done
		}
	}
	if err != nil {
		if sum.Spam+sum.Ham > 0 {
			return fail(e, "spam train: %v (%d spam and %d ham were trained before it)", err, sum.Spam, sum.Ham)
		}
		return fail(e, "spam train: %v", err)
	}
	if a.c.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(sum)
		return 0
	}
	fmt.Fprintf(e.stdout, "trained %s's model with %d spam and %d ham: it now has %s\n", sum.Domain, sum.Spam, sum.Ham, totals(sum.Model))
	return 0
}

// trainProgress tells how training goes: on a terminal one line written
// over as batches go, else one line per path trained.
type trainProgress struct {
	e     *env
	sets  []*trainSet
	live  bool // a terminal: the line is rewritten
	quiet bool // --json: nothing
	shown bool
}

func (p *trainProgress) show() {
	if !p.live {
		return
	}
	count := map[string][2]int{}
	for _, s := range p.sets {
		c := count[s.class]
		count[s.class] = [2]int{c[0] + s.done, c[1] + s.n}
	}
	var parts []string
	for _, class := range []string{"spam", "ham"} {
		if c := count[class]; c[1] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d/%d", class, c[0], c[1]))
		}
	}
	fmt.Fprintf(p.e.stdout, "\rtraining: %s ", strings.Join(parts, ", "))
	p.shown = true
}

// setDone says that a path is trained.
func (p *trainProgress) setDone(s *trainSet) {
	if p.live || p.quiet {
		return
	}
	fmt.Fprintf(p.e.stdout, "%s: trained %s as %s (%s)\n", s.src.Path, plural(s.done, "message"), s.class, s.src.Kind)
}

func (p *trainProgress) end() {
	if p.shown {
		fmt.Fprintln(p.e.stdout)
		p.shown = false
	}
}
