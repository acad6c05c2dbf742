// Package e2e runs the real yubin binary: serve, the admin CLI against a
// running server, and crash recovery.
package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"yubin/internal/testutil"
)

var yubinBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "yubin-e2e")
	if err != nil {
		panic(err)
	}
	yubinBin = filepath.Join(dir, "yubin")
	build := exec.Command("go", "build", "-o", yubinBin, "../cmd/yubin")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building yubin:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli runs a yubin subcommand and returns stdout, stderr and exit status.
func cli(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(yubinBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("yubin %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func mustCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errs, code := cli(t, stdin, args...)
	if code != 0 {
		t.Fatalf("yubin %v: exit %d: %s", args, code, errs)
	}
	return out
}

// newDataDir makes a data dir (short path: it holds the control socket)
// with a config listening on loopback port 0, the domain example.com with
// child child.example.com, and the account info@example.com.
func newDataDir(t *testing.T) (data, cfg string) {
	t.Helper()
	return newDataDirWith(t, "")
}

// newDataDirWith is newDataDir with more configuration (whole sections).
func newDataDirWith(t *testing.T, more string) (data, cfg string) {
	t.Helper()
	data, cfg = testutil.DataDir(t, `hostname = "mx.example.com"
[listen]
smtp = "127.0.0.1:0"
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"
pop3 = "127.0.0.1:0"
pop3s = "127.0.0.1:0"
imap = "127.0.0.1:0"
imaps = "127.0.0.1:0"
web = "127.0.0.1:0"
[auth]
failure_delay = "0s"
[dns]
check_inbound = false # no DNS here; SPF/DKIM/DMARC have their own tests with go-mockdns
`+more)
	mustCLI(t, "", "domain", "add", "example.com", "--config", cfg, "--data", data)
	mustCLI(t, "", "domain", "add", "child.example.com", "--parent", "example.com", "--config", cfg, "--data", data)
	mustCLI(t, "secret-pw\n", "account", "add", "info@example.com", "--password-stdin", "--config", cfg, "--data", data)
	return data, cfg
}

type server struct {
	cmd    *exec.Cmd
	addrs  map[string]string // listener name -> address
	log    *testutil.Buffer
	exited chan struct{} // closed when the process has exited; then err is set
	err    error
}

var listenRE = regexp.MustCompile(`msg=listening listener=(\S+) addr=(\S+)`)

// startServer runs "yubin serve" and waits for its "yubin ready" log line.
func startServer(t *testing.T, data, cfg string) *server {
	t.Helper()
	cmd := exec.Command(yubinBin, "serve", "--config", cfg, "--data", data)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	s := &server{cmd: cmd, addrs: map[string]string{}, log: &testutil.Buffer{}, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = cmd.Wait(); close(s.exited); pw.Close() }()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			s.log.Write([]byte(line + "\n"))
			if m := listenRE.FindStringSubmatch(line); m != nil {
				s.addrs[m[1]] = m[2]
			}
			if !signalled && strings.Contains(line, "msg=\"yubin ready\"") {
				signalled = true
				ready <- true
			}
		}
		if !signalled {
			ready <- false
		}
	}()
	if !<-ready {
		t.Fatalf("server did not start:\n%s", s.log.String())
	}
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.err != nil {
			t.Fatalf("server exited with %v:\n%s", s.err, s.log.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("server did not stop on SIGTERM:\n%s", s.log.String())
	}
}
