package spf

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/foxcpp/go-mockdns"

	"yubin/internal/delivery"
	"yubin/internal/dkimkey"
	"yubin/internal/testutil/dnstest"
	"yubin/internal/testutil/teststore"
)

const host = "mx.example.com"

// fixture is a Checker on the zones of testdata/auth.zone plus
// signed.test's DKIM keys, made with dkimkey (as outbound mail is signed)
// and published as "yubin dns records" prints them.
type fixture struct {
	checker *Checker
	keys    []dkimkey.Key
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := teststore.New(t, teststore.Options{NoSync: true, Domains: []teststore.Domain{{Name: "signed.test"}}})
	keys, err := dkimkey.ForDomain(t.Context(), st, "signed.test")
	if err != nil {
		t.Fatal(err)
	}
	zones, err := dnstest.Load("testdata/auth.zone")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		txt, err := k.TXT()
		if err != nil {
			t.Fatal(err)
		}
		zones[k.DNSName()+"."] = mockdns.Zone{TXT: []string{txt}}
	}
	srv := dnstest.NewServer(t, zones)
	return &fixture{
		checker: &Checker{Hostname: host, Resolver: srv.NewResolver(), Timeout: 10 * time.Second},
		keys:    keys,
	}
}

func msg(from, subject string) []byte {
	return []byte("Received: from client.test ([192.0.2.10])\r\n\tby " + host + " with ESMTP id X; Fri, 02 Jan 2026 03:04:05 +0900\r\n" +
		"From: Sender <" + from + ">\r\nTo: info@example.com\r\nSubject: " + subject + "\r\n" +
		"Date: Fri, 02 Jan 2026 03:04:00 +0900\r\nMessage-ID: <1@test>\r\n\r\nHello,\r\nthis is the body.\r\n")
}

