package smtpd

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// FuzzSession feeds arbitrary command lines (and DATA) to a real port-25
// session over TCP. Whatever arrives, the server must answer with proper
// reply lines or close the connection, and keep serving: the next
// connection still gets a greeting; the store's invariants hold.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nhi\r\n.\r\n",
		"HELO\r\nMAIL FROM:<>\r\nRCPT TO:<\"a@b\"@example.com>\r\n",
		"EHLO x\r\nMAIL FROM:<a@b.c> SIZE=99999999999\r\n",
		"EHLO x\r\nRCPT TO:<@x,@y:bob@example.com>\r\nBDAT 5 LAST\r\nhello",
		"AUTH PLAIN AAAA\r\nSTARTTLS\r\n\x00\xff\r\n",
		strings.Repeat("A", 3000) + "\r\n",
	} {
		f.Add([]byte(s))
	}
	e := newEnv(f, envOptions{quiet: true, noSync: true, cfg: Config{ReadTimeout: 2 * time.Second, MaxConnections: 10000}})
	f.Fuzz(func(t *testing.T, input []byte) {
		if len(input) > 64<<10 {
			return
		}
		c, err := net.Dial("tcp", e.mx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "220 ") {
			t.Fatalf("greeting %q %v", l, err)
		}
		go func() { c.Write(input); c.Write([]byte("\r\n.\r\nQUIT\r\n")) }()
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				break // the server may close (QUIT, too many errors, line too long)
			}
			if len(l) < 4 || l[0] < '2' || l[0] > '5' || (l[3] != ' ' && l[3] != '-') {
				t.Fatalf("not an SMTP reply line: %q", l)
			}
			if strings.HasPrefix(l, "221 ") {
				break
			}
		}
		// The server still serves.
		c2, err := net.Dial("tcp", e.mx)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		c2.SetDeadline(time.Now().Add(5 * time.Second))
		r2 := bufio.NewReader(c2)
		if l, err := r2.ReadString('\n'); err != nil || !strings.HasPrefix(l, "220 ") {
			t.Fatalf("server no longer greets: %q %v", l, err)
		}
		if p, err := e.store.Verify(t.Context()); err != nil || len(p) > 0 {
			t.Fatalf("store invariants: %v %v", p, err)
		}
	})
}
