package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"yubin/internal/config"
	"yubin/internal/notify"
	"yubin/internal/testutil"
	"yubin/internal/testutil/dnstest"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// opCase is one call of an operation, with its types erased.
type opCase struct {
	op  string
	run func(API) (any, error)
}

func call[Req, Resp any](o Op[Req, Resp], req Req) opCase {
	return opCase{o.Name(), func(api API) (any, error) { return Do(ctx, api, o, req) }}
}

// stream is a call of a stream operation: its answer, with the bytes
// checked against the answer's Size.
func stream(o StreamOp[None, store.BackupInfo]) opCase {
	return opCase{o.Name(), func(api API) (any, error) {
		var buf bytes.Buffer
		info, err := DoStream(ctx, api, o, None{}, &buf)
		if err == nil && info.Size != int64(buf.Len()) {
			err = fmt.Errorf("%s: the answer says %d bytes, %d came", o.Name(), info.Size, buf.Len())
		}
		return info, err
	}}
}

func ptr[T any](v T) *T { return &v }

// twinServices returns two Services on identical stores with a fixed
// clock: domains, accounts, DKIM keys, a queue entry and quarantined mail
// are made once (keys and ids are random) and the store file is copied.
// ids are the queue entries', held the quarantine entries' (two of
// bob@example.com's, one of carol@other.test's).
func twinServices(t *testing.T, dir string) (a, b *Service, ids, held []string) {
	t.Helper()
	now := func() time.Time { return time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC) }
	tmpl := filepath.Join(dir, "template")
	st := teststore.OpenDir(t, tmpl, teststore.Options{Now: now})
	populate(t, NewService(st, 1<<30))
	_, err := Do(ctx, NewService(st, 0), OpDKIMKeys, "example.com")
	testutil.Must(t, err)
	_, err = Do(ctx, NewService(st, 0), OpDKIMKeys, "www.example.com") // dns.records makes them otherwise, differently in each
	testutil.Must(t, err)
	ids, err = st.Enqueue(ctx, store.Outbound{QueueID: "Q", From: "info@example.com", ReturnPath: "info@example.com",
		Recipients: []string{"x@remote.test", "y@far.test"}, Origin: store.OriginSubmission,
		Message: []byte("Subject: queued\r\n\r\nbody\r\n")})
	testutil.Must(t, err)
	for _, to := range []string{"bob@example.com", "bob@example.com", "carol@other.test"} {
		held = append(held, holdMessage(t, st, to, "Subject: cheap pills\r\n\r\nbuy now\r\n"))
	}
	testutil.Must(t, st.Close())
	zones, err := dnstest.Parse(strings.NewReader("example.com. MX 10 mail.example.com.\nmail.example.com. A 192.0.2.1\n"), "")
	testutil.Must(t, err)
	dnsAddr := dnstest.NewServer(t, zones).Addr()
	cfg := config.Default()
	cfg.Hostname = "mail.example.com"
	cfg.Listen.HTTP = "0.0.0.0:80"
	open := func(name string) *Service {
		teststore.Copy(t, tmpl, filepath.Join(dir, name))
		st := teststore.OpenDir(t, filepath.Join(dir, name), teststore.Options{Now: now})
		s := NewService(st, 1<<30)
		r, err := notify.NewReporter(notify.New(st, "mail.example.com", nil), "06:00", nil)
		testutil.Must(t, err)
		s.SetReporter(r)
		s.SetDNS(DNSSettings(cfg), dnsAddr)
		return s
	}
	return open("a"), open("b"), ids, held
}

