package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"yubin/internal/testutil"
	"yubin/store"
)

const msg1 = "From: Alice <alice@example.org>\r\nTo: info@example.com\r\nSubject: first\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nHello world.\r\nSecond line.\r\n"

const mime1 = "From: bob@example.org\r\nSubject: =?UTF-8?B?5pel5pys6Kqe?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n" +
	"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nthe needle is here\r\n" +
	"--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--XX--\r\n"

func TestPlainPortSTARTTLS(t *testing.T) {
	e := newEnv(t, Config{})
	r := dialRaw(t, e.plain, false)
	u, st := r.cmd("CAPABILITY")
	if !strings.Contains(u[0], "STARTTLS") || !strings.Contains(u[0], "LOGINDISABLED") || strings.Contains(u[0], "AUTH=") || !strings.HasPrefix(st, "OK") {
		t.Fatalf("capabilities before TLS: %q %q", u, st)
	}
	if _, st := r.cmd("LOGIN info@example.com pw-info"); !strings.HasPrefix(st, "NO [PRIVACYREQUIRED]") {
		t.Fatalf("LOGIN before TLS: %q", st)
	}
	if _, st := r.cmd("AUTHENTICATE PLAIN"); !strings.HasPrefix(st, "NO [PRIVACYREQUIRED]") {
		t.Fatalf("AUTHENTICATE before TLS: %q", st)
	}
	if _, st := r.cmd("SELECT INBOX"); !strings.HasPrefix(st, "BAD") {
		t.Fatalf("SELECT before TLS: %q", st)
	}
	r.ok("NOOP")
	r.starttls()
	u, _ = r.cmd("CAPABILITY")
	if strings.Contains(u[0], "STARTTLS") || strings.Contains(u[0], "LOGINDISABLED") || !strings.Contains(u[0], "AUTH=PLAIN") {
		t.Fatalf("capabilities after TLS: %q", u)
	}
	_, st = r.cmd("LOGIN info@example.com pw-info")
	for _, c := range []string{"IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "NAMESPACE", "QUOTA", "QUOTA=RES-STORAGE", "APPENDLIMIT=52428800", "STATUS=SIZE"} {
		if !strings.Contains(st, " "+c+" ") && !strings.Contains(st, " "+c+"]") {
			t.Errorf("LOGIN reply lacks %s: %q", c, st)
		}
	}
	u = r.ok("CAPABILITY")
	if !strings.Contains(u[0], " QUOTA ") {
		t.Errorf("CAPABILITY after login lacks QUOTA: %q", u)
	}
	if _, st := r.cmd("STARTTLS"); strings.HasPrefix(st, "OK") {
		t.Fatal("STARTTLS twice")
	}
}

func TestSTARTTLSInjection(t *testing.T) {
	e := newEnv(t, Config{})
	r := dialRaw(t, e.plain, false)
	// A command pipelined after STARTTLS must not survive into TLS.
	r.Send("a STARTTLS\r\nb LOGIN info@example.com pw-info\r\n")
	if l := r.Line(); !strings.HasPrefix(l, "a OK") {
		t.Fatal(l)
	}
	r.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.R.ReadString('\n'); err == nil {
		t.Fatal("connection still open after pipelined STARTTLS")
	}
}

func TestInsecureAuthAllowed(t *testing.T) {
	e := newEnv(t, Config{AllowInsecureAuth: true})
	r := dialRaw(t, e.plain, false)
	u, _ := r.cmd("CAPABILITY")
	if strings.Contains(u[0], "LOGINDISABLED") || !strings.Contains(u[0], "STARTTLS") {
		t.Fatalf("capabilities: %q", u)
	}
	r.login("info@example.com")
	r.ok("SELECT INBOX")
	if u := r.ok("GETQUOTAROOT INBOX"); len(u) != 2 {
		t.Fatalf("GETQUOTAROOT: %q", u)
	}
}

func TestAuthenticatePlain(t *testing.T) {
	e := newEnv(t, Config{})
	c, err := imapclient.DialTLS(e.implicit, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	testutil.Must(t, err)
	defer c.Close()
	if err := c.Authenticate(sasl.NewPlainClient("", "info@example.com", "wrong")); err == nil {
		t.Fatal("wrong password accepted")
	}
	testutil.Must(t, c.Authenticate(sasl.NewPlainClient("", "INFO@Example.com", "pw-info")))
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	// SASL-IR and a multi-step exchange with the raw client.
	r := dialRaw(t, e.implicit, true)
	if _, st := r.cmd("LOGIN info@example.com nope"); !strings.HasPrefix(st, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("bad LOGIN: %q", st)
	}
	r.Send("a AUTHENTICATE PLAIN\r\n")
	if l := r.Line(); !strings.HasPrefix(l, "+") {
		t.Fatal(l)
	}
	r.Send("AGJvYkBleGFtcGxlLmNvbQBwdy1ib2I=\r\n") // \0bob@example.com\0pw-bob
	if _, st := r.until("a"); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}
}

