package smtpd

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"yubin/internal/address"
	"yubin/store"
)

// testDomains is a fixed domain table for the pure functions.
var testDomains = map[string]store.Domain{
	"example.com":       {Name: "example.com"},
	"child.example.com": {Name: "child.example.com", Parent: "example.com"},
	"sales.example.com": {Name: "sales.example.com", Parent: "example.com"},
	"other.test":        {Name: "other.test"},
}

var testAccounts = map[string]bool{"info@example.com": true, "admin@example.com": true, "carol@other.test": true}

func lookupDomain(d string) (store.Domain, error) {
	if v, ok := testDomains[strings.ToLower(d)]; ok {
		return v, nil
	}
	return store.Domain{}, store.ErrNoSuchDomain
}

// resolve mimics store.Resolve on the fixed tables (without the
// postmaster rule of recipientAccounts, tested over SMTP).
func resolve(addr string) ([]string, error) {
	a, err := address.Parse(addr)
	if err != nil {
		return nil, store.ErrInvalid
	}
	d, err := lookupDomain(a.Domain)
	if err != nil {
		return nil, err
	}
	dom := d.Name
	if d.Parent != "" {
		dom = d.Parent
	}
	acct := a.Local + "@" + dom
	if !testAccounts[acct] {
		return nil, store.ErrNoSuchAccount
	}
	return []string{acct}, nil
}

func isLocal(d string) bool { _, err := lookupDomain(d); return err == nil }

// FuzzSenderAllowed checks the MAIL FROM ownership rule: whatever the
// input, an allowed sender is a valid address whose domain is the
// account's domain or one of its children, with the account's local part
// unless the account is an admin.
func FuzzSenderAllowed(f *testing.F) {
	for _, s := range []string{"info@example.com", "INFO@Child.Example.com", "bob@example.com", "info@other.test",
		"info%x@example.com", "info@example.com.", "info@[1.2.3.4]", "a@b@example.com", "", "@", "info@",
		"info@sub.child.example.com", "x@sales.example.com"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, from string, admin bool) {
		acct := store.Account{Address: "info@example.com", Role: store.RoleUser}
		if admin {
			acct = store.Account{Address: "admin@example.com", Role: store.RoleAdmin}
		}
		ok := senderAllowed(acct, from, lookupDomain)
		if !ok {
			return
		}
		a, err := address.Parse(from)
		if err != nil {
			t.Fatalf("allowed %q which does not parse: %v", from, err)
		}
		d, err := lookupDomain(a.Domain)
		if err != nil {
			t.Fatalf("allowed %q on a foreign domain", from)
		}
		if d.Name != "example.com" && d.Parent != "example.com" {
			t.Fatalf("allowed %q outside example.com and its children", from)
		}
		if !admin && a.Local != "info" {
			t.Fatalf("user allowed someone else's address %q", from)
		}
	})
}

// FuzzClassifyRecipient checks that only addresses that resolve to an
// account are accepted, that the account is on a local parent domain, and
// that nothing with a routing character gets through.
func FuzzClassifyRecipient(f *testing.F) {
	for _, s := range []string{"info@example.com", "Info@Child.Example.com", "nobody@example.com", "u@remote.test",
		"u%remote.test@example.com", "remote!u@example.com", "a@b@example.com", "info@example.com.",
		"info@[127.0.0.1]", "a b@example.com", "", "@example.com", "info@", "carol@other.test",
		strings.Repeat("v", 200) + "@example.com", strings.Repeat("v", 257) + "@example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, to string) {
		accts, class, err := classifyRecipient(to, resolve, isLocal)
		switch class {
		case rcptLocal:
			if err != nil || len(accts) != 1 || !testAccounts[accts[0]] {
				t.Fatalf("%q accepted as %q (err %v)", to, accts, err)
			}
			if strings.ContainsAny(to, "%!\"[]") || strings.HasSuffix(to, ".") || strings.Count(to, "@") != 1 {
				t.Fatalf("%q with a routing form accepted", to)
			}
			acct := accts[0]
			if !strings.EqualFold(to[strings.IndexByte(to, '@')+1:], acct[strings.IndexByte(acct, '@')+1:]) {
				// must be a child of the account's domain
				d, _ := lookupDomain(to[strings.IndexByte(to, '@')+1:])
				if d.Parent == "" {
					t.Fatalf("%q accepted for %q across domains", to, acct)
				}
			}
		case rcptNoSuchUser, rcptRemote, rcptRouting, rcptTooLong:
			if err == nil || accts != nil {
				t.Fatalf("%q refused (%d) without an error or with an account", to, class)
			}
			if (class == rcptTooLong) != errors.Is(err, address.ErrTooLong) {
				t.Fatalf("%q (%d octets) refused as %d: %v", to, len(to), class, err)
			}
		default:
			t.Fatalf("%q: unexpected class %d (%v)", to, class, err)
		}
	})
}