// TestEveryOpRoundTrips runs every operation of the table on a Service
// directly and through the control socket on an identical copy of the
// store, and requires the same typed results and the same errors, message
// and kind, from both. An operation without a successful case here fails
// the test.
func TestEveryOpRoundTrips(t *testing.T) {
	dir := testutil.ShortDir(t)
	local, served, ids, held := twinServices(t, dir)
	remote := serveService(t, served, filepath.Join(dir, "control.sock"))

	cases := []opCase{
		call(opPing, None{}),
		call(OpDomainList, None{}),
		call(OpDomainShow, "Example.com"),
		call(OpDomainShow, "nowhere.test"),
		call(OpDomainAdd, NewDomain{Name: "New.Test"}),
		call(OpDomainAdd, NewDomain{Name: "sub.new.test", Parent: "new.test"}),
		call(OpDomainAdd, NewDomain{Name: "new.test"}),
		call(OpDomainAdd, NewDomain{Name: "x.nowhere.test", Parent: "nowhere.test"}),
		call(OpAccountAdd, NewAccount{Address: "Dave@new.test", Password: "pw", Role: RoleAdmin, Quota: i64(5 << 20)}),
		call(OpAccountAdd, NewAccount{Address: "erin@new.test", DryRun: true}),
		call(OpAccountAdd, NewAccount{Address: "dave@sub.new.test", Password: "pw"}),
		call(OpAccountPasswd, PasswordChange{Address: "dave@new.test", Password: "pw2"}),
		call(OpAccountPasswd, PasswordChange{Address: "nobody@new.test", Password: "pw2"}),
		call(OpAccountQuota, QuotaChange{Address: "dave@new.test", Quota: 7 << 20}),
		call(OpAccountQuota, QuotaChange{Address: "dave@new.test", Quota: -1}),
		call(OpAccountRole, RoleChange{Address: "dave@new.test", Role: "user"}),
		call(OpAccountRole, RoleChange{Address: "dave@new.test", Role: "root"}),
		call(OpAccountRole, RoleChange{Address: "nobody@new.test", Role: "admin"}),
		call(OpAccountList, "sub.new.test"),
		call(OpAccountList, ""),
		call(OpAccountList, "nowhere.test"),
		call(OpAccountShow, "dave@new.test"),
		call(OpAccountShow, "info@example.com"),
		call(OpScanShow, "dave@new.test"),
		call(OpScanPolicy, ScanPolicyChange{Address: "dave@new.test", Change: store.ScanPolicy{Oversize: store.ScanAccept, Encrypted: store.ScanReject}}),
		call(OpScanPolicy, ScanPolicyChange{Address: "dave@new.test", Change: store.ScanPolicy{Depth: "maybe"}}),
		call(OpScanStops, StopsQuery{Address: "bob@example.com"}),
		call(OpScanStops, StopsQuery{Address: "bob@example.com", Days: 91}),
		call(OpSettingsShow, "example.com"),
		call(OpSettingsShow, "www.example.com"),
		call(OpSettingsUpdate, SettingsUpdate{Domain: "example.com", Change: SettingsChange{Language: ptr("ja"), ReportTo: ptr("info@www.example.com")}}),
		call(OpSettingsUpdate, SettingsUpdate{Domain: "example.com", Change: SettingsChange{ReportTo: ptr("carol@other.test")}}),
		call(OpDKIMKeys, "example.com"),
		call(OpDKIMKeys, "nowhere.test"),
		call(OpDNSRecords, "example.com"),
		call(OpDNSRecords, "nowhere.test"),
		call(OpDNSCheck, DNSCheckRequest{Domain: "example.com"}),
		call(OpDNSCheck, DNSCheckRequest{Domain: "bad..test"}),
		call(OpForwardSet, Forwarding{Address: "bob@www.example.com", Targets: []string{"carol@other.test", "far@remote.test"}, KeepCopy: true}),
		call(OpForwardSet, Forwarding{Address: "bob@example.com"}),
		call(OpForwardShow, "bob@example.com"),
		call(OpForwardClear, "bob@example.com"),
		call(OpForwardShow, "bob@nowhere.test"),
		call(OpSpamShow, "bob@example.com"),
		call(OpSpamShow, "nobody@example.com"),
		call(OpSpamPolicy, SpamPolicyChange{Address: "bob@www.example.com"}),
		call(OpSpamPolicy, SpamPolicyChange{Address: "bob@example.com", Action: "quarantine", Threshold: "0.8", Tag: "on"}),
		call(OpSpamPolicy, SpamPolicyChange{Address: "bob@example.com", Action: "bin"}),
		call(OpSpamPolicy, SpamPolicyChange{Address: "bob@example.com", Threshold: "1.5"}),
		call(OpSpamTrain, SpamTrainBatch{Domain: "example.com", Class: "spam", Messages: [][]string{{"subject:cheap", "pills"}, {"buy"}}}),
		call(OpSpamTrain, SpamTrainBatch{Domain: "www.example.com", Class: "ham", Messages: [][]string{{"hello"}}}),
		call(OpSpamTrain, SpamTrainBatch{Domain: "example.com", Class: "maybe"}),
		call(OpSettingsUpdate, SettingsUpdate{Domain: "example.com", Change: SettingsChange{SpamRejectScore: ptr("0.95")}}),
		call(OpSettingsUpdate, SettingsUpdate{Domain: "example.com", Change: SettingsChange{SpamRejectScore: ptr("0.3")}}),
		call(OpQuarantineList, QuarantineList{Of: "example.com"}),
		call(OpQuarantineList, QuarantineList{Of: "bob@example.com", Scope: QuarantineScope{Account: "carol@other.test"}}),
		call(OpQuarantineShow, QuarantineShow{ID: held[0]}),
		call(OpQuarantineShow, QuarantineShow{ID: held[2], Scope: QuarantineScope{Domain: "example.com"}}),
		call(OpQuarantineRelease, QuarantineIDs{IDs: held[:1]}),
		call(OpQuarantineRelease, QuarantineIDs{IDs: held[:1]}),
		call(OpQuarantineDelete, QuarantineIDs{IDs: held[1:2]}),
		call(OpQuarantineList, QuarantineList{Of: "other.test"}),
		call(OpImportStart, ImportStart{Address: "Bob@example.com", Mailboxes: []string{"INBOX", "Old/2019", "Sent"}}),
		call(OpImportStart, ImportStart{Address: "bob@example.com", Mailboxes: []string{"a*b"}}),
		call(OpImportStart, ImportStart{Address: "nobody@example.com"}),
		call(OpImportCheck, ImportKeys{Address: "bob@example.com", Keys: []string{"k1", "k2"}}),
		call(OpImportBatch, ImportBatch{Address: "bob@example.com", Messages: []ImportMessage{
			{Key: "k1", Mailbox: "Old/2019", Flags: []string{`\Seen`}, Date: time.Date(2019, 1, 2, 3, 4, 5, 0, time.UTC), Message: []byte("Subject: old\r\n\r\nx\r\n")},
			{Key: "k1", Message: []byte("Subject: again\r\n\r\nx\r\n")},
		}}),
		call(OpImportCheck, ImportKeys{Address: "bob@example.com", Keys: []string{"k1", "k2"}}),
		call(OpImportBatch, ImportBatch{Address: "bob@example.com", Messages: []ImportMessage{{Key: "k3", Mailbox: "Nope", Message: []byte("a: b\r\n\r\n")}}}),
		call(OpQueueList, None{}),
		call(OpQueueShow, ids[0]),
		call(OpQueueShow, "nope"),
		call(OpQueueRetry, QueueSelection{IDs: ids[:1]}),
		call(OpQueueRetry, QueueSelection{}),
		call(OpQueueDrop, QueueSelection{All: true}),
		call(OpQueueList, None{}),
		call(OpStatus, None{}), // with the queue empty: no age that moves between the two calls
		call(OpBackupLast, None{}),
		call(OpBackupRecord, store.LastBackup{Size: 10}),
		call(OpBackupRecord, store.LastBackup{Time: time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC), Size: 1234, File: "/backups/b.ybk", Messages: 3, Duration: time.Second}),
		call(OpBackupLast, None{}),
		stream(OpBackup),
		call(OpReportSend, "example.com"),
		call(OpReportSend, "other.test"),
		call(OpAccountRemove, "dave@new.test"),
		call(OpAccountRemove, "dave@new.test"),
		call(OpDomainRemove, "sub.new.test"),
		call(OpDomainRemove, "new.test"),
		call(OpDomainRemove, "new.test"),
		call(OpDomainList, None{}),
	}

	succeeded := map[string]bool{}
	kinds := map[string]bool{}
	for i, c := range cases {
		lv, lerr := c.run(local)
		rv, rerr := c.run(remote)
		what := func() string { return fmt.Sprintf("case %d, %s", i, c.op) }
		switch {
		case (lerr == nil) != (rerr == nil):
			t.Errorf("%s: directly %v, through the socket %v", what(), lerr, rerr)
		case lerr != nil:
			if lerr.Error() != rerr.Error() || kindOf(lerr) != kindOf(rerr) {
				t.Errorf("%s: directly %q (kind %q), through the socket %q (kind %q)", what(), lerr, kindOf(lerr), rerr, kindOf(rerr))
			}
			kinds[kindOf(rerr)] = true
		default:
			lj, _ := json.Marshal(lv)
			rj, _ := json.Marshal(rv)
			if string(lj) != string(rj) {
				t.Errorf("%s:\ndirectly           %s\nthrough the socket %s", what(), lj, rj)
			}
			succeeded[c.op] = true
		}
	}
	for name := range ops {
		if !succeeded[name] {
			t.Errorf("operation %s has no successful case in this test", name)
		}
	}
	for _, k := range []string{"invalid", "no_such_domain", "no_such_account", "exists", "no_such_message", "denied"} {
		if !kinds[k] {
			t.Errorf("no case returned an error of kind %s", k)
		}
	}
	if a, b := snapshot(t, local), snapshot(t, remote); a != b {
		t.Errorf("the stores differ after the same operations:\ndirectly           %s\nthrough the socket %s", a, b)
	}
}