func TestCommands(t *testing.T) {
	e := newEnv(t, Config{})
	d1 := e.deliver(t, "info@example.com", "", msg1)
	e.deliver(t, "info@example.com", "", mime1)
	c := e.login(t, "info@example.com", nil)

	// NAMESPACE, LIST with SPECIAL-USE, LSUB.
	ns, err := c.Namespace().Wait()
	testutil.Must(t, err)
	if len(ns.Personal) != 1 || ns.Personal[0].Delim != '/' {
		t.Fatalf("namespace %+v", ns)
	}
	testutil.Must(t, c.Create("Work/2024", nil).Wait())
	list, err := c.List("", "*", nil).Collect()
	testutil.Must(t, err)
	attrs := map[string][]imap.MailboxAttr{}
	for _, l := range list {
		attrs[l.Mailbox] = l.Attrs
	}
	if !slices.Contains(attrs["Sent"], imap.MailboxAttrSent) || !slices.Contains(attrs["Trash"], imap.MailboxAttrTrash) ||
		!slices.Contains(attrs["Junk"], imap.MailboxAttrJunk) || !slices.Contains(attrs["Drafts"], imap.MailboxAttrDrafts) {
		t.Fatalf("special-use: %v", attrs)
	}
	if !slices.Contains(attrs["Work"], imap.MailboxAttrHasChildren) || len(attrs) != 7 {
		t.Fatalf("LIST: %v", attrs)
	}
	list, err = c.List("", "%", nil).Collect()
	testutil.Must(t, err)
	if len(list) != 6 {
		t.Fatalf("LIST %%: %d", len(list))
	}
	list, err = c.List("", "*", &imap.ListOptions{SelectSpecialUse: true}).Collect()
	testutil.Must(t, err)
	if len(list) != 4 {
		t.Fatalf("LIST (SPECIAL-USE): %d", len(list))
	}
	testutil.Must(t, c.Unsubscribe("Junk").Wait())
	list, err = c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	testutil.Must(t, err)
	for _, l := range list {
		if l.Mailbox == "Junk" {
			t.Fatal("unsubscribed Junk in LIST (SUBSCRIBED)")
		}
	}
	testutil.Must(t, c.Subscribe("Junk").Wait())

	// RENAME, DELETE.
	testutil.Must(t, c.Rename("Work/2024", "Work/2025", nil).Wait())
	if err := c.Delete("Work").Wait(); err == nil || !strings.Contains(err.Error(), "HASCHILDREN") {
		t.Fatalf("DELETE with children: %v", err)
	}
	testutil.Must(t, c.Delete("Work/2025").Wait())
	testutil.Must(t, c.Delete("Work").Wait())
	if err := c.Delete("INBOX").Wait(); err == nil {
		t.Fatal("DELETE INBOX")
	}
	if err := c.Create("Sent", nil).Wait(); err == nil || !strings.Contains(err.Error(), "ALREADYEXISTS") {
		t.Fatalf("CREATE existing: %v", err)
	}

	// STATUS with SIZE.
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true, Size: true}).Wait()
	testutil.Must(t, err)
	if *st.NumMessages != 2 || *st.NumUnseen != 2 || st.UIDValidity != d1.UIDValidity || *st.Size != int64(len(msg1)+len(mime1)) || st.UIDNext != 3 {
		t.Fatalf("STATUS %+v", st)
	}

	// APPEND with flags and date: APPENDUID.
	date := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	app := c.Append("Drafts", int64(len(msg1)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDraft, "$Label1"}, Time: date})
	io.WriteString(app, msg1)
	testutil.Must(t, app.Close())
	ad, err := app.Wait()
	testutil.Must(t, err)
	if ad.UID != 1 || ad.UIDValidity == 0 {
		t.Fatalf("APPENDUID %+v", ad)
	}
	if err := appendMsg(c, "Nope", "x\r\n"); err == nil || !strings.Contains(err.Error(), "TRYCREATE") {
		t.Fatalf("APPEND to missing mailbox: %v", err)
	}

	// SELECT, FETCH.
	sel, err := c.Select("INBOX", nil).Wait()
	testutil.Must(t, err)
	if sel.NumMessages != 2 || sel.UIDValidity != d1.UIDValidity || sel.UIDNext != 3 {
		t.Fatalf("SELECT %+v", sel)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{Flags: true, InternalDate: true, RFC822Size: true, Envelope: true, UID: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}).Collect()
	testutil.Must(t, err)
	if len(msgs) != 2 || msgs[0].RFC822Size != int64(len(msg1)) || msgs[0].Envelope.Subject != "first" || msgs[0].Envelope.From[0].Host != "example.org" ||
		msgs[0].Envelope.MessageID != "1@example.org" || msgs[0].UID != 1 || msgs[0].InternalDate.IsZero() {
		t.Fatalf("FETCH: %+v", msgs[0])
	}
	if msgs[1].Envelope.Subject != "日本語" {
		t.Fatalf("encoded subject: %q", msgs[1].Envelope.Subject)
	}
	mp, ok := msgs[1].BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || len(mp.Children) != 2 || mp.Subtype != "mixed" {
		t.Fatalf("BODYSTRUCTURE %#v", msgs[1].BodyStructure)
	}
	// BODY.PEEK does not set \Seen; partial ranges; HEADER, TEXT, parts.
	sections := []*imap.FetchItemBodySection{
		{Peek: true},
		{Peek: true, Partial: &imap.SectionPartial{Offset: 6, Size: 5}},
		{Peek: true, Specifier: imap.PartSpecifierHeader},
		{Peek: true, Specifier: imap.PartSpecifierText},
		{Peek: true, Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}},
		{Peek: true, Partial: &imap.SectionPartial{Offset: 100000, Size: 5}},
	}
	got, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: sections}).Collect()
	testutil.Must(t, err)
	hdrEnd := strings.Index(msg1, "\r\n\r\n") + 4
	want := []string{msg1, msg1[6:11], msg1[:hdrEnd], msg1[hdrEnd:], "Subject: first\r\n\r\n", ""}
	for i, s := range sections {
		if b := got[0].FindBodySection(s); string(b) != want[i] {
			t.Errorf("section %d: %q, want %q", i, b, want[i])
		}
	}
	if slices.Contains(got[0].Flags, imap.FlagSeen) {
		t.Fatal("PEEK set \\Seen")
	}
	part := &imap.FetchItemBodySection{Part: []int{1}}
	got, err = c.Fetch(imap.SeqSetNum(2), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{part}}).Collect()
	testutil.Must(t, err)
	if b := got[0].FindBodySection(part); string(b) != "the needle is here" {
		t.Fatalf("BODY[1]: %q", b)
	}
	if !slices.Contains(got[0].Flags, imap.FlagSeen) {
		t.Fatalf("BODY[1] did not set \\Seen: %v", got[0].Flags)
	}

	// STORE, UID STORE, SEARCH.
	fl, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged, "$Work"}}, nil).Collect()
	testutil.Must(t, err)
	if len(fl) != 1 || !slices.Contains(fl[0].Flags, imap.FlagFlagged) || !slices.Contains(fl[0].Flags, "$Work") {
		t.Fatalf("STORE: %+v", fl)
	}
	testutil.Must(t, c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: []imap.Flag{"$Work"}}, nil).Close())
	search := func(cr *imap.SearchCriteria) []uint32 {
		t.Helper()
		d, err := c.Search(cr, nil).Wait()
		testutil.Must(t, err)
		return d.AllSeqNums()
	}
	for _, c := range []struct {
		cr   *imap.SearchCriteria
		want []uint32
	}{
		{&imap.SearchCriteria{}, []uint32{1, 2}},
		{&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}}, []uint32{1}},
		{&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, []uint32{1}},
		{&imap.SearchCriteria{Flag: []imap.Flag{"$Work"}}, nil},
		{&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "FIRST"}}}, []uint32{1}},
		{&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "alice"}}}, []uint32{1}},
		{&imap.SearchCriteria{Body: []string{"needle"}}, []uint32{2}},
		{&imap.SearchCriteria{Text: []string{"hello WORLD"}}, []uint32{1}},
		{&imap.SearchCriteria{Text: []string{"bob@example.org"}}, []uint32{2}},
		{&imap.SearchCriteria{Larger: int64(len(msg1))}, []uint32{2}},
		{&imap.SearchCriteria{Smaller: int64(len(msg1) + 1)}, []uint32{1}},
		{&imap.SearchCriteria{SentBefore: time.Date(2007, 1, 1, 0, 0, 0, 0, time.UTC)}, []uint32{1}},
		{&imap.SearchCriteria{Since: time.Now().Add(-48 * time.Hour)}, []uint32{1, 2}},
		{&imap.SearchCriteria{Not: []imap.SearchCriteria{{Flag: []imap.Flag{imap.FlagFlagged}}}}, []uint32{2}},
		{&imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Body: []string{"needle"}}, {Flag: []imap.Flag{imap.FlagFlagged}}}}}, []uint32{1, 2}},
		{&imap.SearchCriteria{SeqNum: []imap.SeqSet{imap.SeqSetNum(2)}}, []uint32{2}},
		{&imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(1)}}, []uint32{1}},
	} {
		if got := search(c.cr); !slices.Equal(got, c.want) {
			t.Errorf("SEARCH %+v: %v, want %v", c.cr, got, c.want)
		}
	}
	ud, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	testutil.Must(t, err)
	if uids := ud.AllUIDs(); !slices.Equal(uids, []imap.UID{2}) {
		t.Fatalf("UID SEARCH: %v", uids)
	}

	// COPY (COPYUID), MOVE.
	cd, err := c.Copy(imap.SeqSetNum(1, 2), "Trash").Wait()
	testutil.Must(t, err)
	if cd.UIDValidity == 0 || cd.SourceUIDs.String() != "1:2" || cd.DestUIDs.String() != "1:2" {
		t.Fatalf("COPYUID %+v", cd)
	}
	if _, err := c.Copy(imap.SeqSetNum(1), "Nope").Wait(); err == nil || !strings.Contains(err.Error(), "TRYCREATE") {
		t.Fatalf("COPY to missing: %v", err)
	}
	md, err := c.Move(imap.UIDSetNum(2), "Junk").Wait()
	testutil.Must(t, err)
	if md.DestUIDs.String() != "1" || md.SourceUIDs.String() != "2" {
		t.Fatalf("MOVE %+v", md)
	}
	if mb := c.Mailbox(); mb.NumMessages != 1 {
		t.Fatalf("after MOVE the client sees %d messages", mb.NumMessages)
	}

	// EXPUNGE, UID EXPUNGE.
	testutil.Must(t, c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close())
	exp, err := c.Expunge().Collect()
	testutil.Must(t, err)
	if !slices.Equal(exp, []uint32{1}) {
		t.Fatalf("EXPUNGE %v", exp)
	}
	_, err = c.Select("Trash", nil).Wait()
	testutil.Must(t, err)
	testutil.Must(t, c.Store(imap.SeqSetNum(1, 2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close())
	exp, err = c.UIDExpunge(imap.UIDSetNum(2)).Collect()
	testutil.Must(t, err)
	if !slices.Equal(exp, []uint32{2}) {
		t.Fatalf("UID EXPUNGE %v", exp)
	}
	// CLOSE expunges the rest silently; UNSELECT does not.
	testutil.Must(t, c.UnselectAndExpunge().Wait())
	if m, _ := e.st.Mailbox(t.Context(), "info@example.com", "Trash"); m.Messages != 0 {
		t.Fatalf("Trash after CLOSE: %d", m.Messages)
	}
	// EXAMINE is read-only: no \Seen, no STORE, CLOSE does not expunge.
	_, err = c.Select("Junk", &imap.SelectOptions{ReadOnly: true}).Wait()
	testutil.Must(t, err)
	got, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true, BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	testutil.Must(t, err)
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err == nil {
		t.Fatal("STORE in EXAMINE")
	}
	testutil.Must(t, c.Unselect().Wait())
	if problems, _ := e.st.Verify(t.Context()); len(problems) > 0 {
		t.Fatal(problems)
	}
	testutil.Must(t, c.Logout().Wait())
}

func appendMsg(c *imapclient.Client, box, msg string) error {
	app := c.Append(box, int64(len(msg)), nil)
	io.WriteString(app, msg)
	if err := app.Close(); err != nil {
		return err
	}
	_, err := app.Wait()
	return err
}

func TestQuota(t *testing.T) {
	e := newEnv(t, Config{})
	testutil.Must(t, e.st.SetQuota(t.Context(), "info@example.com", 4096))
	e.deliver(t, "info@example.com", "", msg1)
	c := e.login(t, "info@example.com", nil)
	qr, err := c.GetQuotaRoot("INBOX").Wait()
	testutil.Must(t, err)
	if len(qr) != 1 || qr[0].Root != "" || qr[0].Resources[imap.QuotaResourceStorage].Usage != 1 || qr[0].Resources[imap.QuotaResourceStorage].Limit != 4 {
		t.Fatalf("GETQUOTAROOT %+v", qr)
	}
	q, err := c.GetQuota("").Wait()
	testutil.Must(t, err)
	if q.Resources[imap.QuotaResourceStorage].Limit != 4 {
		t.Fatalf("GETQUOTA %+v", q)
	}
	if _, err := c.GetQuota("other").Wait(); err == nil {
		t.Fatal("GETQUOTA of an unknown root")
	}
	if _, err := c.GetQuotaRoot("Nope").Wait(); err == nil {
		t.Fatal("GETQUOTAROOT of a missing mailbox")
	}
	big := strings.Repeat("x", 5000)
	if err := appendMsg(c, "INBOX", big); err == nil || !strings.Contains(err.Error(), "OVERQUOTA") {
		t.Fatalf("APPEND over quota: %v", err)
	}
	// The refusal comes before the client sends its synchronizing literal
	// (RFC 3501 7.5 lets the server answer instead of "+"); go-imap's
	// client then closes its connection, so the rest goes on a new one
	// (TestAppendRefusedLiterals shows the server's connection goes on).
	c = e.login(t, "info@example.com", nil)
	_, err = c.Select("INBOX", nil).Wait()
	testutil.Must(t, err)
	for i := 0; i < 40; i++ {
		if _, err = c.Copy(imap.SeqSetNum(1), "Trash").Wait(); err != nil {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "OVERQUOTA") {
		t.Fatalf("COPY over quota: %v", err)
	}
	// The connection is in step after all that.
	if _, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true}).Collect(); err != nil {
		t.Fatal(err)
	}
	// Unlimited accounts have no quota root.
	testutil.Must(t, e.st.SetQuota(t.Context(), "info@example.com", 0))
	qr, err = c.GetQuotaRoot("INBOX").Wait()
	testutil.Must(t, err)
	if len(qr) != 0 {
		t.Fatalf("unlimited GETQUOTAROOT %+v", qr)
	}
}

