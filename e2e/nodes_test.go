package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"yubin/internal/testutil"
	"yubin/internal/testutil/pgtest"
	"yubin/internal/testutil/smtpsink"
	"yubin/store"
	"yubin/store/bolt"
	"yubin/store/postgres"
)

// nodeConfig is newDataDir's configuration on a shared PostgreSQL store.
func nodeConfig(t *testing.T, url string) (data, cfg string) {
	t.Helper()
	return testutil.DataDir(t, `hostname = "mx.example.com"
[listen]
smtp = "127.0.0.1:0"
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"
pop3 = "127.0.0.1:0"
pop3s = "127.0.0.1:0"
imap = "127.0.0.1:0"
imaps = "127.0.0.1:0"
web = "127.0.0.1:0"
[auth]
failure_delay = "0s"
[dns]
check_inbound = false
[store]
backend = "postgres"
postgres_url = "`+url+`"
`)
}

// TestPostgresNodes runs the tests of yubin on PostgreSQL, on one
// throw-away cluster (each test a database of its own).
func TestPostgresNodes(t *testing.T) {
	cluster, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		t.Skip("SKIP: " + err.Error())
	}
	defer cluster.Stop()
	for _, c := range []struct {
		name string
		run  func(*testing.T, *pgtest.Cluster)
	}{
		{"two nodes", testTwoNodes},
		{"store copy", testStoreCopy},
		{"backup restore", testBackupRestore},
		{"outbound once", testOutboundOnce},
		{"outbound takeover", testOutboundTakeover},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, cluster) })
	}
}

