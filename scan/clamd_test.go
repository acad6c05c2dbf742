package scan

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseClamdReply(t *testing.T) {
	for _, c := range []struct {
		in    string
		virus string
		err   bool
	}{
		{"stream: OK", "", false},
		{"stream: Eicar-Signature FOUND", "Eicar-Signature", false},
		{"stream: Win.Test.EICAR_HDB-1 FOUND", "Win.Test.EICAR_HDB-1", false},
		{"INSTREAM size limit exceeded. ERROR", "", true},
		{"stream: Can't allocate memory ERROR", "", true},
		{"garbage", "", true},
	} {
		r, err := parseClamdReply(c.in)
		if r.Virus != c.virus || (err != nil) != c.err {
			t.Errorf("%q: %+v %v", c.in, r, err)
		}
		if err != nil && !errors.Is(err, ErrUnavailable) {
			t.Errorf("%q: error does not wrap ErrUnavailable", c.in)
		}
	}
	for _, c := range []struct{ in, net, addr string }{
		{"unix:/run/clamd.ctl", "unix", "/run/clamd.ctl"},
		{"/run/clamd.ctl", "unix", "/run/clamd.ctl"},
		{"tcp:127.0.0.1:3310", "tcp", "127.0.0.1:3310"},
		{"localhost:3310", "tcp", "localhost:3310"},
	} {
		n, a, err := ParseClamdAddress(c.in)
		if err != nil || n != c.net || a != c.addr {
			t.Errorf("%q: %s %s %v", c.in, n, a, err)
		}
	}
	if _, _, err := ParseClamdAddress("nonsense"); err == nil {
		t.Error("nonsense accepted")
	}
}

func TestClamdDown(t *testing.T) {
	c, err := NewClamd(ClamdConfig{Address: "unix:" + filepath.Join(t.TempDir(), "nothing.sock"), DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping: %v", err)
	}
	s := newTestScanner(t, Limits{}, c)
	v, err := s.Scan(context.Background(), mailWith("hi"))
	if !errors.Is(err, ErrUnavailable) || v == nil || v.Infected() {
		t.Errorf("Scan: %v %v", v, err)
	}
}

type clamdProc struct {
	sock, tcp string
	cmd       *exec.Cmd
	exited    chan struct{}
}

// startClamd starts a real clamd with a tiny database written here (it
// cannot download definitions): an MD5 hash signature and a body pattern
// for EICAR.
func startClamd(t testing.TB, hashPayload []byte) *clamdProc {
	t.Helper()
	bin, err := exec.LookPath("clamd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/clamd", "/usr/local/sbin/clamd"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Skip("clamd not installed (Debian package clamav-daemon); skipping the clamd engine test")
	}
	dir, err := os.MkdirTemp("", "yclamd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	db := filepath.Join(dir, "db")
	os.Mkdir(db, 0o755)
	sum := md5.Sum(hashPayload)
	writeFile(t, filepath.Join(db, "yubin.hdb"), fmt.Sprintf("%x:%d:Yubin.Test.Hash\n", sum, len(hashPayload)))
	writeFile(t, filepath.Join(db, "yubin.ndb"), "Yubin.Test.EICAR:0:*:"+hex.EncodeToString([]byte(EICAR))+"\n")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	p := &clamdProc{sock: filepath.Join(dir, "clamd.sock"), tcp: fmt.Sprintf("127.0.0.1:%d", port)}
	conf := filepath.Join(dir, "clamd.conf")
	writeFile(t, conf, strings.Join([]string{
		"Foreground yes",
		"LocalSocket " + p.sock,
		"TCPSocket " + fmt.Sprint(port),
		"TCPAddr 127.0.0.1",
		"DatabaseDirectory " + db,
		"TemporaryDirectory " + dir,
		"LogFile " + filepath.Join(dir, "clamd.log"),
		"StreamMaxLength 50M",
		"",
	}, "\n"))
	var out bytes.Buffer
	p.cmd = exec.Command(bin, "-c", conf)
	p.cmd.Stdout, p.cmd.Stderr = &out, &out
	if err := p.cmd.Start(); err != nil {
		t.Skipf("clamd does not start: %v", err)
	}
	exited := make(chan struct{})
	p.exited = exited
	go func() { p.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-exited
	})
	c, _ := NewClamd(ClamdConfig{Address: p.sock, DialTimeout: time.Second})
	deadline := time.Now().Add(90 * time.Second)
	for {
		if c.Ping(context.Background()) == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("clamd exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("clamd did not answer PING:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

func TestClamd(t *testing.T) {
	payload := []byte("yubin clamd hash payload\n")
	p := startClamd(t, payload)
	ctx := context.Background()
	for _, addr := range []string{"unix:" + p.sock, "tcp:" + p.tcp} {
		c, err := NewClamd(ClamdConfig{Address: addr, Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if ver, err := c.Version(ctx); err != nil || !strings.HasPrefix(ver, "ClamAV") {
			t.Errorf("%s: Version %q %v", addr, ver, err)
		} else {
			t.Logf("%s: %s", addr, ver)
		}
		s := newTestScanner(t, Limits{}, c)
		// EICAR in a zip attachment
		v := mustScan(t, s, mailWith("hi", att{name: "invoice.zip", data: zipOf(t, att{name: "eicar.com", data: []byte(EICAR)})}))
		if f := wantFinding(t, v, Virus); f.Engine != ClamdName || f.Virus != "Yubin.Test.EICAR.UNOFFICIAL" && f.Virus != "Yubin.Test.EICAR" {
			t.Errorf("%s: %+v", addr, f)
		}
		// the hash signature, in a tar.gz
		v = mustScan(t, s, mailWith("hi", att{name: "p.tgz", data: gzipOf(t, tarOf(t, att{name: "p.txt", data: payload}))}))
		if f := wantFinding(t, v, Virus); !strings.HasPrefix(f.Virus, "Yubin.Test.Hash") {
			t.Errorf("%s: %+v", addr, f)
		}
		// clean
		v = mustScan(t, s, mailWith("hello", att{name: "a.txt", data: []byte("nothing to see")}))
		if len(v.Findings) != 0 {
			t.Errorf("%s: clean message:\n%s", addr, v)
		}
	}
	// both engines; MaxStream truncation is not an error
	b, _ := NewBuiltin("", nil)
	c, _ := NewClamd(ClamdConfig{Address: p.sock, MaxStream: 1024})
	s := newTestScanner(t, Limits{}, b, c)
	big := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	v := mustScan(t, s, mailWith("hi", att{name: "big.bin", data: big}, att{name: "e.com", data: []byte(EICAR)}))
	engines := map[string]bool{}
	for _, f := range v.Only(Virus) {
		engines[f.Engine] = true
	}
	if !engines[BuiltinName] || !engines[ClamdName] || v.HeaderValue() == "" {
		t.Errorf("both engines: %s", v)
	}
	if d := v.Inbound(Policy{}); !strings.Contains(d.Header, "engines=builtin,clamd") {
		t.Errorf("header %q", d.Header)
	}
	// clamd goes down: the scan fails with ErrUnavailable, never "clean"
	p.cmd.Process.Kill()
	<-p.exited
	_, err := s.Scan(ctx, mailWith("hello"))
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("clamd down: %v", err)
	}
}
