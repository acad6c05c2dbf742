package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	n, _, err := c.ReadFromUnix(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "notify")
	c := listen(t, path)
	t.Setenv(Env, path)
	if sent, err := Notify(Ready, Status("serving:  smtp\n127.0.0.1:25")); !sent || err != nil {
		t.Fatalf("Notify: %v %v", sent, err)
	}
	if got := read(t, c); got != "READY=1\nSTATUS=serving: smtp 127.0.0.1:25" {
		t.Errorf("got %q", got)
	}
	Notify(Reloading())
	if got := read(t, c); !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[1-9]\d*$`).MatchString(got) {
		t.Errorf("got %q", got)
	}

	// The abstract namespace.
	abstract := fmt.Sprintf("@yubin-sdnotify-test-%d", os.Getpid())
	a := listen(t, abstract)
	t.Setenv(Env, abstract)
	if sent, err := Notify(Stopping); !sent || err != nil {
		t.Fatalf("Notify to %s: %v %v", abstract, sent, err)
	}
	if got := read(t, a); got != "STOPPING=1" {
		t.Errorf("got %q", got)
	}

	// Not under systemd: nothing, no error.
	t.Setenv(Env, "")
	if sent, err := Notify(Ready); sent || err != nil {
		t.Errorf("without %s: %v %v", Env, sent, err)
	}
	// Nobody listening, or not a unix socket: an error.
	t.Setenv(Env, filepath.Join(dir, "none"))
	if _, err := Notify(Ready); err == nil {
		t.Error("no error for a socket that is not there")
	}
	t.Setenv(Env, "vsock:2:1234")
	if _, err := Notify(Ready); err == nil {
		t.Error("no error for a vsock address")
	}
}
