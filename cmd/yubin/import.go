package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"yubin/admin"
	"yubin/internal/mailimport"
)

const importSynopsis = "yubin import ADDRESS PATH|imaps://USER@HOST[:PORT]|imap://USER@HOST[:PORT] [--into MAILBOX] [--ca FILE] [--insecure]"

const importHelp = `Usage: ` + importSynopsis + `

Moves mail into the account ADDRESS, with its flags, dates and folders:

  PATH                     a Maildir (cur/ and new/, with its Maildir++ folders
                           .Sub.Folder as Sub/Folder), an mbox file (into INBOX),
                           or a directory of mbox files, each a mailbox
                           (Thunderbird's Name.sbd/ directories included)
  imaps://USER@HOST[:PORT] every mailbox of USER on the old provider's IMAP
                           server, TLS from the start (port 993)
  imap://USER@HOST[:PORT]  the same over STARTTLS (port 143); never without TLS

The IMAP password is read from stdin (one line), or from a prompt on a terminal.
Running the same import again brings in only what is missing. The account's
quota stops an import with what fits imported (exit status 1).

  --into MAILBOX   put everything below MAILBOX (the source's INBOX into MAILBOX)
  --ca FILE        trust the IMAP server's certificate from this PEM file
  --insecure       do not verify the IMAP server's certificate (warns)

Flags of every command: --config FILE, --data DIR, --json.
`

func cmdImport(e *env, args []string) int {
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprint(e.stdout, importHelp)
		return 0
	}
	a := newAdminCmd(e, "import", importSynopsis)
	into := a.fs.String("into", "", "put everything below `MAILBOX` (the source's INBOX into MAILBOX itself)")
	caFile := a.fs.String("ca", "", "trust the IMAP server's certificate from this PEM `FILE`")
	insecure := a.fs.Bool("insecure", false, "do not verify the IMAP server's certificate")
	pos, code, ok := a.parse(args, 2, 2)
	if !ok {
		return code
	}
	addr, from := pos[0], pos[1]
	if *into != "" {
		if n := mailimport.MailboxName(strings.Split(*into, "/")); n != strings.Trim(*into, "/") || n == "INBOX" {
			return fail(e, "import: --into %q: not a mailbox name to import into", *into)
		}
		*into = strings.Trim(*into, "/")
	}
	cfg, _, err := a.c.load()
	if err != nil {
		return fail(e, "%v", err)
	}
	maxMsg := min(cfg.IMAP.AppendLimit, admin.MaxImportMessage)
	// The account first: a wrong address is said before anything is read
	// or the old server is asked.
	if _, err := call(a, admin.OpAccountShow, addr); err != nil {
		return fail(e, "import: %v", err)
	}

	ctx := context.Background()
	var src mailimport.Source
	var files *mailimport.Files
	if strings.Contains(from, "://") {
		u, err := mailimport.IMAPURL(from)
		if err != nil {
			return fail(e, "import: %v", err)
		}
		tlsConfig, err := importTLS(e, *caFile, *insecure)
		if err != nil {
			return fail(e, "import: %v", err)
		}
		pw, err := sourcePassword(e, u.User.Username(), mailimport.Address(u))
		if err != nil {
			return fail(e, "import: %v", err)
		}
		s, err := mailimport.DialIMAP(ctx, u, pw, tlsConfig)
		if err != nil {
			return fail(e, "import: %v", err)
		}
		src = s
	} else {
		if *caFile != "" || *insecure {
			return fail(e, "import: --ca and --insecure are for an imaps:// or imap:// source")
		}
		files, err = mailimport.OpenFiles(from, maxMsg)
		if err != nil {
			return fail(e, "import: %v", err)
		}
		src = files
	}
	defer src.Close()

	p := &importProgress{e: e, live: e.stdoutIsTerminal && !a.c.json, quiet: a.c.json}
	if files != nil && !a.c.json {
		for _, s := range files.Skipped {
			fmt.Fprintf(e.stdout, "skipped %s\n", s)
		}
	}
	var res *mailimport.Result
	err = a.with(func(ctx context.Context, api admin.API) error {
		var err error
		res, err = mailimport.Run(ctx, api, src, mailimport.Options{Address: addr, Into: *into, MaxMessage: maxMsg, Progress: p.show})
		return err
	})
	p.end()
	if res != nil && files != nil {
		res.SkippedFiles = files.Skipped
	}
	if res == nil {
		return fail(e, "import: %v", err)
	}
	if a.c.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else {
		for _, w := range res.TooBigFrom {
			fmt.Fprintf(e.stdout, "not imported, over %s: %s\n", admin.FormatBytes(maxMsg), w)
		}
		switch len(res.Created) {
		case 0:
		case 1:
			fmt.Fprintf(e.stdout, "made the mailbox %s\n", res.Created[0])
		default:
			fmt.Fprintf(e.stdout, "made %d mailboxes: %s\n", len(res.Created), strings.Join(res.Created, ", "))
		}
	}
	var full *mailimport.FullError
	switch {
	case errors.As(err, &full):
		return fail(e, "import: stopped: %v: %s imported, %s not; raise the quota (yubin account quota %s SIZE) and run the same import again: it brings in only what is missing",
			full, plural(res.Imported, "message"), thousands(int64(full.Left)), res.Account.Address)
	case err != nil:
		return fail(e, "import: %v (%s imported before it; running the same import again brings in only what is missing)", err, plural(res.Imported, "message"))
	}
	if !a.c.json {
		fmt.Fprintf(e.stdout, "imported %s (%s) into %s", plural(res.Imported, "message"), admin.FormatBytes(res.Bytes), res.Account.Address)
		if res.Skipped > 0 {
			fmt.Fprintf(e.stdout, "; %s there already", thousands(int64(res.Skipped)))
		}
		fmt.Fprintln(e.stdout)
	}
	if res.TooBig > 0 {
		return fail(e, "import: %s over %s not imported (listed above)", plural(res.TooBig, "message"), admin.FormatBytes(maxMsg))
	}
	return 0
}