// The command stream follower must keep literals, pipelining and IDLE
// apart from the commands it serves itself.
func TestLibConnStream(t *testing.T) {
	e := newEnv(t, Config{})
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	// A non-synchronizing literal whose data looks like a GETQUOTA command,
	// pipelined with a real one.
	body := "Subject: x\r\n\r\na GETQUOTAROOT INBOX\r\n"
	r.Send(fmt.Sprintf("p1 APPEND INBOX {%d+}\r\n%s\r\np2 GETQUOTAROOT INBOX\r\np3 NOOP\r\n", len(body), body))
	u, st := r.until("p1")
	if !strings.HasPrefix(st, "OK [APPENDUID") {
		t.Fatalf("APPEND: %q %q", u, st)
	}
	u, st = r.until("p2")
	if !strings.HasPrefix(st, "OK") || len(u) != 2 {
		t.Fatalf("GETQUOTAROOT: %q %q", u, st)
	}
	if _, st := r.until("p3"); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}
	// A synchronizing literal the server refuses (too big): the client does
	// not send it, and the next command is served.
	r.Send("s1 APPEND INBOX {99999999999}\r\n")
	if _, st := r.until("s1"); !strings.HasPrefix(st, "NO [TOOBIG]") {
		t.Fatalf("big APPEND: %q", st)
	}
	if u := r.ok("GETQUOTA \"\""); len(u) != 1 {
		t.Fatal(u)
	}
	// A synchronizing literal accepted, then a mailbox name as a literal.
	r.Send(fmt.Sprintf("s2 APPEND INBOX {%d}\r\n", len(body)))
	if l := r.Line(); !strings.HasPrefix(l, "+") {
		t.Fatal(l)
	}
	r.Send(body + "\r\n")
	if _, st := r.until("s2"); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}
	r.Send("s3 STATUS {5}\r\n")
	if l := r.Line(); !strings.HasPrefix(l, "+") {
		t.Fatal(l)
	}
	r.Send("INBOX (MESSAGES)\r\n")
	if u, st := r.until("s3"); !strings.HasPrefix(st, "OK") || u[0] != "* STATUS INBOX (MESSAGES 2)" {
		t.Fatal(u, st)
	}
	// IDLE: GETQUOTA is not a command until DONE.
	r.ok("SELECT INBOX")
	r.Send("i1 IDLE\r\n")
	if l := r.Line(); !strings.HasPrefix(l, "+") {
		t.Fatal(l)
	}
	r.Send("DONE\r\n")
	if _, st := r.until("i1"); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}
	if u := r.ok("UID FETCH 1:* (UID)"); len(u) != 2 {
		t.Fatal(u)
	}
}

