package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"yubin/internal/testutil"
	"yubin/internal/tlsutil"
)

// TestSystemdNotify runs "yubin serve" as systemd runs a Type=notify
// service, with $NOTIFY_SOCKET naming a unixgram socket of the test: READY=1
// comes once every listener accepts; SIGHUP (systemctl reload) brings
// RELOADING=1, then READY=1, with the certificate files read again (and
// kept when the new ones are bad); SIGTERM brings STOPPING=1 and a clean
// exit.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(testutil.ShortDir(t), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	msgs := make(chan string, 32)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := ln.ReadFromUnix(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()

	// Two certificates: A is served first, B after the reload.
	certA, certB := selfSignedFiles(t, "a.example.com"), selfSignedFiles(t, "b.example.com")
	tlsDir := testutil.ShortDir(t)
	certFile, keyFile := filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "key.pem")
	putPair := func(p [2][]byte) {
		for i, f := range []string{certFile, keyFile} {
			if err := os.WriteFile(f+".new", p[i], 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(f+".new", f); err != nil {
				t.Fatal(err)
			}
		}
	}
	putPair(certA)

	// Fixed ports, so that the test can connect the moment READY=1 comes,
	// before anything is logged.
	names := []string{"smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps"}
	ports := map[string]string{}
	var listen strings.Builder
	for _, n := range names {
		ports[n] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		fmt.Fprintf(&listen, "%s = %q\n", n, ports[n])
	}
	listen.WriteString("web = \"off\"\n")
	data, cfg := testutil.DataDir(t, fmt.Sprintf(`hostname = "mx.example.com"
[listen]
%s
[tls]
cert = %q
key = %q
[dns]
check_inbound = false
`, listen.String(), certFile, keyFile))

	cmd := exec.Command(yubinBin, "serve", "--config", cfg, "--data", data)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	log := &testutil.Buffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	recv := func(want string) string {
		t.Helper()
		select {
		case m := <-msgs:
			if !strings.Contains(m, want) {
				t.Fatalf("sd_notify message %q, want %q\n%s", m, want, log.String())
			}
			return m
		case err := <-exited:
			t.Fatalf("yubin exited (%v) before sending %q:\n%s", err, want, log.String())
		case <-time.After(30 * time.Second):
			t.Fatalf("no %q from yubin in 30s:\n%s", want, log.String())
		}
		return ""
	}
	leaf := func() []byte {
		t.Helper()
		c, err := tls.Dial("tcp", ports["imaps"], &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("IMAPS: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Raw
	}

	ready := recv("READY=1")
	for _, n := range names { // at once: every listener is up
		c, err := net.Dial("tcp", ports[n])
		if err != nil {
			t.Fatalf("READY=1 came before %s accepted: %v", n, err)
		}
		c.Close()
	}
	if !strings.Contains(ready, "STATUS=serving: smtp "+ports["smtp"]) || !strings.Contains(ready, "imaps "+ports["imaps"]) {
		t.Errorf("READY=1 without the listeners in STATUS: %q", ready)
	}
	if !bytes.Equal(leaf(), pemDER(t, certA[0])) {
		t.Fatal("IMAPS does not serve the configured certificate")
	}

	// systemctl reload: the new pair is served.
	putPair(certB)
	cmd.Process.Signal(syscall.SIGHUP)
	if m := recv("RELOADING=1"); !regexp.MustCompile(`(?m)^MONOTONIC_USEC=\d+$`).MatchString(m) {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", m)
	}
	recv("READY=1")
	if !bytes.Equal(leaf(), pemDER(t, certB[0])) {
		t.Fatalf("after SIGHUP, the certificate was not read again:\n%s", log.String())
	}
	if !strings.Contains(log.String(), `msg=reloaded what="certificate `+certFile) || !strings.Contains(log.String(), `msg=reloaded what="signatures in `) {
		t.Errorf("the reload is not logged:\n%s", log.String())
	}

	// A bad pair: logged, and the one served so far stays.
	if err := os.WriteFile(certFile, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	recv("RELOADING=1")
	if m := recv("READY=1"); !strings.Contains(m, "STATUS=serving; the last reload failed for 1 of 2") {
		t.Errorf("READY=1 after a failed reload: %q", m)
	}
	if !bytes.Equal(leaf(), pemDER(t, certB[0])) {
		t.Fatal("a bad certificate file replaced the one served")
	}
	if !strings.Contains(log.String(), "reload failed, kept what was loaded before") {
		t.Errorf("the failed reload is not logged:\n%s", log.String())
	}

	// systemctl stop.
	cmd.Process.Signal(syscall.SIGTERM)
	recv("STOPPING=1")
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, log.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("no exit 40s after STOPPING=1:\n%s", log.String())
	}
}

// selfSignedFiles makes a self-signed pair for host: PEM certificate, key.
func selfSignedFiles(t *testing.T, host string) [2][]byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	if _, err := tlsutil.SelfSigned(dir, host); err != nil {
		t.Fatal(err)
	}
	c, err := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := os.ReadFile(tlsutil.SelfSignedKey(dir))
	if err != nil {
		t.Fatal(err)
	}
	return [2][]byte{c, k}
}

func pemDER(t *testing.T, pemBytes []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatal("no certificate in PEM")
	}
	return b.Bytes
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
