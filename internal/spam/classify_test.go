package spam

import (
	"math"
	"testing"
	"time"

	"yubin/internal/mailheader"
	"yubin/store"
)

func TestChi2Q(t *testing.T) {
	for _, c := range []struct {
		x2   float64
		v    int
		want float64
	}{
		{2, 2, math.Exp(-1)},
		{0, 4, 1},
		{10, 4, math.Exp(-5) * (1 + 5)},
		{3000, 300, 0}, // e^-1500 alone underflows; the sum is still ~0
		{1500, 2000, 1},
	} {
		if got := chi2Q(c.x2, c.v); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("chi2Q(%v, %d) = %v, want %v", c.x2, c.v, got, c.want)
		}
	}
}

func TestTokenProb(t *testing.T) {
	// Robinson's f(w): unseen is x, a token seen once in spam only is
	// (s*x + 1) / (s + 1), and heavy use approaches the ratio.
	if p := TokenProb(store.SpamCount{}, 10, 10); p != 0.5 {
		t.Errorf("unseen: %v", p)
	}
	if p, want := TokenProb(store.SpamCount{Spam: 1}, 10, 10), (Strength*Assumed+1)/(Strength+1); math.Abs(p-want) > 1e-12 || p <= 0.5+MinDeviation {
		t.Errorf("once in spam: %v", p)
	}
	if p := TokenProb(store.SpamCount{Spam: 100, Ham: 100}, 100, 100); math.Abs(p-0.5) > 1e-9 {
		t.Errorf("even: %v", p)
	}
	// Class sizes are normalised: 10 of 10 spam and 10 of 100 ham.
	if p := TokenProb(store.SpamCount{Spam: 10, Ham: 10}, 10, 100); p < 0.85 {
		t.Errorf("normalised: %v", p)
	}
}

func TestClassify(t *testing.T) {
	totals := store.SpamTotals{Spam: 100, Ham: 100}
	tokens := []string{"cheap", "pills", "meeting", "agenda", "the"}
	counts := []store.SpamCount{{Spam: 60, Ham: 1}, {Spam: 40}, {Ham: 50}, {Ham: 30, Spam: 1}, {Spam: 90, Ham: 90}}
	spammy, clues := Classify(totals, tokens[:2], counts[:2])
	if spammy < 0.95 {
		t.Errorf("spam tokens: %v", spammy)
	}
	if len(clues) != 2 || clues[0].Token != "pills" {
		t.Errorf("clues %v", clues)
	}
	hammy, _ := Classify(totals, tokens[2:4], counts[2:4])
	if hammy > 0.05 {
		t.Errorf("ham tokens: %v", hammy)
	}
	// "the" is in every message: not a clue.
	if p, clues := Classify(totals, tokens[4:], counts[4:]); p != 0.5 || len(clues) != 0 {
		t.Errorf("neutral: %v %v", p, clues)
	}
	mixed, _ := Classify(totals, tokens, counts)
	if mixed < 0.2 || mixed > 0.8 {
		t.Errorf("mixed evidence should be unsure: %v", mixed)
	}
	// At most MaxClues count.
	many := make([]string, 400)
	manyCounts := make([]store.SpamCount, 400)
	for i := range many {
		many[i] = string(rune('a'+i%26)) + string(rune('a'+i/26))
		manyCounts[i] = store.SpamCount{Spam: uint32(1 + i%7)}
	}
	if _, clues := Classify(totals, many, manyCounts); len(clues) != MaxClues {
		t.Errorf("%d clues", len(clues))
	}
}

func TestResult(t *testing.T) {
	r := NewResult(0.9, "domain", 3, []Signal{{"spf-fail", 0.15}})
	if r.Score != 1 || !r.IsSpam(0.5) {
		t.Errorf("%+v", r)
	}
	if got, want := r.HeaderValue(0.5), "yes; score=1.00; threshold=0.50; signals=bayes-domain:0.90,spf-fail:+0.15"; got != want {
		t.Errorf("header %q, want %q", got, want)
	}
	// Untrained: the signals alone.
	r = NewResult(0.5, "", 0, []Signal{{"no-date", WeightNoDate}})
	if r.IsSpam(store.DefaultSpamThreshold) {
		t.Errorf("untrained with one rule is spam: %+v", r)
	}
	if got, want := r.HeaderValue(0.5), "no; score=0.10; threshold=0.50; signals=bayes:untrained,no-date:+0.10"; got != want {
		t.Errorf("header %q, want %q", got, want)
	}
	// A model without clues: as untrained.
	r = NewResult(0.5, "domain", 0, []Signal{{"no-date", WeightNoDate}})
	if got, want := r.HeaderValue(0.5), "no; score=0.10; threshold=0.50; signals=bayes-domain:unknown,no-date:+0.10"; got != want {
		t.Errorf("header %q, want %q", got, want)
	}
	r = NewResult(0.1, "account", 1, []Signal{{"x,y;z\r\n", -0.3}})
	if r.Score != 0 || r.SignalNames()[1] != "x_y_z__:-0.30" {
		t.Errorf("%+v %q", r, r.SignalNames())
	}
}

