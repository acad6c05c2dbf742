package smtpd

import (
	"strings"
	"testing"

	"yubin/internal/sendlimit"
	"yubin/internal/testutil"
)

// limitWarnings returns, per account named, how many sending limit
// warnings admin@example.com has about it.
func limitWarnings(t *testing.T, e *testEnv) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range e.inbox(userAdmin) {
		text := testutil.MessageText(t, m)
		for _, a := range []string{userBob, userInfo, userAdmin} {
			if strings.Contains(text, "The account "+a+" has reached its sending limit") {
				out[a]++
			}
		}
	}
	return out
}

// Past its hourly limits an account gets 451 4.7.0, at MAIL (messages) or
// RCPT (recipients), and the domain's admins one warning about it.
func TestSendLimit(t *testing.T) {
	e := newEnv(t, envOptions{cfg: Config{SendLimit: sendlimit.New(sendlimit.Limits{Messages: 3, Recipients: 5})}, notify: true})
	login := func(user string) *rawClient {
		c := dialRawTLS(t, e.subs, e.client)
		c.cmd("EHLO laptop", 250, "")
		c.cmd("AUTH PLAIN "+plainIR(user, testPassword), 235, "2.0.0")
		return c
	}
	bob := login(userBob)
	for i := range 3 {
		bob.cmd("MAIL FROM:<bob@example.com>", 250, "")
		bob.cmd("RCPT TO:<info@example.com>", 250, "")
		bob.data(testMessage("message "+string(rune('1'+i))), 250, "2.0.0")
	}
	if text := bob.cmd("MAIL FROM:<bob@example.com>", 451, "4.7.0"); text != "4.7.0 Sending rate limit reached; try again later" {
		t.Errorf("reply %q", text)
	}
	bob.cmd("MAIL FROM:<bob@example.com>", 451, "4.7.0")
	// Another session of the account: the same.
	login(userBob).cmd("MAIL FROM:<bob@example.com>", 451, "4.7.0")
	if n := len(e.inbox(userInfo)); n != 3 {
		t.Errorf("info has %d messages, want 3", n)
	}
	if w := limitWarnings(t, e); w[userBob] != 1 || len(w) != 1 {
		t.Errorf("warnings %v, want one about bob", w)
	}
	if n := len(e.inbox(userBob)); n != 0 {
		t.Errorf("bob (no admin) has %d messages", n)
	}

	// info's recipients: the 6th within the hour is refused, the message
	// goes to the 5 accepted.
	info := login(userInfo)
	info.cmd("MAIL FROM:<info@example.com>", 250, "")
	for _, r := range []string{userBob, userAdmin, userCarol, "info@sales.example.com", userBob} {
		info.cmd("RCPT TO:<"+r+">", 250, "")
	}
	info.cmd("RCPT TO:<admin@child.example.com>", 451, "4.7.0")
	info.data(testMessage("to five"), 250, "2.0.0")
	info.cmd("MAIL FROM:<info@example.com>", 451, "4.7.0")
	if w := limitWarnings(t, e); w[userBob] != 1 || w[userInfo] != 1 || len(w) != 2 {
		t.Errorf("warnings %v, want one about bob and one about info", w)
	}
	// Port 25 is not limited.
	for range 4 {
		inbound(t, e, []string{userBob}, []byte(testMessage("inbound")), 250, "2.0.0")
	}
}
