package netserve

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// flaky fails its first Accepts with a timeout error.
type flaky struct {
	net.Listener
	fails atomic.Int32
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "accept: resource temporarily unavailable" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func (f *flaky) Accept() (net.Conn, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, timeoutErr{}
	}
	return f.Listener.Accept()
}

func TestAccept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flaky{Listener: ln}
	fl.fails.Store(2)
	var closing atomic.Bool
	got := make(chan net.Conn, 1)
	done := make(chan error, 1)
	go func() { done <- Accept(fl, closing.Load, func(c net.Conn) { got <- c }) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case sc := <-got:
		sc.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("connection not handed over after temporary errors")
	}
	closing.Store(true)
	ln.Close()
	if err := <-done; err != nil {
		t.Fatalf("Accept after shutdown: %v", err)
	}

	// Closed without a shutdown: the error comes back.
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	ln2.Close()
	if err := Accept(ln2, func() bool { return false }, func(net.Conn) {}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed listener: %v", err)
	}
}