// testTwoNodes runs two real yubin nodes on one throw-away
// PostgreSQL database: the admin CLI of either sets up what both serve,
// both take deliveries, an IDLE client on B hears of a delivery on A
// within a second, the POP3 maildrop lock holds across them, and after a
// SIGKILL of node A under SMTP load on both every acknowledged message is
// there byte for byte with the usage exact.
func testTwoNodes(t *testing.T, cluster *pgtest.Cluster) {
	var err error
	_, url, err := cluster.CreateDatabase(t.Context(), "")
	testutil.Must(t, err)
	dataA, cfgA := nodeConfig(t, url)
	dataB, cfgB := nodeConfig(t, url)
	mustCLI(t, "", "domain", "add", "example.com", "--config", cfgA, "--data", dataA)
	mustCLI(t, "secret-pw\n", "account", "add", "info@example.com", "--password-stdin", "--config", cfgB, "--data", dataB)
	a := startServer(t, dataA, cfgA)
	b := startServer(t, dataB, cfgB)

	// IDLE on B; deliveries on A, then on B.
	exists := make(chan uint32, 16)
	expunged := make(chan uint32, 16)
	ic, err := imapclient.DialTLS(b.addrs["imaps"], &imapclient.Options{
		TLSConfig: &tls.Config{InsecureSkipVerify: true},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		}, Expunge: func(seq uint32) { expunged <- seq }},
	})
	testutil.Must(t, err)
	defer ic.Close()
	testutil.Must(t, ic.Login("info@example.com", "secret-pw").Wait())
	_, err = ic.Select("INBOX", nil).Wait()
	testutil.Must(t, err)
	idle, err := ic.Idle()
	testutil.Must(t, err)
	for i, node := range []*server{a, b} {
		sent := time.Now()
		testutil.Must(t, sendMX(node.addrs["smtp"], "info@example.com", fmt.Sprintf("delivery %d", i)))
		select {
		case n := <-exists:
			if n != uint32(i+1) {
				t.Fatalf("EXISTS %d after delivery %d", n, i+1)
			}
			t.Logf("node B's IDLE heard of the delivery on node %c %v after the 250", 'A'+i, time.Since(sent).Round(time.Millisecond))
		case <-time.After(time.Second):
			t.Fatalf("node B's IDLE heard nothing within a second of a delivery on node %c", 'A'+i)
		}
	}

	// The POP3 maildrop lock across nodes; DELE and QUIT on node A are an
	// EXPUNGE for node B's IDLE.
	popA, ra := pop3Login(t, a.addrs["pop3s"])
	if got := pop3Try(t, b.addrs["pop3s"]); !strings.HasPrefix(got, "-ERR [IN-USE]") {
		t.Fatalf("POP3 login on node B while node A holds the maildrop: %q", got)
	}
	fmt.Fprint(popA, "DELE 1\r\nQUIT\r\n")
	for range 2 {
		if l, _ := ra.ReadString('\n'); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("POP3 DELE 1, QUIT on node A: %q", l)
		}
	}
	popA.Close()
	select {
	case seq := <-expunged:
		if seq != 1 {
			t.Errorf("node B's IDLE heard EXPUNGE %d, want 1", seq)
		}
	case <-time.After(time.Second):
		t.Fatal("node B's IDLE heard no EXPUNGE within a second of DELE and QUIT on node A")
	}
	testutil.Must(t, idle.Close())
	testutil.Must(t, idle.Wait())
	ic.Logout().Wait()
	if got := pop3Try(t, b.addrs["pop3s"]); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("POP3 login on node B after node A's QUIT: %q", got)
	}

	// The database goes away: SMTP answers 451 4.3.0, and once it is back
	// the nodes take mail again by themselves.
	cluster.Kill()
	if err := sendMX(a.addrs["smtp"], "info@example.com", "while the database is away"); err == nil || !strings.Contains(err.Error(), "451") || !strings.Contains(err.Error(), "Temporary local problem") {
		t.Fatalf("a delivery with the database away: %v, want 451 (4.3.0, Temporary local problem)", err)
	}
	if got := pop3Try(t, a.addrs["pop3s"]); !strings.HasPrefix(got, "-ERR [SYS/TEMP]") {
		t.Errorf("POP3 login with the database away: %q, want -ERR [SYS/TEMP]", got)
	}
	if err := imapLogin(a.addrs["imaps"], "info@example.com", "secret-pw"); err == nil || !strings.Contains(err.Error(), "UNAVAILABLE") {
		t.Errorf("IMAP login with the database away: %v, want NO [UNAVAILABLE]", err)
	}
	testutil.Must(t, cluster.Restart())
	for _, node := range []*server{a, b} {
		deadline := time.Now().Add(10 * time.Second)
		for err := sendMX(node.addrs["smtp"], "info@example.com", "after the outage"); err != nil; err = sendMX(node.addrs["smtp"], "info@example.com", "after the outage") {
			if time.Now().After(deadline) {
				t.Fatalf("deliveries still fail 10 s after the database came back: %v", err)
			}
		}
	}

	// SMTP load on both nodes; node A is killed midway.
	var mu sync.Mutex
	acked := map[string]string{}
	killed := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for c := range 8 {
		node := []*server{a, b}[c%2]
		wg.Go(func() {
			cl, err := smtp.Dial(node.addrs["smtp"])
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer cl.Close()
			for i := 0; i < 60; i++ {
				id := fmt.Sprintf("<%d.%d@client.test>", c, i)
				body := fmt.Sprintf("From: a@client.test\r\nTo: info@example.com\r\nMessage-ID: %s\r\nSubject: load %d/%d\r\n\r\n%s\r\n", id, c, i, strings.Repeat(fmt.Sprintf("line %d of client %d\r\n", i, c), 50+i%100))
				if err := cl.Mail("a@client.test"); err != nil {
					return
				}
				if err := cl.Rcpt("info@example.com"); err != nil {
					return
				}
				w, err := cl.Data()
				if err != nil {
					return
				}
				w.Write([]byte(body))
				if err := w.Close(); err != nil {
					return // no 250: not promised
				}
				mu.Lock()
				acked[id] = body
				if len(acked) >= 100 {
					once.Do(func() {
						a.cmd.Process.Signal(syscall.SIGKILL)
						close(killed)
					})
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	<-a.exited
	b.stop(t)

	st, err := postgres.Open(t.Context(), url, postgres.Options{})
	testutil.Must(t, err)
	defer st.Close()
	msgs, _, err := st.Messages(t.Context(), "info@example.com", "INBOX")
	testutil.Must(t, err)
	stored := map[string][]byte{}
	for _, m := range msgs {
		raw, err := st.ReadMessage(t.Context(), "info@example.com", "INBOX", m.UID)
		testutil.Must(t, err)
		if i := bytes.Index(raw, []byte("Message-ID: ")); i >= 0 {
			stored[string(raw[i+12:i+bytes.IndexByte(raw[i:], '\r')])] = raw
		}
	}
	for id, body := range acked {
		if raw, ok := stored[id]; !ok {
			t.Errorf("acknowledged message %s lost", id)
		} else if !bytes.HasSuffix(raw, []byte(body)) {
			t.Errorf("message %s stored differently", id)
		}
	}
	problems, err := st.Verify(t.Context())
	testutil.Must(t, err)
	if len(problems) > 0 {
		t.Errorf("Verify after the kill: %v", problems)
	}
	t.Logf("%d messages acknowledged by the two nodes (node A killed), %d stored", len(acked), len(msgs))
}

// pop3Dial logs info@example.com in over POP3S and returns the session,
// its reader and the reply to PASS.
func pop3Dial(t *testing.T, addr string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	testutil.Must(t, err)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	fmt.Fprint(c, "USER info@example.com\r\nPASS secret-pw\r\n")
	r.ReadString('\n')
	l, _ := r.ReadString('\n')
	return c, r, l
}

// pop3Login logs info@example.com in over POP3S and returns the session
// and its reader.
func pop3Login(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, r, l := pop3Dial(t, addr)
	if !strings.HasPrefix(l, "+OK") {
		t.Fatalf("POP3 login: %q", l)
	}
	return c, r
}

// pop3Try logs in over POP3S, returns the reply to PASS and quits.
func pop3Try(t *testing.T, addr string) string {
	t.Helper()
	c, r, l := pop3Dial(t, addr)
	defer c.Close()
	fmt.Fprint(c, "QUIT\r\n")
	r.ReadString('\n')
	return l
}

// pop3UIDL logs in over POP3S and returns the lines of the reply to UIDL
// (its +OK first).
func pop3UIDL(t *testing.T, addr string) []string {
	t.Helper()
	c, r := pop3Login(t, addr)
	defer c.Close()
	fmt.Fprint(c, "UIDL\r\n")
	var uidl []string
	for l, _ := r.ReadString('\n'); l != ".\r\n" && l != ""; l, _ = r.ReadString('\n') {
		uidl = append(uidl, strings.TrimSpace(l))
	}
	return uidl
}

// testStoreCopy: yubin store copy moves a data dir's embedded store into
// PostgreSQL and compares the two — mail, and the state besides it: the
// spam models and what messages were trained as, the import keys, the
// once-per-day keys, the remembered expunges, the quota warnings; a node
// on the database then serves the same mailbox, UIDs and all, and goes on
// from that state (an import again brings nothing twice).
func testStoreCopy(t *testing.T, cluster *pgtest.Cluster) {
	var err error
	ctx := t.Context()
	_, url, err := cluster.CreateDatabase(ctx, "")
	testutil.Must(t, err)
	data, cfg := newDataDir(t)
	flags := []string{"--config", cfg, "--data", data}
	srv := startServer(t, data, cfg)
	for i := range 3 {
		testutil.Must(t, sendMX(srv.addrs["smtp"], "info@example.com", fmt.Sprintf("before the copy %d", i)))
	}
	mustCLI(t, "", append([]string{"import", "info@example.com", testdata + "maildir"}, flags...)...)
	mustCLI(t, "", append([]string{"spam", "train", "example.com", "--spam", testdata + "maildir"}, flags...)...)
	if _, errs, code := cli(t, "", "store", "copy", "--from", data, "--to", url); code == 0 || !strings.Contains(errs, "stop the server") {
		t.Errorf("store copy of a store in use: exit %d, %q", code, errs)
	}
	srv.stop(t)
	// What the server's own flows leave behind, made here through the
	// store: a message trained into the account's model, a daily report
	// sent, an expunge, a quota warning given.
	src, err := bolt.OpenDir(data, bolt.Options{})
	testutil.Must(t, err)
	ref := store.MessageRef{Account: "info@example.com", Mailbox: "INBOX", UID: 1}
	_, err = src.TrainSpam(ctx, store.SpamTraining{Owners: []string{"info@example.com"}, Tokens: []string{"before", "copy"}, Class: store.Ham, Message: &ref})
	testutil.Must(t, err)
	_, err = src.DeliverOnce(ctx, "report/example.com/2026-11-30", store.Delivery{Recipients: []string{"info@example.com"}, Message: []byte("Subject: report\r\n\r\n.\r\n")})
	testutil.Must(t, err)
	_, err = src.Expunge(ctx, "info@example.com", "INBOX", []uint32{2})
	testutil.Must(t, err)
	testutil.Must(t, src.SetQuotaWarned(ctx, "info@example.com", true))
	inbox, err := src.Mailbox(ctx, "info@example.com", "INBOX")
	testutil.Must(t, err)
	testutil.Must(t, src.Close())

	out := mustCLI(t, "", "store", "copy", "--from", data, "--to", url)
	if !strings.Contains(out, "messages") || !strings.Contains(out, "the same") || !strings.Contains(out, "spam models") {
		t.Errorf("store copy said:\n%s", out)
	}
	if _, errs, code := cli(t, "", "store", "copy", "--from", data, "--to", url); code != 1 || !strings.Contains(errs, "not empty") {
		t.Errorf("a second copy into the same database: exit %d, %q", code, errs)
	}
	compareState(t, data, url)

	dataB, cfgB := nodeConfig(t, url)
	b := startServer(t, dataB, cfgB)
	testutil.Must(t, sendMX(b.addrs["smtp"], "info@example.com", "after the copy"))
	uidl := pop3UIDL(t, b.addrs["pop3s"])
	if len(uidl) != 1+inbox.Messages+1 { // +OK, what INBOX held, the one after
		t.Fatalf("UIDL on the node after the copy: %q, INBOX held %d", uidl, inbox.Messages)
	}
	// The import keys came along: the same import again brings nothing.
	out = mustCLI(t, "", "import", "info@example.com", testdata+"maildir", "--config", cfgB, "--data", dataB)
	if !strings.Contains(out, "imported 0 messages (0 B) into info@example.com; 7 there already") {
		t.Errorf("the import again on the node after the copy:\n%s", out)
	}
}

// compareState compares, through the store interfaces, what the embedded
// store of data and the PostgreSQL store at url hold besides mail: each
// part must be there (not empty) and the same.
func compareState(t *testing.T, data, url string) {
	t.Helper()
	ctx := t.Context()
	src, err := bolt.OpenDir(data, bolt.Options{})
	testutil.Must(t, err)
	defer src.Close()
	dst, err := postgres.Open(ctx, url, postgres.Options{})
	testutil.Must(t, err)
	defer dst.Close()
	const acct = "info@example.com"
	for _, part := range []struct {
		name string
		read func(s store.Store) (any, error)
	}{
		{"spam models", func(s store.Store) (any, error) {
			owners, err := s.SpamOwners(ctx)
			var models []any
			for _, o := range owners {
				var toks []store.SpamToken
				tot, err := s.SpamModel(ctx, o, func(t store.SpamToken) error { toks = append(toks, t); return nil })
				if err != nil {
					return nil, err
				}
				models = append(models, o, tot, toks)
			}
			if len(owners) < 2 {
				return nil, fmt.Errorf("models of %v, want the account's and the domain's", owners)
			}
			return models, err
		}},
		{"trained messages", func(s store.Store) (any, error) { return s.SpamTrainedMessages(ctx, acct) }},
		{"import keys", func(s store.Store) (any, error) { return s.ImportKeys(ctx, acct) }},
		{"once keys", func(s store.Store) (any, error) { return s.OnceKeys(ctx) }},
		{"remembered expunges", func(s store.Store) (any, error) {
			r, err := s.RememberedExpunges(ctx, acct, "INBOX")
			return r.Expunges, err
		}},
		{"quota warning", func(s store.Store) (any, error) {
			w, err := s.QuotaWarned(ctx, acct)
			if !w {
				return nil, err
			}
			return []bool{w}, err
		}},
	} {
		x, err := part.read(src)
		testutil.Must(t, err)
		y, err := part.read(dst)
		testutil.Must(t, err)
		xs, ys := fmt.Sprintf("%+v", x), fmt.Sprintf("%+v", y)
		if x == nil || reflect.ValueOf(x).Len() == 0 {
			t.Errorf("%s: the original holds none: the test tests nothing", part.name)
		} else if xs != ys {
			t.Errorf("%s not copied as they were:\n%s\ncopied:\n%s", part.name, xs, ys)
		}
	}
}

// testBackupRestore: yubin backup of a running node on PostgreSQL
// (through its control socket) and yubin restore into an empty database:
// a node on it serves the same mail; a database that holds a store is
// refused, and so are a truncated and a damaged file (the database stays
// empty: the good file restores into it after). A backup of the embedded
// store restores into PostgreSQL (made aside, copied, compared); one of
// PostgreSQL into an embedded store is refused, saying why.
func testBackupRestore(t *testing.T, cluster *pgtest.Cluster) {
	ctx := t.Context()
	newDB := func() (data, cfg string) {
		t.Helper()
		_, url, err := cluster.CreateDatabase(ctx, "")
		testutil.Must(t, err)
		// A password (the cluster trusts every local connection and does
		// not ask for it), which no output may show.
		return nodeConfig(t, strings.Replace(url, "@127.0.0.1", ":secret-db-pw@127.0.0.1", 1))
	}
	dataA, cfgA := newDB()
	mustCLI(t, "", "domain", "add", "example.com", "--config", cfgA, "--data", dataA)
	mustCLI(t, "secret-pw\n", "account", "add", "info@example.com", "--password-stdin", "--config", cfgA, "--data", dataA)
	a := startServer(t, dataA, cfgA)
	for i := range 3 {
		testutil.Must(t, sendMX(a.addrs["smtp"], "info@example.com", fmt.Sprintf("before the backup %d", i)))
	}
	file := filepath.Join(t.TempDir(), "pg.yubin")
	out := mustCLI(t, "", "backup", file, "--config", cfgA, "--data", dataA)
	if !strings.Contains(out, "backup of postgres ") || !strings.Contains(out, "3 messages") || strings.Contains(out, "secret-db-pw") {
		t.Errorf("backup of a running node said:\n%s", out)
	}
	good, err := os.ReadFile(file)
	testutil.Must(t, err)
	if !bytes.Contains(good, []byte(`"backend":"postgres"`)) {
		t.Errorf("the trailer does not name the postgres backend: %q", good[max(0, len(good)-300):])
	}

	// Bad files into an empty database: refused, the database stays empty.
	dataB, cfgB := newDB()
	dir := t.TempDir()
	truncated := filepath.Join(dir, "truncated.yubin")
	testutil.Must(t, os.WriteFile(truncated, good[:len(good)*2/3], 0o600))
	damaged := filepath.Join(dir, "damaged.yubin")
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 0x55
	testutil.Must(t, os.WriteFile(damaged, bad, 0o600))
	for f, want := range map[string]string{truncated: "truncated", damaged: "damaged"} {
		if _, errs, code := cli(t, "", "restore", f, "--config", cfgB, "--data", dataB); code != 1 || !strings.Contains(errs, want) || !strings.Contains(errs, "nothing was restored") || strings.Contains(errs, "unavailable") || strings.Contains(errs, "secret-db-pw") {
			t.Errorf("restore of %s: exit %d, %q", filepath.Base(f), code, errs)
		}
	}
	out = mustCLI(t, "", "restore", file, "--config", cfgB, "--data", dataB)
	if !strings.Contains(out, "3 messages") || !strings.Contains(out, "verified") || !strings.Contains(out, "into postgres ") || strings.Contains(out, "secret-db-pw") {
		t.Errorf("restore said:\n%s", out)
	}
	if _, errs, code := cli(t, "", "restore", file, "--config", cfgB, "--data", dataB); code != 1 || !strings.Contains(errs, "already holds a store") || strings.Contains(errs, "secret-db-pw") {
		t.Errorf("a restore into a database that holds a store: exit %d, %q", code, errs)
	}
	b := startServer(t, dataB, cfgB)
	uidl := pop3UIDL(t, b.addrs["pop3s"])
	if len(uidl) != 4 { // +OK, three messages
		t.Errorf("UIDL on a node of the restored database: %q", uidl)
	}
	if st := mustCLI(t, "", "status", "--config", cfgB, "--data", dataB); !strings.Contains(st, "pg.yubin") {
		t.Errorf("status of the restored store does not name the backup it came from:\n%s", st)
	} else if !strings.Contains(st, "MiB on disk") {
		t.Errorf("status of a PostgreSQL store does not give the database's size:\n%s", st)
	}

	// Across backends.
	boltData, boltCfg := newDataDir(t)
	bs := startServer(t, boltData, boltCfg)
	testutil.Must(t, sendMX(bs.addrs["smtp"], "info@example.com", "on bolt"))
	boltFile := filepath.Join(dir, "bolt.yubin")
	mustCLI(t, "", "backup", boltFile, "--config", boltCfg, "--data", boltData)
	dataC, cfgC := newDB()
	out = mustCLI(t, "", "restore", boltFile, "--config", cfgC, "--data", dataC)
	if !strings.Contains(out, "made aside and copied") || !strings.Contains(out, "1 message") {
		t.Errorf("restore of a bolt backup into PostgreSQL said:\n%s", out)
	}
	emptyBolt, emptyCfg := testutil.DataDir(t, "hostname = \"mx.example.com\"\n")
	if _, errs, code := cli(t, "", "restore", file, "--config", emptyCfg, "--data", emptyBolt); code != 1 || !strings.Contains(errs, "backup of a PostgreSQL store") {
		t.Errorf("restore of a PostgreSQL backup into an embedded store: exit %d, %q", code, errs)
	}
}

// testOutboundOnce: messages submitted on two nodes for remote
// recipients are relayed by the nodes' queue runners, which share the
// queue: each reaches the smart host exactly once.
func testOutboundOnce(t *testing.T, cluster *pgtest.Cluster) {
	var err error
	_, url, err := cluster.CreateDatabase(t.Context(), "")
	testutil.Must(t, err)
	sink := smtpsink.New(t, "relay.test", true)
	var nodes []*server
	var cfgA, dataA string
	for i := range 2 {
		data, cfg := nodeConfig(t, url)
		appendConfig(t, cfg, "[outbound]\nsmart_host = \""+sink.Addr+"\"\nsmart_host_verify_tls = false\n")
		if i == 0 {
			cfgA, dataA = cfg, data
			mustCLI(t, "", "domain", "add", "example.com", "--config", cfg, "--data", data)
			mustCLI(t, "secret-pw\n", "account", "add", "info@example.com", "--password-stdin", "--config", cfg, "--data", data)
		}
		nodes = append(nodes, startServer(t, data, cfg))
	}
	const n = 20
	for i := range n {
		to := fmt.Sprintf("friend%d@elsewhere.test", i)
		submitMail(t, nodes[i%2].addrs["submission"], "info@example.com", "secret-pw", to,
			fmt.Sprintf("From: info@example.com\r\nTo: %s\r\nSubject: out %d\r\n\r\nhello\r\n", to, i))
	}
	got := map[string]int{}
	for len(got) < n {
		m := sink.Next()
		for _, to := range m.To {
			got[to]++
		}
	}
	// Once the queue is empty every entry is settled: nothing more can go.
	deadline := time.Now().Add(20 * time.Second)
	for strings.TrimSpace(mustCLI(t, "", "queue", "list", "--json", "--config", cfgA, "--data", dataA)) != "[]" {
		if time.Now().After(deadline) {
			t.Fatalf("the queue is not empty 20 s after every message reached the smart host:\n%s", mustCLI(t, "", "queue", "list", "--config", cfgA, "--data", dataA))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for more := true; more; {
		select {
		case m := <-sink.Got:
			for _, to := range m.To {
				got[to]++
			}
		default:
			more = false
		}
	}
	for to, c := range got {
		if c != 1 {
			t.Errorf("%s got %d copies", to, c)
		}
	}
	if len(got) != n {
		t.Errorf("%d of %d recipients reached", len(got), n)
	}
	var byNode [2]int
	for i, node := range nodes {
		byNode[i] = strings.Count(node.log.String(), "outcome=sent")
	}
	t.Logf("relayed by node A %d, node B %d", byNode[0], byNode[1])
}

// testOutboundTakeover: node A claims a message for the smart host, which
// holds A's RCPT (A is mid-attempt). A renews its lease (4 s here) while
// it waits: node B, running beside it, does not take the message when
// the first lease would have ended. A is killed with SIGKILL: its lease
// runs out and B delivers the message, once.
func testOutboundTakeover(t *testing.T, cluster *pgtest.Cluster) {
	const lease = 4 * time.Second
	_, url, err := cluster.CreateDatabase(t.Context(), "")
	testutil.Must(t, err)
	sink := smtpsink.New(t, "relay.test", true)
	held := make(chan struct{})
	let := make(chan struct{}) // closed at the end: the held RCPT is refused
	t.Cleanup(func() { close(let) })
	var rcpts atomic.Int64
	sink.Rcpt = func(string) error {
		if rcpts.Add(1) > 1 {
			return nil
		}
		close(held)
		<-let
		return errors.New("refused (the test is over)")
	}
	node := func() (data, cfg string) {
		data, cfg = nodeConfig(t, url)
		appendConfig(t, cfg, "[outbound]\nsmart_host = \""+sink.Addr+"\"\nsmart_host_verify_tls = false\nlease = \""+lease.String()+"\"\n")
		return data, cfg
	}
	dataA, cfgA := node()
	mustCLI(t, "", "domain", "add", "example.com", "--config", cfgA, "--data", dataA)
	mustCLI(t, "secret-pw\n", "account", "add", "info@example.com", "--password-stdin", "--config", cfgA, "--data", dataA)
	a := startServer(t, dataA, cfgA)
	submitMail(t, a.addrs["submission"], "info@example.com", "secret-pw", "friend@elsewhere.test",
		"From: info@example.com\r\nTo: friend@elsewhere.test\r\nSubject: takeover\r\n\r\nhello\r\n")
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatalf("node A's attempt did not reach the smart host:\n%s", a.log.String())
	}
	dataB, cfgB := node()
	b := startServer(t, dataB, cfgB)

	// An observer of the queue, as stored.
	obs, err := postgres.Open(t.Context(), url, postgres.Options{})
	testutil.Must(t, err)
	defer obs.Close()
	entry := func() store.QueueEntry {
		t.Helper()
		all, err := obs.QueueEntries(t.Context())
		testutil.Must(t, err)
		if len(all) != 1 {
			t.Fatalf("queue: %+v, want one entry", all)
		}
		return all[0]
	}
	first := entry()
	holderA := first.LeaseHolder
	if holderA == "" || first.LeaseUntil.IsZero() {
		t.Fatalf("entry being sent by A is not leased: %+v", first)
	}
	// The first lease's end passes with A still at it and B running: the
	// lease was renewed, B took nothing.
	for time.Now().Before(first.LeaseUntil.Add(time.Second)) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := sink.Mails.Load(); n != 1 {
		t.Fatalf("%d MAIL commands at the smart host while A holds the message, want A's alone", n)
	}
	if q := entry(); q.LeaseHolder != holderA || !q.LeaseUntil.After(first.LeaseUntil) {
		t.Fatalf("after A's first lease ended: held by %q until %v (first lease until %v by %q)", q.LeaseHolder, q.LeaseUntil, first.LeaseUntil, holderA)
	}

	killedAt := time.Now()
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.exited
	last := entry().LeaseUntil // A's last renewal
	m := sink.Next()
	took := time.Since(killedAt)
	if len(m.To) != 1 || m.To[0] != "friend@elsewhere.test" || !strings.Contains(string(m.Data), "Subject: takeover") {
		t.Fatalf("the smart host received %+v", m)
	}
	// Once the queue is empty the entry is settled: nothing more can go.
	for deadline := time.Now().Add(20 * time.Second); len(queueOf(t, obs)) > 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the queue is not empty after the delivery: %+v", queueOf(t, obs))
		}
	}
	sink.None()
	if !strings.Contains(b.log.String(), "outcome=sent") {
		t.Errorf("node B did not log the delivery:\n%s", b.log.String())
	}
	if n := rcpts.Load(); n != 2 {
		t.Errorf("%d RCPTs at the smart host, want 2 (A's held one, B's)", n)
	}
	t.Logf("node B delivered %v after node A's SIGKILL (A's lease ran until %v after the kill; lease %v)",
		took.Round(10*time.Millisecond), last.Sub(killedAt).Round(10*time.Millisecond), lease)
	if took > 3*lease {
		t.Errorf("node B took %v to deliver after the kill, with a lease of %v", took, lease)
	}
}

func queueOf(t *testing.T, s store.Store) []store.QueueEntry {
	t.Helper()
	all, err := s.QueueEntries(t.Context())
	testutil.Must(t, err)
	return all
}