func TestHeaderRules(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ours := func(d string) bool { return d == "example.com" }
	names := func(sigs []Signal) map[string]bool {
		m := map[string]bool{}
		for _, s := range sigs {
			m[s.Name] = true
		}
		return m
	}
	rules := func(hdr string) []Signal {
		return HeaderRules([]byte(hdr), mailheader.Parse([]byte(hdr)), now, ours)
	}
	got := names(rules("Subject: x\r\nFrom: \"info@example.com\" <evil@bad.test>\r\n\r\n"))
	if !got["no-message-id"] || !got["no-date"] || !got["from-spoof"] || len(got) != 3 {
		t.Errorf("%v", got)
	}
	got = names(rules("Message-ID: <a@b>\r\nDate: Sat, 1 Feb 2025 00:00:00 +0000\r\nFrom: Info <info@example.com>\r\n\r\n"))
	if !got["future-date"] || len(got) != 1 {
		t.Errorf("%v", got)
	}
	// Our own address as its own display name, another domain's address
	// in the name, and a date a day ahead (clocks differ): no signal.
	got = names(rules("Message-ID: <a@b>\r\nDate: Thu, 2 Jan 2025 00:00:00 +0000\r\nFrom: \"info@example.com\" <info@example.com>, \"x@other.test\" <y@bad.test>\r\n\r\n"))
	if len(got) != 0 {
		t.Errorf("%v", got)
	}
}

// A sender the model knows only from ham lowers the score: the From
// address once, the From domain from KnownDomainHam on; a single spam
// from either spoils it.
func TestReputation(t *testing.T) {
	toks := []string{"from:addr:news@shop.test", "from:dom:shop.test", "subject:offer", "from:org:shop.test"}
	for _, c := range []struct {
		name   string
		counts []store.SpamCount
		want   string
	}{
		{"unknown", []store.SpamCount{{}, {}, {Spam: 9}}, ""},
		{"address in ham", []store.SpamCount{{Ham: 1}, {Ham: 1}, {}}, "known-sender"},
		{"address also in spam", []store.SpamCount{{Ham: 3, Spam: 1}, {Ham: 3, Spam: 1}, {}}, ""},
		{"domain in ham", []store.SpamCount{{}, {Ham: KnownDomainHam}, {}}, "known-domain"},
		{"domain in ham once", []store.SpamCount{{}, {Ham: KnownDomainHam - 1}, {}}, ""},
		{"domain also in spam", []store.SpamCount{{}, {Ham: 20, Spam: 1}, {}}, ""},
		{"organization in ham", []store.SpamCount{{}, {}, {}, {Ham: KnownDomainHam}}, "known-domain"},
	} {
		counts := append(c.counts, make([]store.SpamCount, len(toks)-len(c.counts))...)
		got := Reputation(toks, counts)
		name := ""
		if len(got) == 1 {
			name = got[0].Name
			if got[0].Weight >= 0 {
				t.Errorf("%s: weight %v, want negative", c.name, got[0].Weight)
			}
		} else if len(got) > 1 {
			t.Errorf("%s: %v, want at most one signal", c.name, got)
		}
		if name != c.want {
			t.Errorf("%s: %v, want %q", c.name, got, c.want)
		}
	}
}

func TestAuthenticated(t *testing.T) {
	for _, c := range []struct {
		auth           Auth
		from, mailFrom string
		want           bool
	}{
		{Auth{}, "shop.test", "", true}, // checks off
		{Auth{SPF: "pass", DKIM: "pass", DMARC: "pass"}, "shop.test", "other.test", true},
		{Auth{SPF: "pass", DKIM: "none", DMARC: "fail"}, "shop.test", "shop.test", false},
		{Auth{SPF: "pass", DKIM: "none", DMARC: "none"}, "shop.test", "bounce.shop.test", true},
		{Auth{SPF: "pass", DKIM: "none", DMARC: "none"}, "shop.test", "spammer.test", false},
		{Auth{SPF: "softfail", DKIM: "pass", DMARC: "none"}, "shop.test", "shop.test", false},
		{Auth{SPF: "none", DKIM: "none", DMARC: "temperror"}, "shop.test", "shop.test", false},
	} {
		if got := c.auth.Authenticated(c.from, c.mailFrom); got != c.want {
			t.Errorf("%+v from %s mail from %s: %v, want %v", c.auth, c.from, c.mailFrom, got, c.want)
		}
	}
}
