package imapd

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"

	"yubin/internal/testutil"
)

// APPEND and COPY report that an account's usage grew, so the server can
// send the quota warning (the SMTP path does it in the delivery stages).
func TestUsageGrewHook(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	e := newEnv(t, Config{UsageGrew: func(ctx context.Context, account string) {
		mu.Lock()
		calls = append(calls, account)
		mu.Unlock()
	}})
	c := e.login(t, "info@example.com", nil)
	msg := "Subject: grow\r\n\r\n" + strings.Repeat("x", 1000) + "\r\n"
	testutil.Must(t, appendMsg(c, "INBOX", msg))
	_, err := c.Select("INBOX", nil).Wait()
	testutil.Must(t, err)
	_, err = c.Copy(imap.SeqSetNum(1), "Trash").Wait()
	testutil.Must(t, err)
	// A failed APPEND (no such mailbox) reports nothing.
	if err := appendMsg(c, "Nowhere", msg); err == nil {
		t.Fatal("APPEND to a missing mailbox succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(calls, ",") != "info@example.com,info@example.com" {
		t.Fatalf("UsageGrew calls: %v", calls)
	}
}