// importTLS is the TLS configuration for the IMAP source: the system's
// roots, those of caFile, or none checked.
func importTLS(e *env, caFile string, insecure bool) (*tls.Config, error) {
	switch {
	case insecure && caFile != "":
		return nil, errors.New("--ca and --insecure together: give one")
	case insecure:
		fmt.Fprintln(e.stderr, "yubin: warning: --insecure: the IMAP server's certificate is not checked; the password goes to whoever answers")
		return &tls.Config{InsecureSkipVerify: true}, nil
	case caFile != "":
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s: no PEM certificate in it", caFile)
		}
		return &tls.Config{RootCAs: pool}, nil
	}
	return nil, nil
}

// sourcePassword reads the IMAP source's password: a prompt on a
// terminal, else the first line of stdin.
func sourcePassword(e *env, user, server string) (string, error) {
	if e.stdinIsTerminal {
		fmt.Fprintf(e.stderr, "Password of %s at %s: ", user, server)
		pw, err := promptPassword(e)
		if err != nil {
			return "", err
		}
		if pw == "" {
			return "", errors.New("the password is empty")
		}
		return pw, nil
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("no password on stdin for %s at %s (give it as one line)", user, server)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if pw == "" {
		return "", errors.New("the password on stdin is empty")
	}
	return pw, nil
}

// importProgress tells how an import goes: on a terminal a bar written
// over as batches go, else a line per mailbox (and per 1,000 messages of
// a big one).
type importProgress struct {
	e      *env
	live   bool // a terminal: the bar is rewritten
	quiet  bool // --json: nothing
	shown  bool
	lastAt int // the messages of the current mailbox at the last line
	box    int
}

const barWidth = 24

func (p *importProgress) show(s mailimport.Status) {
	if p.quiet {
		return
	}
	b := s.Mailboxes[s.Current]
	if p.live {
		done := s.Done()
		frac := 1.0
		if s.Total > 0 {
			frac = float64(done) / float64(s.Total)
		}
		n := int(frac * barWidth)
		name := b.Name
		if len([]rune(name)) > 24 {
			name = string([]rune(name)[:23]) + "…"
		}
		fmt.Fprintf(p.e.stdout, "\r[%s%s] %3d%%  %s/%s  %s  %-24s", strings.Repeat("#", n), strings.Repeat("-", barWidth-n),
			int(frac*100), thousands(int64(done)), thousands(int64(s.Total)), admin.FormatBytes(s.Bytes), name)
		p.shown = true
		return
	}
	if s.Current != p.box {
		p.box, p.lastAt = s.Current, 0
	}
	if s.MailboxDone {
		if b.Messages == 0 {
			fmt.Fprintf(p.e.stdout, "%s: empty\n", b.Name)
			return
		}
		line := fmt.Sprintf("%s: %s imported", b.Name, thousands(int64(b.Imported)))
		if b.Skipped > 0 {
			line += fmt.Sprintf(", %s there already", thousands(int64(b.Skipped)))
		}
		if b.TooBig > 0 {
			line += fmt.Sprintf(", %s too big", thousands(int64(b.TooBig)))
		}
		fmt.Fprintln(p.e.stdout, line+fmt.Sprintf(" (of %s)", thousands(int64(b.Messages))))
		return
	}
	if d := b.Done(); d/1000 > p.lastAt/1000 && d < b.Messages {
		fmt.Fprintf(p.e.stdout, "%s: %s of %s\n", b.Name, thousands(int64(d)), thousands(int64(b.Messages)))
		p.lastAt = d
	}
}

func (p *importProgress) end() {
	if p.shown {
		fmt.Fprintln(p.e.stdout)
		p.shown = false
	}
}
