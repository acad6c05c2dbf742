// Command idleconns opens N IMAP connections over implicit TLS to a running
// server, logs each in, selects INBOX and starts IDLE, then reports the
// server's resident memory (VmRSS of /proc/PID/status) before and after,
// and per connection. The connections come from several loopback source
// addresses (127.0.0.1, 127.0.0.2, …) so that per-address limits and the
// ephemeral port range allow many; raise the open-file limit of both
// processes first (ulimit -n). Set the server's connection limits for the
// run (imap.max_connections, imap.max_connections_per_ip = 0,
// imap.max_userip_connections = 0): scripts/bench-server.sh does.
//
//	go run ./scripts/idleconns -addr 127.0.0.1:30993 -user bench@bench.test -pass pw-bench -n 10000 -pid PID
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:993", "the server's IMAPS address")
	user := flag.String("user", "", "account to log in as")
	pass := flag.String("pass", "", "its password")
	n := flag.Int("n", 10000, "connections")
	pid := flag.Int("pid", 0, "the server's process id, for its VmRSS")
	sources := flag.Int("sources", 20, "loopback source addresses to spread the connections over (127.0.0.1…)")
	parallel := flag.Int("parallel", 64, "connections being set up at once")
	flag.Parse()
	if *user == "" || *pid == 0 {
		fmt.Fprintln(os.Stderr, "idleconns: -user, -pass and -pid are needed")
		os.Exit(2)
	}
	before, err := rss(*pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "idleconns:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var failed atomic.Int64
	var firstErr atomic.Value
	work := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range *parallel {
		wg.Go(func() {
			for i := range work {
				c, err := open(*addr, *user, *pass, i%*sources+1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Errorf("connection %d: %w", i, err))
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		})
	}
	for i := range *n {
		work <- i
	}
	close(work)
	wg.Wait()
	setup := time.Since(start)
	if failed.Load() > 0 {
		fmt.Fprintf(os.Stderr, "idleconns: %d connections failed; the first: %v\n", failed.Load(), firstErr.Load())
	}
	// Let the server settle (its per-connection work after "+ idling").
	time.Sleep(2 * time.Second)
	after, err := rss(*pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "idleconns:", err)
		os.Exit(1)
	}
	idle := len(conns)
	fmt.Printf("connections idling: %d (of %d; set up in %.1f s)\n", idle, *n, setup.Seconds())
	fmt.Printf("server VmRSS: %.1f MiB before, %.1f MiB with them: %.1f KiB a connection\n",
		float64(before)/1024, float64(after)/1024, float64(after-before)/float64(max(idle, 1)))
	for _, c := range conns {
		c.Close()
	}
	if failed.Load() > 0 {
		os.Exit(1)
	}
}

// open makes one connection from 127.0.0.src: TLS, LOGIN, SELECT INBOX,
// IDLE, and returns it once the server says it idles.
func open(addr, user, pass string, src int) (net.Conn, error) {
	d := &net.Dialer{Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(src))}}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the bench server's certificate is self-signed
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	for _, cmd := range []string{"a LOGIN " + quote(user) + " " + quote(pass), "b SELECT INBOX", "c IDLE"} {
		if _, err := fmt.Fprintf(c, "%s\r\n", cmd); err != nil {
			c.Close()
			return nil, err
		}
		tag := cmd[:1]
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				c.Close()
				return nil, fmt.Errorf("%s: %w", cmd[:min(len(cmd), 8)], err)
			}
			if tag == "c" && strings.HasPrefix(l, "+") {
				break
			}
			if strings.HasPrefix(l, tag+" ") {
				if !strings.HasPrefix(l, tag+" OK") {
					c.Close()
					return nil, fmt.Errorf("%s: %s", cmd[:min(len(cmd), 8)], strings.TrimSpace(l))
				}
				break
			}
		}
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

func quote(s string) string { return strconv.Quote(s) }

// rss is VmRSS of a process, in KiB.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
