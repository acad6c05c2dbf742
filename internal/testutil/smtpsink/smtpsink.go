// Package smtpsink runs a real SMTP server (go-smtp) on 127.0.0.1 that
// plays a remote MX or a smart host for outbound mail, and keeps what it
// accepts.
package smtpsink

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"yubin/internal/testutil"
	"yubin/internal/testutil/tlstest"
)

// Message is one message the sink accepted.
type Message struct {
	From string
	To   []string
	Data []byte
	TLS  bool
	User string // AUTH identity
	UTF8 bool
}

// Sink is the running server. Set its hooks before anything connects.
type Sink struct {
	// Addr is the listener's address.
	Addr string
	// Got has the messages accepted (up to 1000 not yet read).
	Got chan Message
	// Conns counts the connections accepted.
	Conns atomic.Int64
	// Count counts the recipients of messages accepted when Quiet.
	Count atomic.Int64
	// Mails counts the MAIL commands received, accepted or not; PlainMails
	// those received without TLS.
	Mails, PlainMails atomic.Int64

	// Rcpt, when set, decides each RCPT (nil error: accept).
	Rcpt func(to string) error
	// Data, when set, decides the reply to the final dot.
	Data func() error
	// User and Pass, when set, make AUTH PLAIN with them required.
	User, Pass string
	// Quiet only counts messages, in Count (for benchmarks).
	Quiet bool

	t testing.TB
}

// New starts a sink that calls itself host, offering STARTTLS (with a
// self-signed certificate) when withTLS. It is closed at cleanup.
func New(t testing.TB, host string, withTLS bool) *Sink {
	t.Helper()
	s := &Sink{t: t, Got: make(chan Message, 1000)}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &session{s: s, tls: isTLS}, nil
	}))
	srv.Domain = host
	srv.EnableSMTPUTF8 = true
	srv.MaxMessageBytes = 64 << 20
	srv.ErrorLog = nopLogger{}
	if withTLS {
		srv.TLSConfig = tlstest.SelfSigned(t, host).Server
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testutil.Must(t, err)
	s.Addr = ln.Addr().String()
	go srv.Serve(countingListener{ln, &s.Conns})
	t.Cleanup(func() { srv.Close() })
	return s
}

// Next returns the next message accepted, waiting 10 seconds at most
// before it fails the test.
func (s *Sink) Next() Message {
	s.t.Helper()
	select {
	case m := <-s.Got:
		return m
	case <-time.After(10 * time.Second):
		s.t.Fatal("the sink received nothing")
	}
	return Message{}
}

// None fails the test if a message was accepted and not read yet.
func (s *Sink) None() {
	s.t.Helper()
	select {
	case m := <-s.Got:
		s.t.Fatalf("unexpected message to %v", m.To)
	default:
	}
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

type session struct {
	s    *Sink
	tls  bool
	user string
	cur  Message
}

func (x *session) AuthMechanisms() []string {
	if x.s.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != x.s.User || pass != x.s.Pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		x.user = user
		return nil
	}), nil
}

func (x *session) Reset()        { x.cur = Message{} }
func (x *session) Logout() error { return nil }

func (x *session) Mail(from string, opts *smtp.MailOptions) error {
	x.s.Mails.Add(1)
	if !x.tls {
		x.s.PlainMails.Add(1)
	}
	if x.s.User != "" && x.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "auth required"}
	}
	x.cur = Message{From: from, TLS: x.tls, User: x.user, UTF8: opts != nil && opts.UTF8}
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if x.s.Rcpt != nil {
		if err := x.s.Rcpt(to); err != nil {
			return err
		}
	}
	x.cur.To = append(x.cur.To, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if x.s.Data != nil {
		if err := x.s.Data(); err != nil {
			return err
		}
	}
	x.cur.Data = b
	if x.s.Quiet {
		x.s.Count.Add(int64(len(x.cur.To)))
		return nil
	}
	x.s.Got <- x.cur
	return nil
}
