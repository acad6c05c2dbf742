package storetest

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/store"
)

// Opening, closing and opening again.
var lifecycleTests = []test{
	{"restart keeps everything", testRestart},
	{"closed", testClosed},
	{"writes racing close", testWritesRacingClose},
}

func testRestart(t *testing.T, e *env) {
	ctx := t.Context()
	_, err := e.s.CreateMailbox(ctx, info, "Work/Old")
	testutil.Must(t, err)
	testutil.Must(t, e.s.SetSubscribed(ctx, info, "Junk", false))
	e.deliverN(info, "Work/Old", 2)
	_, err = e.s.SetFlags(ctx, info, "Work/Old", []uint32{2}, store.FlagsAdd, []string{`\Seen`, "$Keep"})
	testutil.Must(t, err)
	testutil.Must(t, e.s.SetQuota(ctx, bob, 4242))
	testutil.Must(t, e.s.SetRole(ctx, bob, store.RoleAdmin))
	testutil.Must(t, e.s.SetPasswordHash(ctx, bob, "new"))
	_, err = e.s.SetForward(ctx, carol, []string{"x@remote.test"}, true)
	testutil.Must(t, err)
	testutil.Must(t, e.s.SetDomainSettings(ctx, "example.com", store.DomainSettings{Language: "ja"}))
	domains, err := e.s.Domains(ctx)
	testutil.Must(t, err)
	accounts, err := e.s.Accounts(ctx, "")
	testutil.Must(t, err)
	boxes, err := e.s.Mailboxes(ctx, info)
	testutil.Must(t, err)
	msgs, _, err := e.s.Messages(ctx, info, "Work/Old")
	testutil.Must(t, err)
	subs := e.subscriptions(info)

	e.restart()
	if got := e.subscriptions(info); !slices.Equal(got, subs) {
		t.Errorf("subscriptions after restart %v, before %v", got, subs)
	}
	if got, err := e.s.Domains(ctx); err != nil || !slices.EqualFunc(got, domains, func(a, b store.Domain) bool {
		return a.Name == b.Name && a.Parent == b.Parent && a.Created.Equal(b.Created)
	}) {
		t.Errorf("domains after restart %+v, before %+v (%v)", got, domains, err)
	}
	if got, err := e.s.Accounts(ctx, ""); err != nil || !slices.EqualFunc(got, accounts, func(a, b store.Account) bool {
		a.Created, b.Created = a.Created.UTC(), b.Created.UTC()
		return a == b
	}) {
		t.Errorf("accounts after restart %+v, before %+v (%v)", got, accounts, err)
	}
	if got, err := e.s.Mailboxes(ctx, info); err != nil || !slices.Equal(got, boxes) {
		t.Errorf("mailboxes after restart %+v, before %+v (%v)", got, boxes, err)
	}
	got, _, err := e.s.Messages(ctx, info, "Work/Old")
	testutil.Must(t, err)
	if !slices.EqualFunc(got, msgs, func(a, b store.MessageInfo) bool {
		return a.UID == b.UID && a.Size == b.Size && a.HeaderSize == b.HeaderSize && a.Date.Equal(b.Date) && slices.Equal(a.Flags, b.Flags)
	}) {
		t.Errorf("messages after restart %+v, before %+v", got, msgs)
	}
	if raw := e.read(info, "Work/Old", 2); string(raw) != string(body(1)) {
		t.Errorf("message after restart reads %q", raw)
	}
	if f, err := e.s.GetForward(ctx, carol); err != nil || !slices.Equal(f.Targets, []string{"x@remote.test"}) || !f.KeepCopy {
		t.Errorf("forward after restart %+v, %v", f, err)
	}
	if ds, err := e.s.DomainSettings(ctx, "example.com"); err != nil || ds.Language != "ja" {
		t.Errorf("domain settings after restart %+v, %v", ds, err)
	}
}

// A closed store refuses work with ErrClosed (reads may fail otherwise).
func testClosed(t *testing.T, e *env) {
	ctx := t.Context()
	s := e.s
	e.feed.drain(t)
	e.s = nil // env.check has nothing to check
	testutil.Must(t, s.Close())
	if _, err := s.Deliver(ctx, store.Delivery{Recipients: []string{info}, Message: body(1)}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("deliver to a closed store: %v", err)
	}
	if _, err := s.Expunge(ctx, info, "INBOX", []uint32{1}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("expunge in a closed store: %v", err)
	}
	if _, err := s.Enqueue(ctx, store.Outbound{Recipients: []string{"x@remote.test"}, Message: body(1)}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("enqueue in a closed store: %v", err)
	}
	if _, err := s.Account(ctx, info); err == nil {
		t.Error("read from a closed store succeeded")
	}
}

// Writes racing with Close either commit or fail with ErrClosed; none
// hangs, and exactly those that committed are there after a restart.
func testWritesRacingClose(t *testing.T, e *env) {
	ctx := t.Context()
	total := int64(0)
	for range 10 {
		s := e.s
		var committed atomic.Int64
		done := make(chan []error)
		go func() {
			done <- parallel(4, func(w int) error {
				for range 25 {
					_, err := s.Deliver(ctx, store.Delivery{Recipients: []string{info}, Message: body(w)})
					switch {
					case errors.Is(err, store.ErrClosed):
						return nil
					case err != nil:
						return err
					}
					committed.Add(1)
				}
				return nil
			})
		}()
		time.Sleep(time.Millisecond)
		e.restart()
		select {
		case errs := <-done:
			for _, err := range errs {
				testutil.Must(t, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a write hangs after Close")
		}
		total += committed.Load()
		if got := len(e.uids(info, "INBOX")); int64(got) != total {
			t.Fatalf("%d messages after the restart, %d writes reported committed", got, total)
		}
	}
}
