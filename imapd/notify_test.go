package imapd

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"yubin/internal/testutil"
)

// notifyLogin is a raw session of info@example.com.
func notifyLogin(t *testing.T, e *env) *raw {
	t.Helper()
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	return r
}

// wantLine reads the next line, which must match pattern.
func (r *raw) wantLine(pattern string) string {
	r.T.Helper()
	l := r.Line()
	if !regexp.MustCompile(pattern).MatchString(l) {
		r.T.Fatalf("got %q, want %s", l, pattern)
	}
	return l
}

// noneLike fails when a line matches pattern.
func noneLike(t *testing.T, lines []string, pattern string) {
	t.Helper()
	re := regexp.MustCompile(pattern)
	for _, l := range lines {
		if re.MatchString(l) {
			t.Fatalf("unexpected %q in %q", l, lines)
		}
	}
}

// A delivery to a watched mailbox that is not selected comes as STATUS
// between commands; unwatched mailboxes and unwatched events stay quiet.
func TestNotifyStatusOnDelivery(t *testing.T) {
	e := newEnv(t, Config{})
	r := notifyLogin(t, e)
	r.ok("CREATE Work")
	r.ok("CREATE Other")
	if u := r.ok("CAPABILITY"); !strings.Contains(u[0], " NOTIFY") {
		t.Fatalf("capabilities %q", u)
	}
	r.ok("NOTIFY SET (MAILBOXES Work (MessageNew MessageExpunge))")
	e.deliver(t, "info@example.com", "Other", msg1) // not watched: must not show
	e.deliver(t, "info@example.com", "Work", msg1)
	r.wantLine(`^\* STATUS "?Work"? \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)$`)

	// Another session flags (not watched) and expunges (watched): only
	// the expunge is told.
	o := notifyLogin(t, e)
	o.ok("SELECT Work")
	o.ok(`STORE 1 +FLAGS (\Deleted)`)
	o.ok("EXPUNGE")
	r.wantLine(`^\* STATUS "?Work"? \(MESSAGES 0 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 0\)$`)

	// NOTIFY SET replaces what was asked for.
	r.ok("NOTIFY SET (SUBTREE Other (MessageNew MessageExpunge FlagChange))")
	e.deliver(t, "info@example.com", "Work", msg1)
	e.deliver(t, "info@example.com", "Other", msg1)
	r.wantLine(`^\* STATUS "?Other"? \(MESSAGES 2 UIDNEXT 3 UIDVALIDITY \d+ UNSEEN 2 HIGHESTMODSEQ \d+\)$`)
	o.ok("SELECT Other")
	o.ok(`STORE 1 +FLAGS (\Seen)`)
	r.wantLine(`^\* STATUS "?Other"? \(UIDVALIDITY \d+ UNSEEN 1 HIGHESTMODSEQ \d+\)$`)
}

// NOTIFY SET STATUS sends the watched mailboxes' STATUS before its OK, but
// not the selected mailbox's; NOTIFY NONE stops the notifications.
func TestNotifySetStatusAndNone(t *testing.T) {
	e := newEnv(t, Config{})
	e.deliver(t, "info@example.com", "", msg1)
	r := notifyLogin(t, e)
	r.ok("CREATE Work")
	r.ok("SELECT INBOX")
	// Every mailbox but the selected one (the account has Drafts, Junk,
	// Sent and Trash too).
	u := r.ok("NOTIFY SET STATUS (PERSONAL (MessageNew MessageExpunge))")
	noneLike(t, u, `INBOX`)
	n := 0
	for _, l := range u {
		if regexp.MustCompile(`^\* STATUS "?Work"? \(MESSAGES 0 UIDNEXT 1 UIDVALIDITY \d+ UNSEEN 0\)$`).MatchString(l) {
			n++
		}
	}
	if n != 1 || len(u) != 5 {
		t.Fatalf("NOTIFY SET STATUS: %q", u)
	}
	u = r.ok("NOTIFY SET STATUS (MAILBOXES (Work INBOX) (FlagChange))")
	if len(u) != 1 || !regexp.MustCompile(`^\* STATUS "?Work"? \(UIDVALIDITY \d+ UNSEEN 0 HIGHESTMODSEQ \d+\)$`).MatchString(u[0]) {
		t.Fatalf("NOTIFY SET STATUS FlagChange: %q", u)
	}
	r.ok("NOTIFY NONE")
	e.deliver(t, "info@example.com", "Work", msg1)
	// The delivery was published before NOOP was sent: a STATUS would
	// come before the second NOOP's reply at the latest.
	u = append(r.ok("NOOP"), r.ok("NOOP")...)
	noneLike(t, u, `STATUS`)
}

