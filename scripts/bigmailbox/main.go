// Command bigmailbox measures an IMAP server on one very large mailbox
// (issue #18: a 100k-message INBOX): SELECT, UID FETCH 1:* (FLAGS),
// UID SEARCH by a header and by text, each timed cold (the first time after
// the server started) and warm (the median of the next rounds), with the
// number of results, so that two servers given the same messages can be
// compared in one run. scripts/bigmailbox.sh sets up Yubin and Dovecot with
// the same Maildir and runs it against both.
//
//	go run ./scripts/bigmailbox gen -n 100000 DIR       # a Maildir (DIR/cur) of n messages
//	go run ./scripts/bigmailbox measure -name yubin -addr 127.0.0.1:30993 -user U -pass P
//	go run ./scripts/bigmailbox load -addr 127.0.0.1:30993 -users 'load%d@bench.test' -pass P -clients 100
//
// load is the other figure of issue #18: many clients at once, each
// logged in to an account of its own and fetching its whole mailbox
// (UID FETCH 1:* (FLAGS ENVELOPE)) again and again for a while; it reports
// the fetches per second and their latency (median, p99), the first
// fetch of each client apart. scripts/manyclients.sh runs it against
// Yubin and Dovecot.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(os.Args[2:])
	case "measure":
		err = measure(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bigmailbox:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: bigmailbox gen [-n N] DIR | measure -name NAME -addr HOST:PORT -user U -pass P [-rounds R] | load -name NAME -addr HOST:PORT -users FMT -pass P [-clients N] [-duration D]")
	os.Exit(2)
}

// The words the searches look for: needleSubject is in the Subject of
// one message in needleEvery, needleText in the body of one in
// needleEvery (other ones).
const (
	needleSubject = "quarterly-zephyr"
	needleText    = "marmalade-octopus"
	needleEvery   = 1000
)

var words = strings.Fields(`meeting report invoice project schedule update review budget design
release customer server network backup account travel lunch contract proposal deadline agenda
summary draft feedback order delivery payment support ticket question answer minutes plan`)

// gen writes n messages into DIR/cur as a Maildir, the same for every run.
func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	n := fs.Int("n", 100000, "messages")
	fs.Parse(args)
	if fs.NArg() != 1 {
		usage()
	}
	dir := fs.Arg(0)
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var b strings.Builder
	for i := range *n {
		b.Reset()
		subject := words[r.IntN(len(words))] + " " + words[r.IntN(len(words))]
		if i%needleEvery == 7 {
			subject += " " + needleSubject
		}
		date := base.Add(time.Duration(i) * time.Minute)
		fmt.Fprintf(&b, "From: Sender %d <sender%d@example.org>\r\nTo: big@bench.test\r\nSubject: %s %d\r\nDate: %s\r\nMessage-ID: <big-%d@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
			i%500, i%500, subject, i, date.Format(time.RFC1123Z), i)
		for line := range 20 {
			for w := range 10 {
				if w > 0 {
					b.WriteByte(' ')
				}
				if i%needleEvery == 500 && line == 10 && w == 5 {
					b.WriteString(needleText)
					continue
				}
				b.WriteString(words[r.IntN(len(words))])
			}
			b.WriteString("\r\n")
		}
		name := fmt.Sprintf("%d.M%dP1.bench,S=%d:2,", date.Unix(), i, b.Len())
		if err := os.WriteFile(filepath.Join(dir, "cur", name), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("%d messages in %s\n", *n, dir)
	return nil
}

type op struct {
	name string
	run  func(c *imapclient.Client) (int, error)
}

func measure(args []string) error {
	fs := flag.NewFlagSet("measure", flag.ExitOnError)
	name := fs.String("name", "server", "name in the output")
	addr := fs.String("addr", "", "imaps host:port")
	user := fs.String("user", "", "")
	pass := fs.String("pass", "", "")
	rounds := fs.Int("rounds", 3, "warm rounds after the cold one")
	fs.Parse(args)
	c, err := imapclient.DialTLS(*addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(*user, *pass).Wait(); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	ops := []op{
		{"SELECT INBOX", func(c *imapclient.Client) (int, error) {
			d, err := c.Select("INBOX", nil).Wait()
			if err != nil {
				return 0, err
			}
			return int(d.NumMessages), nil
		}},
		{"UID FETCH 1:* (FLAGS)", func(c *imapclient.Client) (int, error) {
			var all imap.UIDSet
			all.AddRange(1, 0)
			msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true}).Collect()
			return len(msgs), err
		}},
		{"UID FETCH 1:* (FLAGS ENVELOPE)", func(c *imapclient.Client) (int, error) {
			var all imap.UIDSet
			all.AddRange(1, 0)
			msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
			return len(msgs), err
		}},
		{"UID SEARCH HEADER Subject", func(c *imapclient.Client) (int, error) {
			d, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: needleSubject}}}, nil).Wait()
			if err != nil {
				return 0, err
			}
			return len(d.AllUIDs()), nil
		}},
		{"UID SEARCH TEXT", func(c *imapclient.Client) (int, error) {
			d, err := c.UIDSearch(&imap.SearchCriteria{Text: []string{needleText}}, nil).Wait()
			if err != nil {
				return 0, err
			}
			return len(d.AllUIDs()), nil
		}},
	}
	for _, o := range ops {
		var times []time.Duration
		n := 0
		for round := 0; round <= *rounds; round++ {
			if o.name == "SELECT INBOX" && round > 0 {
				if err := c.Unselect().Wait(); err != nil {
					return err
				}
			}
			start := time.Now()
			got, err := o.run(c)
			if err != nil {
				return fmt.Errorf("%s: %w", o.name, err)
			}
			times = append(times, time.Since(start))
			if round > 0 && got != n {
				return fmt.Errorf("%s: %d results, then %d", o.name, n, got)
			}
			n = got
		}
		warm := slices.Clone(times[1:])
		slices.Sort(warm)
		med := time.Duration(0)
		if len(warm) > 0 {
			med = warm[len(warm)/2]
		}
		fmt.Printf("%s\t%s\tcold %.3f s\twarm %.3f s\tresults %d\n", *name, o.name, times[0].Seconds(), med.Seconds(), n)
	}
	return c.Logout().Wait()
}