// rawRequest sends one line to the control socket and returns the answer.
func rawRequest(t *testing.T, sock, line string) response {
	t.Helper()
	c, err := net.Dial("unix", sock)
	testutil.Must(t, err)
	defer c.Close()
	_, err = c.Write([]byte(line + "\n"))
	testutil.Must(t, err)
	var resp response
	testutil.Must(t, json.NewDecoder(c).Decode(&resp))
	return resp
}

func TestControlUnknownOperation(t *testing.T) {
	client, _, sock := serve(t, testutil.ShortDir(t))

	// A client that knows an operation the server does not.
	_, err := Do(ctx, client, Op[None, None]{name: "account.frobnicate"}, None{})
	want := `control socket: unknown operation "account.frobnicate" (is the server older than this yubin?)`
	var ae *Error
	if !errors.Is(err, store.ErrInvalid) || !errors.As(err, &ae) || err.Error() != want {
		t.Errorf("unknown operation: %v, want %q", err, want)
	}

	for line, want := range map[string]string{
		`{"op":"frobnicate","req":{}}`:                `unknown operation "frobnicate"`,
		`{"req":{}}`:                                  `unknown operation ""`,
		`{"op":"account.show"}`:                       "account.show without a request",
		`{"op":"account.show","req":null}`:            "account.show without a request",
		`{"op":"account.quota","req":{"quota":"1G"}}`: "malformed account.quota request",
		`{"op":"account.show","req":{}}`:              "malformed account.show request",
		`nonsense`:                                    "malformed request",
	} {
		resp := rawRequest(t, sock, line)
		if resp.OK || resp.Kind != "invalid" || !strings.Contains(resp.Error, want) || strings.Contains(resp.Error, "\n") {
			t.Errorf("answer to %s: %+v, want kind invalid and %q", line, resp, want)
		}
	}

	// The same connection protocol still answers a good request.
	if resp := rawRequest(t, sock, `{"op":"domain.list","req":{}}`); !resp.OK || string(resp.Result) != "[]" {
		t.Errorf("domain.list: %+v", resp)
	}
}