func TestMailboxNames(t *testing.T) {
	e := newEnv(t, Config{})
	r := dialRaw(t, e.implicit, true)
	r.login("info@example.com")
	for _, name := range []string{`"a..b"`, `"../etc"`, `"x*"`, `"x%y"`, `"a&AAA-b"`, `"a&Jjo"`, `"&Jjo-&Jjo-"`, `"&AGE-"`, `"/lead"`, `"a//b"`, `"&-&"`, `"bad&Jjo!"`} {
		for _, cmd := range []string{"CREATE %s", "RENAME Junk %s", "SELECT %s", "APPEND %s {1+}\r\nx", "COPY 1 %s"} {
			_, st := r.cmd(cmd, name)
			if strings.HasPrefix(st, "OK") || strings.Contains(st, "SERVERBUG") {
				t.Errorf("%s: %q", fmt.Sprintf(cmd, name), st)
			}
		}
	}
	// A control character as a literal.
	r.Send("c1 CREATE {3}\r\n")
	if l := r.Line(); !strings.HasPrefix(l, "+") {
		t.Fatal(l)
	}
	r.Send("a\tb\r\n")
	if _, st := r.until("c1"); !strings.HasPrefix(st, "NO") && !strings.HasPrefix(st, "BAD") {
		t.Fatalf("control character: %q", st)
	}
	// Good UTF-7 names work and round-trip.
	r.ok(`CREATE "&ZeVnLIqe-/2024"`)
	u := r.ok(`LIST "" "&ZeVnLIqe-*"`)
	if len(u) != 2 || !strings.HasSuffix(u[1], `"&ZeVnLIqe-/2024"`) {
		t.Fatalf("LIST: %q", u)
	}
	if _, err := e.st.Mailbox(t.Context(), "info@example.com", "日本語/2024"); err != nil {
		t.Fatal(err)
	}
	names, _ := e.st.Mailboxes(t.Context(), "info@example.com")
	if len(names) != 7 {
		t.Fatalf("%d mailboxes", len(names))
	}
}