// load runs -clients clients at once, client i logged in as -users with
// i, each fetching its INBOX's flags and envelopes in a loop until
// -duration has passed.
func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	name := fs.String("name", "server", "name in the output")
	addr := fs.String("addr", "", "imaps host:port")
	users := fs.String("users", "load%d@bench.test", "account of client i (a fmt pattern)")
	pass := fs.String("pass", "", "")
	clients := fs.Int("clients", 100, "")
	duration := fs.Duration("duration", 30*time.Second, "how long the clients fetch")
	sources := fs.Int("sources", 50, "loopback source addresses the clients are spread over (127.0.0.1…)")
	fs.Parse(args)
	type result struct {
		first time.Duration
		times []time.Duration
		msgs  int
		err   error
	}
	results := make(chan result, *clients)
	ready := make(chan struct{})
	var deadline time.Time
	for i := range *clients {
		go func() {
			var r result
			defer func() { results <- r }()
			// From 127.0.0.1…127.0.0.sources, as clients behind many
			// addresses: the server's per-address limits are for one client.
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%*sources))}}
			conn, err := tls.DialWithDialer(&d, "tcp", *addr, &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				r.err = err
				<-ready
				return
			}
			c := imapclient.New(conn, nil)
			defer c.Close()
			user := fmt.Sprintf(*users, i)
			if err := c.Login(user, *pass).Wait(); err != nil {
				r.err = fmt.Errorf("login %s: %w", user, err)
				<-ready
				return
			}
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				r.err = err
				<-ready
				return
			}
			<-ready
			var all imap.UIDSet
			all.AddRange(1, 0)
			for n := 0; ; n++ {
				start := time.Now()
				msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
				if err != nil {
					r.err = err
					return
				}
				d := time.Since(start)
				if n == 0 {
					r.first = d
				} else {
					r.times = append(r.times, d)
					r.msgs += len(msgs)
				}
				if time.Now().After(deadline) {
					return
				}
			}
		}()
	}
	deadline = time.Now().Add(*duration)
	start := time.Now()
	close(ready)
	var firsts, times []time.Duration
	msgs := 0
	for range *clients {
		r := <-results
		if r.err != nil {
			return r.err
		}
		firsts = append(firsts, r.first)
		times = append(times, r.times...)
		msgs += r.msgs
	}
	elapsed := time.Since(start)
	slices.Sort(firsts)
	slices.Sort(times)
	pct := func(ts []time.Duration, p float64) float64 {
		if len(ts) == 0 {
			return 0
		}
		return ts[min(len(ts)-1, int(p*float64(len(ts))))].Seconds()
	}
	fmt.Printf("%s\t%d clients\t%.1f s\tfirst fetch median %.3f s p99 %.3f s\tthen %d fetches (%.1f/s, %.0f msg/s)\tmedian %.3f s\tp99 %.3f s\n",
		*name, *clients, elapsed.Seconds(), pct(firsts, 0.5), pct(firsts, 0.99), len(times), float64(len(times))/elapsed.Seconds(), float64(msgs)/elapsed.Seconds(), pct(times, 0.5), pct(times, 0.99))
	return nil
}