// sign signs m (without our Received line, as the sender would) with key
// and puts the Received line back on top.
func sign(t *testing.T, m []byte, domain, selector string, signer crypto.Signer) []byte {
	t.Helper()
	i := bytes.Index(m, []byte("From: "))
	var out bytes.Buffer
	err := dkim.Sign(&out, bytes.NewReader(m[i:]), &dkim.SignOptions{Domain: domain, Selector: selector, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	return append(append([]byte(nil), m[:i]...), out.Bytes()...)
}

func env(from, helo string) delivery.Envelope {
	return delivery.Envelope{QueueID: "Q", Source: delivery.MX, From: from, Helo: helo,
		RemoteAddr: &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 4000}, Recipients: []string{"info@example.com", "bob@example.com"}}
}

func message(e delivery.Envelope, raw []byte) *delivery.Message {
	m := &delivery.Message{Env: e, Raw: raw}
	for _, r := range e.Recipients {
		m.Local = append(m.Local, &delivery.Recipient{Account: r})
	}
	return m
}

// arOf returns the results of the first Authentication-Results header,
// checking it is ours.
func arOf(t *testing.T, raw []byte) map[string]authres.Result {
	t.Helper()
	f := headerFields(raw)
	if len(f) == 0 {
		t.Fatal("no header")
	}
	name, value, _ := splitField(f[0])
	if name != "Authentication-Results" {
		t.Fatalf("first field is %q, want Authentication-Results:\n%s", name, raw)
	}
	id, results, err := authres.Parse(value)
	if err != nil || id != host {
		t.Fatalf("Authentication-Results %q: id %q, %v", value, id, err)
	}
	out := map[string]authres.Result{}
	for _, r := range results {
		switch r := r.(type) {
		case *authres.SPFResult:
			out["spf"] = r
		case *authres.DKIMResult:
			if _, dup := out["dkim"]; !dup {
				out["dkim"] = r
			}
		case *authres.DMARCResult:
			out["dmarc"] = r
		}
	}
	return out
}

func TestResults(t *testing.T) {
	f := newFixture(t)
	var ed, rsa dkimkey.Key
	for _, k := range f.keys {
		if k.Algorithm == "ed25519" {
			ed = k
		} else {
			rsa = k
		}
	}
	signedEd := sign(t, msg("news@signed.test", "signed"), "signed.test", ed.Selector, ed.Signer)
	signedRSA := sign(t, msg("news@signed.test", "signed"), "signed.test", rsa.Selector, rsa.Signer)
	tampered := bytes.Replace(signedEd, []byte("this is the body"), []byte("this is the BODY"), 1)
	tamperedHeader := bytes.Replace(signedRSA, []byte("Subject: signed"), []byte("Subject: changed"), 1)
	// dkimtemp.test signs with a key whose DNS fails.
	dkimTemp := sign(t, msg("a@dkimtemp.test", "x"), "dkimtemp.test", ed.Selector, ed.Signer)
	// A signature by a third party (not aligned with From).
	thirdParty := sign(t, msg("news@reject.test", "x"), "signed.test", ed.Selector, ed.Signer)

	for _, c := range []struct {
		name             string
		env              delivery.Envelope
		raw              []byte
		spf, dkim, dmarc string
		policy           string // DMARC policy to apply
		reply            string // refusal prefix; "" = delivered
		junk             bool
	}{
		{"spf-pass-aligned", env("bob@pass.test", "client.test"), msg("bob@pass.test", "x"), "pass", "none", "pass", "reject", "", false},
		{"dkim-ed25519-pass", env("bounce@other.test", "client.test"), signedEd, "none", "pass", "pass", "reject", "", false},
		{"dkim-rsa-pass", env("bounce@other.test", "client.test"), signedRSA, "none", "pass", "pass", "reject", "", false},
		{"dkim-body-tampered", env("bounce@other.test", "client.test"), tampered, "none", "fail", "fail", "reject", "550 5.7.1", false},
		{"dkim-header-tampered", env("bounce@other.test", "client.test"), tamperedHeader, "none", "fail", "fail", "reject", "550 5.7.1", false},
		{"dkim-not-aligned", env("bounce@other.test", "client.test"), thirdParty, "none", "pass", "fail", "reject", "550 5.7.1", false},
		{"dmarc-reject", env("bob@reject.test", "client.test"), msg("bob@reject.test", "x"), "fail", "none", "fail", "reject", "550 5.7.1", false},
		{"dmarc-reject-spoofed-from-only", env("bob@pass.test", "client.test"), msg("ceo@reject.test", "x"), "pass", "none", "fail", "reject", "550 5.7.1", false},
		{"dmarc-quarantine", env("bob@quarantine.test", "client.test"), msg("bob@quarantine.test", "x"), "fail", "none", "fail", "quarantine", "", true},
		{"dmarc-none-no-record", env("bob@nopolicy.test", "client.test"), msg("bob@nopolicy.test", "x"), "fail", "none", "none", "", "", false},
		{"dmarc-pct-outside-sample", env("x@halfreject.test", "client.test"), msg("x@halfreject.test", "x"), "fail", "none", "fail", "quarantine", "", true},
		{"dmarc-org-domain-sp", env("x@sub.org.test", "client.test"), msg("x@sub.org.test", "x"), "fail", "none", "fail", "reject", "550 5.7.1", false},
		{"spf-relaxed-aligned", env("b@bounces.relaxed.test", "client.test"), msg("news@relaxed.test", "x"), "pass", "none", "pass", "reject", "", false},
		{"spf-strict-not-aligned", env("b@bounces.strict.test", "client.test"), msg("news@strict.test", "x"), "pass", "none", "fail", "reject", "550 5.7.1", false},
		{"null-sender-helo", env("", "mail.helo.test"), msg("mailer-daemon@helo.test", "x"), "pass", "none", "none", "", "", false},
		{"no-from", env("bob@pass.test", "client.test"), []byte("Subject: x\r\n\r\nbody\r\n"), "pass", "none", "permerror", "", "", false},
		{"spf-temperror", env("bob@spftemp.test", "client.test"), msg("bob@spftemp.test", "x"), "temperror", "none", "none", "", "451 4.4.3", false},
		{"dmarc-temperror", env("bob@dmarctemp.test", "client.test"), msg("bob@dmarctemp.test", "x"), "fail", "none", "temperror", "", "451 4.4.3", false},
		{"dkim-key-temperror", env("bounce@other.test", "client.test"), dkimTemp, "none", "temperror", "temperror", "", "451 4.4.3", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			chk := *f.checker
			chk.Sample = func(pct int) bool { return false }
			res := chk.Check(context.Background(), c.env, c.raw)
			if string(res.SPF) != c.spf {
				t.Errorf("spf %s (%v), want %s", res.SPF, res.SPFErr, c.spf)
			}
			gotDKIM := "none"
			if len(res.DKIM) > 0 {
				gotDKIM = res.DKIM[0].Result
			}
			if gotDKIM != c.dkim {
				t.Errorf("dkim %+v, want %s", res.DKIM, c.dkim)
			}
			if res.DMARC.Result != c.dmarc || (c.policy != "" && string(res.DMARC.Policy) != c.policy) {
				t.Errorf("dmarc %+v, want %s with policy %q", res.DMARC, c.dmarc, c.policy)
			}

			m := message(c.env, c.raw)
			err := chk.Process(context.Background(), m)
			var rj *delivery.Reject
			if c.reply != "" {
				if !errors.As(err, &rj) || !strings.HasPrefix(rj.Error(), c.reply) {
					t.Fatalf("Process: %v, want %s", err, c.reply)
				}
				return
			}
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			ar := arOf(t, m.ContentOf(m.Local[0]))
			if v := ar["spf"].(*authres.SPFResult); string(v.Value) != c.spf {
				t.Errorf("header spf=%s", v.Value)
			}
			if v := ar["dkim"].(*authres.DKIMResult); string(v.Value) != c.dkim {
				t.Errorf("header dkim=%s", v.Value)
			}
			if v := ar["dmarc"].(*authres.DMARCResult); string(v.Value) != c.dmarc {
				t.Errorf("header dmarc=%s", v.Value)
			}
			for _, r := range m.Local {
				if (r.Mailbox == "Junk") != c.junk {
					t.Errorf("%s: mailbox %q", r.Account, r.Mailbox)
				}
			}
			if !bytes.HasSuffix(m.ContentOf(m.Local[0]), c.raw) {
				t.Errorf("message changed beyond the new header")
			}
		})
	}
}

