package postgres_test

import (
	"fmt"
	"testing"

	"yubin/internal/testutil"
	"yubin/store"
	"yubin/store/postgres"
)

// BenchmarkMessages10k: Messages of a mailbox of 10,000 messages (what
// IMAP SELECT reads), and their Summaries (what UID FETCH 1:* ENVELOPE
// reads once the envelopes are kept).
func BenchmarkMessages10k(b *testing.B) {
	url := pg.Schema(b)
	s, err := postgres.Open(b.Context(), url, postgres.Options{})
	testutil.Must(b, err)
	defer s.Close()
	ctx := b.Context()
	testutil.Must(b, s.AddDomain(ctx, "example.com", ""))
	testutil.Must(b, s.AddAccount(ctx, store.Account{Address: "info@example.com", PasswordHash: "x"}))
	var ims []store.ImportMessage
	for i := range 10000 {
		ims = append(ims, store.ImportMessage{Key: fmt.Sprint(i), Flags: []string{`\Seen`}[:i%2], Message: fmt.Appendf(nil, "From: a@b.test\r\nSubject: message %d\r\n\r\nbody\r\n", i)})
	}
	for i := 0; i < len(ims); i += 1000 {
		_, err := s.Import(ctx, "info@example.com", ims[i:i+1000])
		testutil.Must(b, err)
	}
	uids := make([]uint32, 10000)
	for i := range uids {
		uids[i] = uint32(i + 1)
	}
	b.Run("messages", func(b *testing.B) {
		for b.Loop() {
			msgs, _, err := s.Messages(ctx, "info@example.com", "INBOX")
			if err != nil || len(msgs) != 10000 {
				b.Fatal(len(msgs), err)
			}
		}
	})
	b.Run("summaries", func(b *testing.B) {
		for b.Loop() {
			sums, err := s.Summaries(ctx, "info@example.com", "INBOX", uids)
			if err != nil || len(sums) != 10000 || sums[9999].Subject != "message 9999" {
				b.Fatal(err)
			}
		}
	})
}
