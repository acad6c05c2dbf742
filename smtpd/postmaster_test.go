package smtpd

import (
	"bytes"
	"testing"

	"yubin/store"
)

// postmaster@ and abuse@ every domain of ours reach the domain's admins
// (the parent's for a child domain) when no account has the name; every
// account of a domain without an admin; the account itself when it
// exists; and nobody (550) on a domain without accounts.
func TestPostmasterAndAbuse(t *testing.T) {
	e := newEnv(t, envOptions{noSync: true})
	ctx := t.Context()
	if err := e.store.AddDomain(ctx, "empty.test", ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rcpt string
		gets []string // accounts whose INBOX gets it; none: 550 5.1.1
	}{
		{"postmaster@example.com", []string{userAdmin}},
		{"PostMaster@Example.COM", []string{userAdmin}},
		{"abuse@example.com", []string{userAdmin}},
		{"ABUSE@child.example.com", []string{userAdmin}},
		{"postmaster@sales.example.com", []string{userAdmin}},
		{"postmaster@other.test", []string{userCarol}}, // no admin there: every account
		{"abuse@other.test", []string{userCarol}},
		{"postmaster@empty.test", nil},
		{"hostmaster@example.com", nil}, // only postmaster and abuse
	} {
		t.Run(c.rcpt, func(t *testing.T) {
			before := map[string]int{}
			for _, a := range []string{userAdmin, userInfo, userBob, userCarol} {
				before[a] = len(e.inbox(a))
			}
			cl := dialRaw(t, e.mx)
			cl.cmd("EHLO mx.remote.test", 250, "")
			cl.cmd("MAIL FROM:<reporter@remote.test>", 250, "")
			if c.gets == nil {
				cl.cmd("RCPT TO:<"+c.rcpt+">", 550, "5.1.1")
				return
			}
			cl.cmd("RCPT TO:<"+c.rcpt+">", 250, "")
			cl.data(testMessage("to "+c.rcpt), 250, "2.0.0")
			for _, a := range []string{userAdmin, userInfo, userBob, userCarol} {
				want := before[a]
				for _, g := range c.gets {
					if g == a {
						want++
					}
				}
				got := e.inbox(a)
				if len(got) != want {
					t.Fatalf("%s has %d messages, want %d", a, len(got), want)
				}
				if want > before[a] && !bytes.Contains(got[len(got)-1], []byte("Subject: to "+c.rcpt)) {
					t.Fatalf("%s got something else", a)
				}
			}
		})
	}

	// An account called abuse@ gets its own mail; postmaster@ still goes
	// to the admins.
	if err := e.store.AddAccount(ctx, store.Account{Address: "abuse@example.com", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	admin := len(e.inbox(userAdmin))
	inbound(t, e, []string{"Abuse@Example.com"}, []byte(testMessage("complaint")), 250, "2.0.0")
	inbound(t, e, []string{"postmaster@example.com", "abuse@child.example.com"}, []byte(testMessage("both")), 250, "2.0.0")
	if got := e.inbox("abuse@example.com"); len(got) != 2 || !bytes.Contains(got[0], []byte("Subject: complaint")) {
		t.Fatalf("abuse@ has %d messages", len(got))
	}
	if got := e.inbox(userAdmin); len(got) != admin+1 || !bytes.Contains(got[len(got)-1], []byte("Subject: both")) {
		t.Fatalf("admin has %d new messages, want 1 (postmaster)", len(got)-admin)
	}

	// A second admin whose mailbox cannot take the declared size is left
	// out; when no admin has room, 452.
	if err := e.store.AddAccount(ctx, store.Account{Address: "boss@example.com", Role: store.RoleAdmin, Quota: 500, PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	cl := dialRaw(t, e.mx)
	cl.cmd("EHLO mx.remote.test", 250, "")
	cl.cmd("MAIL FROM:<reporter@remote.test> SIZE=1000", 250, "")
	cl.cmd("RCPT TO:<postmaster@example.com>", 250, "")
	cl.data(testMessage("room"), 250, "2.0.0")
	if got := e.inbox(userAdmin); !bytes.Contains(got[len(got)-1], []byte("Subject: room")) || len(e.inbox("boss@example.com")) != 0 {
		t.Fatal("postmaster@ did not reach only the admin with room")
	}
	if err := e.store.SetQuota(ctx, userAdmin, 500); err != nil {
		t.Fatal(err)
	}
	cl.cmd("MAIL FROM:<reporter@remote.test> SIZE=1000", 250, "")
	cl.cmd("RCPT TO:<postmaster@example.com>", 452, "4.2.2")
	cl.cmd("RSET", 250, "")

	// RFC 5321 also names "RCPT TO:<Postmaster>" without a domain. go-smtp
	// refuses it as a syntax error before Yubin sees it (its path parser
	// requires an @domain), so it cannot be accepted yet. When go-smtp
	// lets it through, this fails: then map it in recipientAccounts.
	cl.cmd("MAIL FROM:<reporter@remote.test>", 250, "")
	cl.cmd("RCPT TO:<Postmaster>", 501, "5.5.2")
	e.verify()
}