func TestHeaderFormat(t *testing.T) {
	f := newFixture(t)
	m := message(env("bob@pass.test", "client.test"), msg("bob@pass.test", "x"))
	if err := f.checker.Process(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	want := "Authentication-Results: mx.example.com;\r\n\tspf=pass smtp.mailfrom=bob@pass.test;\r\n\tdkim=none;\r\n\tdmarc=pass header.from=pass.test\r\n"
	if !bytes.HasPrefix(m.ContentOf(m.Local[0]), []byte(want)) {
		t.Fatalf("got\n%s\nwant\n%s", m.ContentOf(m.Local[0])[:min(len(m.ContentOf(m.Local[0])), 300)], want)
	}
}

func TestSubmissionNotChecked(t *testing.T) {
	f := newFixture(t)
	e := env("bob@reject.test", "client.test")
	e.Source = delivery.Submission
	e.AuthUser = "bob@example.com"
	raw := msg("bob@reject.test", "x")
	m := message(e, raw)
	if err := f.checker.Process(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.ContentOf(m.Local[0]), raw) {
		t.Fatalf("submission changed:\n%s", m.ContentOf(m.Local[0]))
	}
}

func TestOrgDomain(t *testing.T) {
	for in, want := range map[string]string{
		"example.com": "example.com", "mail.example.com": "example.com", "a.b.example.co.uk": "example.co.uk",
		"sub.org.test": "org.test", "EXAMPLE.COM.": "example.com",
	} {
		if got := OrgDomain(in); got != want {
			t.Errorf("OrgDomain(%q) = %q, want %q", in, got, want)
		}
	}
}

// No DNS at all: 451, the sender tries again; nothing is decided.
func TestResolverDown(t *testing.T) {
	chk := &Checker{Hostname: host, Resolver: NewResolver("127.0.0.1:1"), Timeout: 5 * time.Second}
	m := message(env("bob@pass.test", "client.test"), msg("bob@pass.test", "x"))
	err := chk.Process(context.Background(), m)
	var rj *delivery.Reject
	if !errors.As(err, &rj) || rj.Code != 451 || rj.Enhanced != [3]int{4, 4, 3} {
		t.Fatalf("Process: %v, want 451 4.4.3", err)
	}
}