// IDLE wakes for NOTIFY's STATUS of another mailbox, and with SELECTED
// for the selected mailbox's new mail, with MessageNew's fetch
// attributes; the selected mailbox gets no STATUS.
func TestNotifyIdle(t *testing.T) {
	e := newEnv(t, Config{})
	r := notifyLogin(t, e)
	r.ok("CREATE Work")
	r.ok("SELECT INBOX")
	r.ok("NOTIFY SET (SELECTED (MessageNew (UID FLAGS RFC822.SIZE) MessageExpunge)) (PERSONAL (MessageNew MessageExpunge))")
	r.Send("i1 IDLE\r\n")
	r.wantLine(`^\+ `)
	e.deliver(t, "info@example.com", "Work", msg1)
	r.wantLine(`^\* STATUS "?Work"? \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)$`)
	e.deliver(t, "info@example.com", "", msg1)
	r.wantLine(`^\* 1 EXISTS$`)
	r.wantLine(`^\* 1 RECENT$`)
	r.wantLine(`^\* 1 FETCH \(UID 1 FLAGS \(\\Recent\) RFC822.SIZE \d+\)$`)
	r.Send("DONE\r\n")
	r.wantLine(`^i1 OK`)

	// Between commands too.
	e.deliver(t, "info@example.com", "", msg1)
	r.wantLine(`^\* 2 EXISTS$`)
	r.wantLine(`^\* 2 RECENT$`)
	r.wantLine(`^\* 2 FETCH \(UID 2 FLAGS \(\\Recent\) RFC822.SIZE \d+\)$`)

	// Without SELECTED, IDLE tells nothing of the selected mailbox (RFC
	// 5465 4), but still of the others.
	r.ok("NOTIFY SET (PERSONAL (MessageNew MessageExpunge))")
	r.Send("i2 IDLE\r\n")
	r.wantLine(`^\+ `)
	e.deliver(t, "info@example.com", "", msg1)
	e.deliver(t, "info@example.com", "Work", msg1)
	r.wantLine(`^\* STATUS "?Work"? \(MESSAGES 2 `)
	r.Send("DONE\r\n")
	// The command's end tells of INBOX's new message.
	u, st := r.until("i2")
	if !strings.HasPrefix(st, "OK") || len(u) == 0 || u[0] != "* 3 EXISTS" {
		t.Fatalf("IDLE end: %q %s", u, st)
	}
}

// SELECTED-DELAYED holds expunges back for a command that allows them,
// but tells of new mail meanwhile.
func TestNotifySelectedDelayed(t *testing.T) {
	e := newEnv(t, Config{})
	e.deliver(t, "info@example.com", "", msg1)
	e.deliver(t, "info@example.com", "", msg1)
	r := notifyLogin(t, e)
	r.ok("SELECT INBOX")
	r.ok("NOTIFY SET (SELECTED-DELAYED (MessageNew MessageExpunge FlagChange))")
	o := notifyLogin(t, e)
	o.ok("SELECT INBOX")
	o.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	r.wantLine(`^\* 1 FETCH \(UID 1 FLAGS \(\\Deleted \\Recent\)\)$`)
	o.ok("EXPUNGE")
	e.deliver(t, "info@example.com", "", msg1)
	r.wantLine(`^\* 3 EXISTS$`) // the expunged message still counts
	r.wantLine(`^\* 3 RECENT$`)
	u := r.ok("NOOP")
	if len(u) != 1 || u[0] != "* 1 EXPUNGE" {
		t.Fatalf("NOOP: %q", u)
	}
}

// Bad filters and events: BAD for what the grammar or RFC 5465 forbids, NO
// [BADEVENT (the supported events)] for events the server does not offer.
func TestNotifyErrors(t *testing.T) {
	e := newEnv(t, Config{})
	r := dialRaw(t, e.implicit, true)
	if _, st := r.cmd("NOTIFY NONE"); !strings.HasPrefix(st, "BAD") {
		t.Fatalf("NOTIFY before login: %s", st)
	}
	r.login("info@example.com")
	const badEvent = "NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)] "
	for _, tc := range []struct{ args, want string }{
		{"NONE", "OK"},
		{"NONE extra", "BAD"},
		{"", "BAD"},
		{"FOO", "BAD"},
		{"SET", "BAD"},
		{"SET STATUS", "BAD"},
		{"SET NOTSTATUS (PERSONAL (MessageNew MessageExpunge))", "BAD"},
		{"SET (PERSONAL (MessageNew MessageExpunge))", "OK"},
		{"SET (PERSONAL (MessageNew MessageExpunge)) (INBOXES NONE) (SUBSCRIBED (FlagChange))", "OK"},
		{"SET (SUBTREE (A B) (MailboxName)) (MAILBOXES \"x y\" (SubscriptionChange))", "OK"},
		{"SET (SELECTED (MessageNew (UID BODY.PEEK[HEADER.FIELDS (FROM)]) MessageExpunge FlagChange))", "OK"},
		{"SET (SELECTED NONE)", "OK"},
		{"SET (BOGUS (MessageNew MessageExpunge))", "BAD"},
		{"SET (PERSONAL ())", "BAD"},
		{"SET (PERSONAL (MessageNew MessageExpunge)", "BAD"},
		{"SET (PERSONAL MessageNew)", "BAD"},
		{"SET (SUBTREE (MessageNew))", "BAD"},
		{"SET (MAILBOXES () (MessageNew))", "BAD"},
		{"SET (SELECTED (MessageNew))", "BAD"},
		{"SET (SELECTED (MessageExpunge))", "BAD"},
		{"SET (SELECTED (FlagChange))", "BAD"},
		{"SET (SELECTED (MailboxName))", "BAD"},
		{"SET (SELECTED (MessageNew (BOGUS) MessageExpunge))", "BAD"},
		{"SET (SELECTED (MessageNew () MessageExpunge))", "BAD"},
		{"SET (SELECTED (MessageNew MessageExpunge)) (SELECTED-DELAYED (MessageNew MessageExpunge))", "BAD"},
		{"SET (PERSONAL (MessageNew MessageExpunge AnnotationChange))", badEvent},
		{"SET (SELECTED (MessageNew MessageExpunge AnnotationChange))", badEvent},
		{"SET (PERSONAL (MailboxMetadataChange))", badEvent},
		{"SET (PERSONAL (ServerMetadataChange))", badEvent},
		{"SET (PERSONAL (NoSuchEvent))", badEvent},
		{"SET (SELECTED (MessageNew MessageExpunge NoSuchEvent))", badEvent},
	} {
		_, st := r.cmd("NOTIFY %s", tc.args)
		if !strings.HasPrefix(st, tc.want) {
			t.Errorf("NOTIFY %s: %s, want %s", tc.args, st, tc.want)
		}
	}
}

