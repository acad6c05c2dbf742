package smtpd

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"yubin/internal/delivery"
	"yubin/internal/dnsbl"
	"yubin/internal/testutil"
	"yubin/internal/testutil/dnstest"
	"yubin/store"
)

// The test clients connect from 127.0.0.1: listed on block.test (with a
// reason) and score.test, not on clean.test, SERVFAIL on down.test.
const blocklists = `
1.0.0.127.block.test.  A   127.0.0.2
1.0.0.127.block.test.  TXT "Listed: see https://block.test/127.0.0.1"
1.0.0.127.score.test.  A   127.0.0.10
$SERVFAIL 1.0.0.127.down.test.
`

// envelopes records the Envelope of every message delivered.
type envelopes struct {
	mu   sync.Mutex
	envs []delivery.Envelope
}

func (e *envelopes) deliverer(st store.Store) *delivery.Deliverer {
	return delivery.New(st, nil, delivery.StageFunc("capture", func(ctx context.Context, m *delivery.Message) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.envs = append(e.envs, m.Env)
		return nil
	}))
}

func (e *envelopes) last(t *testing.T) delivery.Envelope {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.envs) == 0 {
		t.Fatal("nothing delivered")
	}
	return e.envs[len(e.envs)-1]
}

// dnsblEnv serves with the zones on a DNS server at resolver (go-mockdns,
// or a silent one).
func dnsblEnv(t *testing.T, resolver string, zones ...dnsbl.Zone) (*testEnv, *envelopes) {
	t.Helper()
	checker := dnsbl.New(dnsbl.NewResolver(resolver), dnsbl.Config{DNSBL: zones, Timeout: 300 * time.Millisecond})
	got := &envelopes{}
	return newEnv(t, envOptions{cfg: Config{DNSBL: checker}, deliverer: got.deliverer}), got
}

func blocklistServer(t *testing.T) string {
	t.Helper()
	z, err := dnstest.Parse(strings.NewReader(blocklists), "")
	testutil.Must(t, err)
	return dnstest.NewServer(t, z).Addr()
}

// A client listed on a zone marked reject gets 554 5.7.1 at every RCPT,
// known recipient or not; submission from the same address is not looked up.
func TestDNSBLReject(t *testing.T) {
	e, got := dnsblEnv(t, blocklistServer(t), dnsbl.Zone{Name: "block.test", Reject: true}, dnsbl.Zone{Name: "score.test"})
	c := dialRaw(t, e.mx)
	c.cmd("EHLO mx.remote.test", 250, "")
	c.cmd("MAIL FROM:<sender@remote.test>", 250, "2.0.0")
	text := c.cmd("RCPT TO:<info@example.com>", 554, "5.7.1")
	if want := "5.7.1 Service unavailable; client host [127.0.0.1] blocked using block.test; Listed: see https://block.test/127.0.0.1"; text != want {
		t.Errorf("reply %q, want %q", text, want)
	}
	c.cmd("RCPT TO:<nobody@example.com>", 554, "5.7.1")
	// After STARTTLS (a new session), the same.
	c.cmd("RSET", 250, "")
	c.startTLS(e.client)
	c.cmd("EHLO mx.remote.test", 250, "")
	c.cmd("MAIL FROM:<sender@remote.test>", 250, "2.0.0")
	c.cmd("RCPT TO:<info@example.com>", 554, "5.7.1")
	c.cmd("QUIT", 221, "")

	s := loginSubmission(t, e, userBob)
	s.cmd("MAIL FROM:<bob@example.com>", 250, "")
	s.cmd("RCPT TO:<info@example.com>", 250, "")
	s.data(testMessage("from a listed address, logged in"), 250, "2.0.0")
	if env := got.last(t); env.Source != delivery.Submission || env.DNSBL != nil {
		t.Errorf("submission envelope %+v", env)
	}
	if n := len(e.inbox(userInfo)); n != 1 {
		t.Errorf("info has %d messages, want 1 (the submission)", n)
	}
}

// A listing on a zone not marked reject is accepted, and the listing goes
// on the delivery envelope.
func TestDNSBLSignal(t *testing.T) {
	e, got := dnsblEnv(t, blocklistServer(t), dnsbl.Zone{Name: "clean.test", Reject: true}, dnsbl.Zone{Name: "score.test"})
	inbound(t, e, []string{userInfo}, []byte(testMessage("listed, not refused")), 250, "2.0.0")
	want := []dnsbl.Hit{{Zone: "score.test", Query: "127.0.0.1", Answers: []string{"127.0.0.10"}}}
	if env := got.last(t); !reflect.DeepEqual(env.DNSBL, want) {
		t.Errorf("envelope DNSBL %+v, want %+v", env.DNSBL, want)
	}
	if n := len(e.inbox(userInfo)); n != 1 {
		t.Errorf("info has %d messages, want 1", n)
	}
}

// A reject zone that fails (SERVFAIL) or does not answer (timeout) never
// refuses: the message is accepted without a listing.
func TestDNSBLDown(t *testing.T) {
	for name, resolver := range map[string]string{"servfail": blocklistServer(t), "timeout": dnstest.Silent(t)} {
		t.Run(name, func(t *testing.T) {
			e, got := dnsblEnv(t, resolver, dnsbl.Zone{Name: "down.test", Reject: true})
			inbound(t, e, []string{userInfo}, []byte(testMessage("list down")), 250, "2.0.0")
			if env := got.last(t); env.DNSBL != nil {
				t.Errorf("envelope DNSBL %+v", env.DNSBL)
			}
		})
	}
}