// FuzzReceivedHeader checks that no client-supplied HELO or recipient can
// break the header: it stays one folded header field of printable ASCII.
func FuzzReceivedHeader(f *testing.F) {
	f.Add("client.example", "info@example.com", "01ABC")
	f.Add("evil\r\nX-Injected: yes", "a>b;c@example.com", "")
	f.Add("", "", "(x)")
	f.Fuzz(func(t *testing.T, helo, rcpt, id string) {
		h := receivedHeader(receivedInfo{Helo: helo, IP: "192.0.2.1", Hostname: "mx.example.com", QueueID: id, For: rcpt,
			Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
		if !bytes.HasPrefix(h, []byte("Received: from ")) || !bytes.HasSuffix(h, []byte("\r\n")) {
			t.Fatalf("malformed header %q", h)
		}
		lines := bytes.Split(h[:len(h)-2], []byte("\r\n"))
		for i, l := range lines {
			if i > 0 && l[0] != '\t' {
				t.Fatalf("line %d is not a continuation: %q", i, h)
			}
			for _, c := range l {
				if (c < ' ' && c != '\t') || c >= 0x7f {
					t.Fatalf("control or non-ASCII byte %#x in %q", c, h)
				}
			}
		}
		if bytes.Count(h, []byte(";")) != 1 {
			t.Fatalf("client data added a ';': %q", h)
		}
	})
}

// FuzzLoginServer drives the LOGIN mechanism with arbitrary responses: it
// never panics, asks at most two questions, and validates exactly the
// user and password it was given.
func FuzzLoginServer(f *testing.F) {
	f.Add([]byte("user"), []byte("pass"), true)
	f.Add([]byte(""), []byte(""), false)
	f.Add(bytes.Repeat([]byte("x"), 600), []byte("p"), true)
	f.Fuzz(func(t *testing.T, user, pass []byte, ir bool) {
		var gotUser, gotPass string
		calls := 0
		s := newLoginServer(func(u, p string) error { calls++; gotUser, gotPass = u, p; return nil })
		var first []byte
		if ir {
			first = user
			if first == nil {
				first = []byte{}
			}
		}
		steps := [][]byte{first}
		if !ir {
			steps = append(steps, user)
		}
		steps = append(steps, pass, []byte("extra"))
		done := false
		for i, r := range steps {
			_, d, err := s.Next(r)
			if d {
				done = true
				if err == nil && (gotUser != string(user) || gotPass != string(pass)) {
					t.Fatalf("validated %q/%q, want %q/%q", gotUser, gotPass, user, pass)
				}
				if i < len(steps)-2 && err == nil {
					t.Fatalf("finished early at step %d", i)
				}
				break
			}
		}
		if !done {
			t.Fatal("LOGIN never finished")
		}
		if calls > 1 {
			t.Fatal("validated more than once")
		}
	})
}

func TestReceivedHeaderFormat(t *testing.T) {
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", 9*3600))
	got := string(receivedHeader(receivedInfo{Helo: "client.example", IP: "2001:db8::1", Hostname: "mx.example.com",
		TLS: true, Auth: true, QueueID: "06H10DY5VH2V9CJW", For: "info@example.com", Date: date}))
	want := "Received: from client.example ([IPv6:2001:db8::1])\r\n\tby mx.example.com with ESMTPSA id 06H10DY5VH2V9CJW\r\n\tfor <info@example.com>;\r\n\tFri, 02 Jan 2026 03:04:05 +0900\r\n"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	got = string(receivedHeader(receivedInfo{Helo: "a (b); c", IP: "192.0.2.1", Hostname: "mx.example.com", QueueID: "X", Date: date}))
	want = "Received: from a??b???c ([192.0.2.1])\r\n\tby mx.example.com with ESMTP id X;\r\n\tFri, 02 Jan 2026 03:04:05 +0900\r\n"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}