// One account never sees another's mail.
func TestIsolation(t *testing.T) {
	e := newEnv(t, Config{})
	e.deliver(t, "info@example.com", "", msg1)
	_, err := e.st.CreateMailbox(context.Background(), "info@example.com", "Private")
	testutil.Must(t, err)
	c := e.login(t, "bob@example.com", nil)
	list, err := c.List("", "*", nil).Collect()
	testutil.Must(t, err)
	for _, l := range list {
		if l.Mailbox == "Private" {
			t.Fatal("bob sees info's mailbox")
		}
	}
	for _, name := range []string{"Private", "info@example.com/INBOX", "../info@example.com/INBOX"} {
		if _, err := c.Select(name, nil).Wait(); err == nil {
			t.Errorf("bob selected %q", name)
		}
		if _, err := c.Status(name, &imap.StatusOptions{NumMessages: true}).Wait(); err == nil {
			t.Errorf("bob got STATUS of %q", name)
		}
	}
	sel, err := c.Select("INBOX", nil).Wait()
	testutil.Must(t, err)
	if sel.NumMessages != 0 {
		t.Fatal("bob's INBOX shows info's mail")
	}
	// bob's IDLE does not hear of info's mail.
	got := make(chan uint32, 10)
	c2 := e.login(t, "bob@example.com", &imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
		if d.NumMessages != nil {
			got <- *d.NumMessages
		}
	}})
	_, err = c2.Select("INBOX", nil).Wait()
	testutil.Must(t, err)
	idle, err := c2.Idle()
	testutil.Must(t, err)
	e.deliver(t, "info@example.com", "", msg1)
	select {
	case n := <-got:
		t.Fatalf("bob saw EXISTS %d", n)
	case <-time.After(300 * time.Millisecond):
	}
	testutil.Must(t, idle.Close())
}