// MailboxName and SubscriptionChange: LIST for what other sessions of
// the account do to the mailbox list; the session that does it hears
// nothing.
func TestNotifyMailboxName(t *testing.T) {
	e := newEnv(t, Config{})
	r := notifyLogin(t, e)
	r.ok("NOTIFY SET (PERSONAL (MailboxName SubscriptionChange))")
	if u := r.ok("CREATE Mine"); len(u) != 0 {
		t.Fatalf("own CREATE: %q", u)
	}
	o := notifyLogin(t, e)
	o.ok("CREATE Foo") // CREATE does not subscribe
	r.wantLine(`^\* LIST \(\\HasNoChildren\) "/" "?Foo"?$`)
	o.ok("SUBSCRIBE Foo")
	r.wantLine(`^\* LIST \(\\HasNoChildren \\Subscribed\) "/" "?Foo"?$`)
	o.ok("UNSUBSCRIBE Foo")
	r.wantLine(`^\* LIST \(\\HasNoChildren\) "/" "?Foo"?$`)
	o.ok("RENAME Foo Bar")
	r.wantLine(`^\* LIST \(\\HasNoChildren\) "/" "?Bar"? \("OLDNAME" \("?Foo"?\)\)$`)
	o.ok("SUBSCRIBE Bar")
	r.wantLine(`^\* LIST \(\\HasNoChildren \\Subscribed\) "/" "?Bar"?$`)
	o.ok("DELETE Bar")
	r.wantLine(`^\* LIST \(\\NonExistent\) "/" "?Bar"?$`)

	// Only the watched names.
	r.ok("NOTIFY SET (SUBTREE Work (MailboxName))")
	o.ok("CREATE Play")
	o.ok("CREATE Work/2024")
	// Work is created with it; Play is not watched.
	r.wantLine(`^\* LIST \(\\HasChildren\) "/" "?Work"?$`)
	r.wantLine(`^\* LIST \(\\HasNoChildren\) "/" "?Work/2024"?$`)
}

// SUBSCRIBED follows the subscriptions as they change (RFC 5465 6.4).
func TestNotifySubscribed(t *testing.T) {
	e := newEnv(t, Config{})
	r := notifyLogin(t, e)
	r.ok("CREATE Work")
	r.ok("CREATE Other")
	r.ok("SUBSCRIBE Work")
	r.ok("SUBSCRIBE Other")
	r.ok("NOTIFY SET (SUBSCRIBED (MessageNew MessageExpunge))")
	e.deliver(t, "info@example.com", "Work", msg1)
	r.wantLine(`^\* STATUS "?Work"? \(MESSAGES 1 `)
	r.ok("UNSUBSCRIBE Work")
	e.deliver(t, "info@example.com", "Work", msg1)
	e.deliver(t, "info@example.com", "Other", msg1)
	r.wantLine(`^\* STATUS "?Other"? \(MESSAGES 1 `)
}

// A session that waits for its next command while NOTIFY watches gets BYE
// at shutdown, as any other.
func TestNotifyShutdown(t *testing.T) {
	e := newEnv(t, Config{})
	r := notifyLogin(t, e)
	r.ok("SELECT INBOX")
	r.ok("NOTIFY SET (SELECTED (MessageNew MessageExpunge)) (PERSONAL (MessageNew MessageExpunge MailboxName))")
	e.deliver(t, "info@example.com", "Junk", msg1)
	r.wantLine(`^\* STATUS "?Junk"? `) // it waits with NOTIFY's reader running
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	testutil.Must(t, e.srv.Shutdown(ctx))
	r.wantLine(`^\* BYE`)
}
