package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/internal/testutil/teststore"
	"yubin/store"
)

// TestQuarantineDigestServed: the running server sends the daily
// quarantine digest into the account's INBOX (here at its start: the mail
// was held two days ago, before the last digest time), once — a restart
// sends no second one.
func TestQuarantineDigestServed(t *testing.T) {
	data, cfg := newDataDir(t)
	appendConfig(t, cfg, "[log]\nlevel = \"debug\"\n")
	twoDaysAgo := func() time.Time { return time.Now().Add(-48 * time.Hour) }
	st := teststore.OpenDir(t, data, teststore.Options{Now: twoDaysAgo})
	d, err := st.Deliver(context.Background(), store.Delivery{Recipients: []string{"info@example.com"},
		Message:    []byte("From: Shop <shop@spam.test>\r\nSubject: Cheap pills\r\n\r\nbuy\r\n"),
		Quarantine: &store.QuarantineHold{From: "Shop <shop@spam.test>", Subject: "Cheap pills", Score: 0.97}})
	testutil.Must(t, err)
	id := d[0].Quarantine
	testutil.Must(t, st.Close())

	inboxCount := func() int {
		t.Helper()
		var a struct {
			Mailboxes []struct {
				Name     string `json:"name"`
				Messages int    `json:"messages"`
			} `json:"mailboxes"`
		}
		out := mustCLI(t, "", "account", "show", "info@example.com", "--json", "--config", cfg, "--data", data)
		testutil.Must(t, json.Unmarshal([]byte(out), &a))
		for _, m := range a.Mailboxes {
			if m.Name == "INBOX" {
				return m.Messages
			}
		}
		return -1
	}

	srv := startServer(t, data, cfg)
	srv.log.WaitFor(t, `msg="quarantine digests done"`, 20*time.Second)
	if !strings.Contains(srv.log.String(), `msg="quarantine digest sent" account=info@example.com messages=1`) {
		t.Fatalf("no digest sent:\n%s", srv.log.String())
	}
	msg := lastInbox(t, srv.addrs["imaps"], "info@example.com", "secret-pw")
	for _, w := range []string{"Auto-Submitted: auto-generated", "1 message for info@example.com was held", id, "Cheap pills", "yubin quarantine release ID", "迷惑メール"} {
		if !strings.Contains(msg, w) {
			t.Errorf("digest lacks %q:\n%s", w, msg)
		}
	}
	srv.stop(t)

	srv = startServer(t, data, cfg)
	srv.log.WaitFor(t, `msg="quarantine digests done"`, 20*time.Second)
	if strings.Contains(srv.log.String(), "quarantine digest sent") || inboxCount() != 1 {
		t.Fatalf("a second digest after a restart (INBOX %d):\n%s", inboxCount(), srv.log.String())
	}
	srv.stop(t)
}