func TestIdleWakeup(t *testing.T) {
	e := newEnv(t, Config{})
	exists := make(chan uint32, 10)
	expunged := make(chan uint32, 10)
	flags := make(chan []imap.Flag, 10)
	c := e.login(t, "info@example.com", &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
		Expunge: func(seq uint32) { expunged <- seq },
		Fetch: func(m *imapclient.FetchMessageData) {
			b, _ := m.Collect()
			if b != nil {
				flags <- b.Flags
			}
		},
	})
	_, err := c.Select("INBOX", nil).Wait()
	testutil.Must(t, err)
	idle, err := c.Idle()
	testutil.Must(t, err)
	start := time.Now()
	e.deliver(t, "info@example.com", "", msg1) // what the SMTP server does
	select {
	case n := <-exists:
		if n != 1 {
			t.Fatalf("EXISTS %d", n)
		}
		t.Logf("EXISTS after %v", time.Since(start))
	case <-time.After(time.Second):
		t.Fatal("no EXISTS within a second of delivery")
	}
	// Flag changes and expunges by another session reach the idler.
	other := e.login(t, "info@example.com", nil)
	_, err = other.Select("INBOX", nil).Wait()
	testutil.Must(t, err)
	testutil.Must(t, other.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close())
	select {
	case f := <-flags:
		if !slices.Contains(f, imap.FlagDeleted) {
			t.Fatalf("flags %v", f)
		}
	case <-time.After(time.Second):
		t.Fatal("no FETCH FLAGS")
	}
	_, err = other.Expunge().Collect()
	testutil.Must(t, err)
	select {
	case seq := <-expunged:
		if seq != 1 {
			t.Fatalf("EXPUNGE %d", seq)
		}
	case <-time.After(time.Second):
		t.Fatal("no EXPUNGE")
	}
	testutil.Must(t, idle.Close())
	testutil.Must(t, idle.Wait())
	if mb := c.Mailbox(); mb.NumMessages != 0 {
		t.Fatalf("client thinks %d messages", mb.NumMessages)
	}
}

