package netserve

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/internal/testutil/tlstest"
)

type testServer struct {
	srv      *Server
	cert     *tlstest.Cert
	plain    string
	implicit string
	served   chan error // one value per listener when Serve returns
}

// startServer serves handle on a Plain and an Implicit listener.
func startServer(t *testing.T, srv *Server, handle func(*Conn)) *testServer {
	t.Helper()
	ts := &testServer{srv: srv, cert: tlstest.SelfSigned(t, "localhost"), served: make(chan error, 2)}
	for _, m := range []Mode{Plain, Implicit} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		testutil.Must(t, err)
		if m == Plain {
			ts.plain = ln.Addr().String()
		} else {
			ts.implicit = ln.Addr().String()
		}
		go func() { ts.served <- srv.Serve(ln, m, ts.cert.Server, handle) }()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return ts
}

func (ts *testServer) dial(t *testing.T, m Mode) *testutil.Conn {
	t.Helper()
	if m == Plain {
		return testutil.Dial(t, ts.plain, nil)
	}
	return testutil.Dial(t, ts.implicit, ts.cert.Client)
}

// greet says whether the connection is TLS, then echoes one line.
func greet(c *Conn) {
	_, isTLS := c.Conn.(*tls.Conn)
	if isTLS {
		io.WriteString(c, "hello tls\r\n")
	} else {
		io.WriteString(c, "hello plain\r\n")
	}
	l, _ := bufio.NewReader(c).ReadString('\n')
	io.WriteString(c, l)
}

func TestServePlainAndImplicit(t *testing.T) {
	ts := startServer(t, &Server{}, greet)
	for m, want := range map[Mode]string{Plain: "hello plain", Implicit: "hello tls"} {
		c := ts.dial(t, m)
		if l := c.Line(); l != want {
			t.Errorf("%v: greeting %q, want %q", m, l, want)
		}
		c.Send("echo\r\n")
		if l := c.Line(); l != "echo" {
			t.Errorf("%v: echo %q", m, l)
		}
	}
}

func TestServeChecksMode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testutil.Must(t, err)
	defer ln.Close()
	var s Server
	if err := s.Serve(ln, Implicit, nil, greet); !errors.Is(err, ErrNoTLSConfig) {
		t.Errorf("Implicit without a TLS config: %v", err)
	}
	if err := s.Serve(ln, Mode(7), nil, greet); err == nil {
		t.Error("unknown mode accepted")
	}
	if err := Plain.CheckTLS(nil); err != nil {
		t.Errorf("Plain without TLS: %v", err)
	}
}

func TestMaxConns(t *testing.T) {
	release := make(chan struct{})
	ts := startServer(t, &Server{MaxConns: 1, Refusal: "BUSY"}, func(c *Conn) {
		io.WriteString(c, "hello\r\n")
		<-release
	})
	ts.dial(t, Plain).Line()
	for _, m := range []Mode{Plain, Implicit} {
		if l := ts.dial(t, m).Line(); l != "BUSY" {
			t.Errorf("%v connection over the limit: %q", m, l)
		}
	}
	close(release)
	// The slot is free again once the handler has returned.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if l := ts.dial(t, Implicit).Line(); l == "hello" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("after the first connection ended: %q", l)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestShutdownInterruptsAndWaits(t *testing.T) {
	var mu sync.Mutex
	var ended []string
	ts := startServer(t, &Server{}, func(c *Conn) {
		r := bufio.NewReader(c)
		c.OnShutdown(func() { c.SetReadDeadline(time.Now()) })
		io.WriteString(c, "hello\r\n")
		_, err := r.ReadString('\n')
		time.Sleep(50 * time.Millisecond) // finishing up: Shutdown waits
		mu.Lock()
		ended = append(ended, c.RemoteAddr().String())
		mu.Unlock()
		if err != nil {
			io.WriteString(c, "bye\r\n")
		}
	})
	var clients []*testutil.Conn
	for _, m := range []Mode{Plain, Implicit} {
		c := ts.dial(t, m)
		c.Line()
		clients = append(clients, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	mu.Lock()
	if len(ended) != 2 {
		t.Errorf("Shutdown returned with %d of 2 handlers done", len(ended))
	}
	mu.Unlock()
	for _, c := range clients {
		if l := c.Line(); l != "bye" {
			t.Errorf("at shutdown: %q", l)
		}
	}
	for range 2 {
		if err := <-ts.served; err != nil {
			t.Errorf("Serve after Shutdown: %v", err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testutil.Must(t, err)
	if err := ts.srv.Serve(ln, Plain, nil, greet); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve once shut down: %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Error("listener served after Shutdown left open")
	}
}

// A handler that registers its interrupt after Shutdown began is told at
// once.
func TestOnShutdownAfterShutdown(t *testing.T) {
	var s Server
	s.Shutdown(context.Background())
	called := false
	c := &Conn{srv: &s}
	if c.OnShutdown(func() { called = true }) || !called {
		t.Error("OnShutdown after Shutdown: not called at once")
	}
}

// A handler that ignores its interrupt is cut when Shutdown gives up.
func TestShutdownCutsWhenCtxEnds(t *testing.T) {
	ts := startServer(t, &Server{}, func(c *Conn) {
		io.WriteString(c, "hello\r\n")
		io.Copy(io.Discard, c)
	})
	c := ts.dial(t, Implicit)
	c.Line()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("client read after the cut: %v", err)
	}
}

// A client stuck in the implicit TLS handshake does not hold Shutdown up.
func TestShutdownCutsHandshake(t *testing.T) {
	ts := startServer(t, &Server{}, greet)
	testutil.Dial(t, ts.implicit, nil) // no ClientHello
	time.Sleep(50 * time.Millisecond)  // accepted, waiting for the ClientHello
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
}

func TestPanicInHandler(t *testing.T) {
	var logs testutil.Buffer
	ts := startServer(t, &Server{Log: slog.New(slog.NewTextHandler(&logs, nil))}, func(c *Conn) { panic("boom") })
	c := ts.dial(t, Plain)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a connection whose handler panicked", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Errorf("panic not logged: %s", logs.String())
	}
}

func TestHandshakeAndRefuse(t *testing.T) {
	cert := tlstest.SelfSigned(t, "localhost")
	for _, useTLS := range []bool{false, true} {
		srv, cli := net.Pipe()
		conf := cert.Server
		if !useTLS {
			conf = nil
		}
		go Refuse(srv, conf, "421 go away", 0)
		var c net.Conn = cli
		if useTLS {
			c = tls.Client(cli, cert.Client)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		got, _ := io.ReadAll(c)
		if string(got) != "421 go away\r\n" {
			t.Errorf("Refuse (TLS %v): %q", useTLS, got)
		}
		c.Close()
	}

	srv, cli := net.Pipe()
	defer cli.Close()
	go tls.Client(cli, cert.Client).Write([]byte("x"))
	tc, err := Handshake(srv, cert.Server, 0)
	testutil.Must(t, err)
	b := make([]byte, 1)
	if n, err := tc.Read(b); n != 1 || b[0] != 'x' {
		t.Errorf("after the handshake: read %q, %v", b[:n], err)
	}
}
