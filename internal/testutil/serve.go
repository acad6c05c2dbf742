package testutil

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"
)

// Server is what the mail servers (smtpd, imapd, pop3d) have in common:
// Serve on a listener in a mode (whose type is each server's own), and a
// graceful Shutdown.
type Server[M any] interface {
	Serve(ln net.Listener, mode M, conf *tls.Config) error
	Shutdown(ctx context.Context) error
}

// Serving is a server that Serve started.
type Serving struct {
	// Addrs are the listeners' addresses (127.0.0.1:port), one a mode, in
	// the order of the modes.
	Addrs []string

	t        testing.TB
	shutdown func(context.Context) error
	errs     chan error // one for each Serve that returned
	done     bool
}

// Serve starts srv on one new listener on 127.0.0.1:0 for each of modes,
// each Serve in its own goroutine, and stops it at cleanup (see Stop).
func Serve[M any](t testing.TB, srv Server[M], conf *tls.Config, modes ...M) *Serving {
	t.Helper()
	s := &Serving{t: t, shutdown: srv.Shutdown, errs: make(chan error, len(modes))}
	for _, m := range modes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		Must(t, err)
		s.Addrs = append(s.Addrs, ln.Addr().String())
		go func() { s.errs <- srv.Serve(ln, m, conf) }()
	}
	t.Cleanup(s.Stop)
	return s
}

// Stop shuts the server down (giving connections 10 seconds) and checks
// that Shutdown and every Serve returned nil. It does nothing after Stop
// or Served.
func (s *Serving) Stop() {
	if s.done {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.shutdown(ctx); err != nil {
		s.t.Errorf("Shutdown: %v", err)
	}
	s.Served()
}

// Served is for a test that called Shutdown itself: it waits for every
// Serve to return (10 seconds at most) and checks each returned nil. Stop
// does nothing after it.
func (s *Serving) Served() {
	s.t.Helper()
	if s.done {
		return
	}
	s.done = true
	timeout := time.After(10 * time.Second)
	for range s.Addrs {
		select {
		case err := <-s.errs:
			// A Serve that began after Shutdown (a test that ends at
			// once) finds its listener closed: not a failure.
			if err != nil && !errors.Is(err, net.ErrClosed) {
				s.t.Errorf("Serve returned %v after Shutdown", err)
			}
		case <-timeout:
			s.t.Errorf("Serve did not return after Shutdown")
			return
		}
	}
}