// Updates reach a session that does not IDLE at its next command, and
// EXPUNGE waits for a command that allows it (RFC 3501 7.4.1).
func TestUpdatesOnPoll(t *testing.T) {
	e := newEnv(t, Config{})
	e.deliver(t, "info@example.com", "", msg1)
	e.deliver(t, "info@example.com", "", msg1)
	a := dialRaw(t, e.implicit, true)
	a.login("info@example.com")
	a.ok("SELECT INBOX")
	b := dialRaw(t, e.implicit, true)
	b.login("info@example.com")
	b.ok("SELECT INBOX")
	b.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	b.ok("EXPUNGE")
	e.deliver(t, "info@example.com", "", msg1)
	u := a.ok("FETCH 2 (UID)")
	joined := strings.Join(u, "|")
	if strings.Contains(joined, "EXPUNGE") || !strings.Contains(joined, "* 2 FETCH (UID 2)") {
		t.Fatalf("FETCH with pending expunge: %q", u)
	}
	u = a.ok("NOOP")
	joined = strings.Join(u, "|")
	if !strings.Contains(joined, "* 1 EXPUNGE") || !strings.Contains(joined, "* 2 EXISTS") {
		t.Fatalf("NOOP: %q", u)
	}
	// Own silent STORE: no FETCH echo.
	u = a.ok(`STORE 1 +FLAGS.SILENT (\Seen)`)
	if len(u) != 0 {
		t.Fatalf("silent STORE answered %q", u)
	}
	if u := a.ok("NOOP"); len(u) != 0 {
		t.Fatalf("echo of own STORE: %q", u)
	}
	// b hears of a's change.
	if u := b.ok("NOOP"); len(u) != 3 || u[1] != "* 0 RECENT" || !strings.Contains(u[2], `\Seen`) {
		t.Fatalf("b: %q", u)
	}
}

func TestConcurrentSessions(t *testing.T) {
	e := newEnv(t, Config{})
	testutil.Must(t, e.st.SetQuota(t.Context(), "info@example.com", 0))
	const sessions, per = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for i := 0; i < sessions; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			err := func() error {
				c, err := imapclient.DialTLS(e.implicit, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
				if err != nil {
					return err
				}
				defer c.Close()
				if err := c.Login("info@example.com", "pw-info").Wait(); err != nil {
					return err
				}
				if _, err := c.Select("INBOX", nil).Wait(); err != nil {
					return err
				}
				for j := 0; j < per; j++ {
					if err := appendMsg(c, "INBOX", fmt.Sprintf("Subject: %d/%d\r\n\r\nbody\r\n", i, j)); err != nil {
						return err
					}
					if _, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, Envelope: true}).Collect(); err != nil {
						return err
					}
					if err := c.Noop().Wait(); err != nil {
						return err
					}
				}
				if n := c.Mailbox().NumMessages; n < per {
					return fmt.Errorf("session %d sees %d messages", i, n)
				}
				return c.Logout().Wait()
			}()
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if m, _ := e.st.Mailbox(t.Context(), "info@example.com", "INBOX"); m.Messages != sessions*per {
		t.Fatalf("%d messages", m.Messages)
	}
}

func TestLargeMessage(t *testing.T) {
	e := newEnv(t, Config{})
	testutil.Must(t, e.st.SetQuota(t.Context(), "info@example.com", 0))
	body := strings.Repeat(strings.Repeat("y", 998)+"\r\n", 3<<10) // 3 MiB
	msg := "Subject: big\r\n\r\n" + body
	c := e.login(t, "info@example.com", nil)
	testutil.Must(t, appendMsg(c, "INBOX", msg))
	_, err := c.Select("INBOX", nil).Wait()
	testutil.Must(t, err)
	sec := &imap.FetchItemBodySection{}
	part := &imap.FetchItemBodySection{Partial: &imap.SectionPartial{Offset: 2 << 20, Size: 100}}
	got, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec, part}}).Collect()
	testutil.Must(t, err)
	if string(got[0].FindBodySection(sec)) != msg || string(got[0].FindBodySection(part)) != msg[2<<20:2<<20+100] {
		t.Fatal("large message differs")
	}
}

func TestMaxConnectionsAndShutdown(t *testing.T) {
	e := newEnv(t, Config{MaxConnections: 2})
	a := dialRaw(t, e.implicit, true)
	a.login("info@example.com")
	a.ok("SELECT INBOX")
	b := dialRaw(t, e.implicit, true)
	b.login("info@example.com")
	b.ok("SELECT INBOX")
	b.Send("i IDLE\r\n")
	b.Line()
	c, err := tls.Dial("tcp", e.implicit, &tls.Config{InsecureSkipVerify: true})
	testutil.Must(t, err)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 200)
	n, _ := c.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "* BYE") {
		t.Fatalf("third connection: %q", buf[:n])
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	testutil.Must(t, e.srv.Shutdown(ctx))
	for _, r := range []*raw{a, b} {
		if l := r.Line(); !strings.HasPrefix(l, "* BYE") {
			t.Fatalf("at shutdown: %q", l)
		}
	}
	if _, err := net.DialTimeout("tcp", e.implicit, time.Second); err == nil {
		t.Fatal("still accepting")
	}
}

func TestBruteForceRefused(t *testing.T) {
	e := newEnv(t, Config{})
	r := dialRaw(t, e.implicit, true)
	var st string
	for i := 0; i < 60; i++ {
		if _, st = r.cmd("LOGIN info@example.com wrong%d", i); strings.Contains(st, "UNAVAILABLE") {
			break
		}
	}
	if !strings.Contains(st, "UNAVAILABLE") {
		t.Fatalf("after many failures: %q", st)
	}
	if _, st = r.cmd("LOGIN info@example.com pw-info"); strings.HasPrefix(st, "OK") {
		t.Fatal("locked-out address logged in")
	}
}

// errors.Is must see the store's sentinel errors through our wrapping.
func TestStoreErrorMapping(t *testing.T) {
	// No server: one shut down before its listeners' Serve began fails
	// testutil.Serve's check ("server closed after Shutdown").
	c := &conn{log: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
	for err, code := range map[error]string{
		store.ErrExists:                       "ALREADYEXISTS",
		fmt.Errorf("x: %w", store.ErrInvalid): "CANNOT",
		&store.QuotaError{}:                   "OVERQUOTA",
		store.ErrHasChildren:                  "HASCHILDREN",
		fmt.Errorf("x: %w", store.ErrLimit):   "LIMIT",
		errors.New("disk on fire"):            "SERVERBUG",
	} {
		var st *status
		if !errors.As(c.storeError(err, "NONEXISTENT"), &st) || st.code != code {
			t.Errorf("%v: %v", err, st)
		}
	}
}
