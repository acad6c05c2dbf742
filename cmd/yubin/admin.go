package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"yubin/admin"
	"yubin/internal/address"
)

const (
	domainUsage  = "usage: yubin domain add NAME [--parent P] | domain list | domain remove NAME"
	accountUsage = "usage: yubin account add ADDRESS [--role admin|user] [--quota Q] [--password-stdin] | passwd ADDRESS [--password-stdin] | quota ADDRESS Q | role ADDRESS admin|user | list [DOMAIN] | show ADDRESS | remove ADDRESS"
)

const domainHelp = `Usage: yubin domain COMMAND [flags]

  add NAME [--parent P]   add a domain; with --parent, a child domain whose mail
                          goes to the accounts of P (info@NAME -> info@P)
  list                    list domains
  remove NAME             remove a domain without accounts and child domains

Flags of every command: --config FILE, --data DIR, --json.
Run "yubin domain COMMAND --help" for a command's flags.
`

const accountHelp = `Usage: yubin account COMMAND [flags]

  add ADDRESS [--role admin|user] [--quota Q] [--password-stdin]
                          add an account on a parent domain
  passwd ADDRESS [--password-stdin]
                          change an account's password
  quota ADDRESS Q         set the quota: bytes or 500M, 1G, 1.5G... (powers of
                          1024); 0 or "unlimited" for no limit
  role ADDRESS admin|user set the role: admin (the domain's site admin, who may
                          use the web's Site Manager) or user
  list [DOMAIN]           list accounts, of one domain or all
  show ADDRESS            show an account, its usage and mailboxes
  remove ADDRESS          remove an account and all its mail

Passwords are read from a prompt on the terminal, or one line from stdin with
--password-stdin; never from the command line.
Flags of every command: --config FILE, --data DIR, --json.
`

func cmdDomain(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, domainUsage)
		return 2
	}
	switch args[0] {
	case "add":
		return domainAdd(e, args[1:])
	case "list", "ls":
		return domainList(e, args[1:])
	case "remove", "rm":
		return domainRemove(e, args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, domainHelp)
		return 0
	}
	fmt.Fprintf(e.stderr, "yubin: unknown domain command %q\n%s\n", args[0], domainUsage)
	return 2
}

func cmdAccount(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, accountUsage)
		return 2
	}
	switch args[0] {
	case "add":
		return accountAdd(e, args[1:])
	case "passwd", "password":
		return accountPasswd(e, args[1:])
	case "quota":
		return accountQuota(e, args[1:])
	case "role":
		return accountRole(e, args[1:])
	case "list", "ls":
		return accountList(e, args[1:])
	case "show":
		return accountShow(e, args[1:])
	case "remove", "rm":
		return accountRemove(e, args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, accountHelp)
		return 0
	}
	fmt.Fprintf(e.stderr, "yubin: unknown account command %q\n%s\n", args[0], accountUsage)
	return 2
}

// adminCmd is one admin subcommand being run.
type adminCmd struct {
	e        *env
	fs       *flag.FlagSet
	c        common
	synopsis string
}

func newAdminCmd(e *env, name, synopsis string) *adminCmd {
	a := &adminCmd{e: e, fs: flag.NewFlagSet(name, flag.ContinueOnError), synopsis: synopsis}
	a.c.register(a.fs, true)
	return a
}

// parse parses args and checks the number of positional arguments. When
// ok is false the command is over with exit status code.
func (a *adminCmd) parse(args []string, minPos, maxPos int) (pos []string, code int, ok bool) {
	pos, err := parseArgs(a.fs, args)
	return a.check(pos, err, minPos, maxPos)
}

// check handles the outcome of parsing flags.
func (a *adminCmd) check(pos []string, err error, minPos, maxPos int) ([]string, int, bool) {
	if errors.Is(err, flag.ErrHelp) {
		flagUsage(a.e.stdout, a.fs, a.synopsis)
		return nil, 0, false
	}
	if err != nil {
		fmt.Fprintf(a.e.stderr, "yubin: %v\nusage: %s\n", err, a.synopsis)
		return nil, 2, false
	}
	if len(pos) < minPos || len(pos) > maxPos {
		fmt.Fprintf(a.e.stderr, "usage: %s\n", a.synopsis)
		return nil, 2, false
	}
	return pos, 0, true
}

// with runs fn on the admin API of the configured data dir — the running
// server's control socket, or the store — and releases it right after.
func (a *adminCmd) with(fn func(ctx context.Context, api admin.API) error) error {
	cfg, _, err := a.c.load()
	if err != nil {
		return err
	}
	api, release, err := admin.Open(cfg)
	if err != nil {
		return err
	}
	defer release()
	return fn(context.Background(), api)
}

// call runs one admin operation on the configured data dir — through the
// running server or on the store, see with — and returns its result.
func call[Req, Resp any](a *adminCmd, op admin.Op[Req, Resp], req Req) (Resp, error) {
	var resp Resp
	err := a.with(func(ctx context.Context, api admin.API) (err error) {
		resp, err = admin.Do(ctx, api, op, req)
		return err
	})
	return resp, err
}

// out prints v as JSON with --json, else runs text.
func (a *adminCmd) out(v any, text func(w io.Writer)) int {
	if a.c.json {
		enc := json.NewEncoder(a.e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fail(a.e, "%v", err)
		}
		return 0
	}
	text(a.e.stdout)
	return 0
}

func table(w io.Writer, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// normal returns addr lower-cased as the store keeps it (for messages).
func normal(addr string) string {
	if a, err := address.Parse(strings.TrimSpace(addr)); err == nil {
		return a.String()
	}
	return addr
}

func domainAdd(e *env, args []string) int {
	a := newAdminCmd(e, "domain add", "yubin domain add NAME [--parent P]")
	parent := a.fs.String("parent", "", "make NAME a child domain of the parent domain `P`: mail for local@NAME goes to the account local@P")
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	d, err := call(a, admin.OpDomainAdd, admin.NewDomain{Name: pos[0], Parent: *parent})
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(d, func(w io.Writer) {
		if d.Parent != "" {
			fmt.Fprintf(w, "added domain %s (child of %s: its mail goes to the accounts of %s)\n", d.Name, d.Parent, d.Parent)
		} else {
			fmt.Fprintf(w, "added domain %s\n", d.Name)
		}
	})
}

func domainList(e *env, args []string) int {
	a := newAdminCmd(e, "domain list", "yubin domain list")
	if _, code, ok := a.parse(args, 0, 0); !ok {
		return code
	}
	ds, err := call(a, admin.OpDomainList, admin.None{})
	if err != nil {
		return fail(e, "%v", err)
	}
	if ds == nil {
		ds = []admin.Domain{}
	}
	return a.out(ds, func(w io.Writer) {
		if len(ds) == 0 {
			fmt.Fprintln(w, "no domains (add one with: yubin domain add NAME)")
			return
		}
		rows := [][]string{{"DOMAIN", "PARENT", "ACCOUNTS"}}
		for _, d := range ds {
			parent, n := "-", fmt.Sprint(d.Accounts)
			if d.Parent != "" {
				parent, n = d.Parent, "-"
			}
			rows = append(rows, []string{d.Name, parent, n})
		}
		table(w, rows)
	})
}

func domainRemove(e *env, args []string) int {
	a := newAdminCmd(e, "domain remove", "yubin domain remove NAME")
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	_, err := call(a, admin.OpDomainRemove, pos[0])
	if err != nil {
		return fail(e, "%v", err)
	}
	name := strings.ToLower(strings.TrimSpace(pos[0]))
	return a.out(map[string]string{"removed": name}, func(w io.Writer) {
		fmt.Fprintf(w, "removed domain %s\n", name)
	})
}

func accountAdd(e *env, args []string) int {
	a := newAdminCmd(e, "account add", "yubin account add ADDRESS [--role admin|user] [--quota Q] [--password-stdin]")
	role := a.fs.String("role", "user", "`role` of the account: admin (the domain's site admin) or user")
	quotaFlag := a.fs.String("quota", "", "quota: bytes or a size like 500M, 1G (powers of 1024); 0 = unlimited (default: store.default_quota of the config)")
	fromStdin := a.fs.Bool("password-stdin", false, "read the password from the first line of stdin instead of prompting")
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	na := admin.NewAccount{Address: pos[0], Role: *role}
	if *quotaFlag != "" {
		q, err := admin.ParseQuota(*quotaFlag)
		if err != nil {
			return fail(e, "%v", err)
		}
		na.Quota = &q
	}
	// Check everything but the password before asking for it, and do not
	// hold the store while the user types.
	dry := na
	dry.DryRun = true
	if _, err := call(a, admin.OpAccountAdd, dry); err != nil {
		return fail(e, "%v", err)
	}
	pw, err := readPassword(e, *fromStdin, normal(pos[0]))
	if err != nil {
		return fail(e, "%v", err)
	}
	na.Password = pw
	acct, err := call(a, admin.OpAccountAdd, na)
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(acct, func(w io.Writer) {
		fmt.Fprintf(w, "added account %s (%s, quota %s)\n", acct.Address, acct.Role, admin.FormatQuota(acct.Quota))
	})
}

func accountPasswd(e *env, args []string) int {
	a := newAdminCmd(e, "account passwd", "yubin account passwd ADDRESS [--password-stdin]")
	fromStdin := a.fs.Bool("password-stdin", false, "read the password from the first line of stdin instead of prompting")
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	d, err := call(a, admin.OpAccountShow, pos[0])
	if err != nil {
		return fail(e, "%v", err)
	}
	addr := d.Address
	pw, err := readPassword(e, *fromStdin, addr)
	if err != nil {
		return fail(e, "%v", err)
	}
	if _, err := call(a, admin.OpAccountPasswd, admin.PasswordChange{Address: addr, Password: pw}); err != nil {
		return fail(e, "%v", err)
	}
	return a.out(map[string]any{"address": addr, "password_changed": true}, func(w io.Writer) {
		fmt.Fprintf(w, "changed the password of %s\n", addr)
	})
}

func accountRole(e *env, args []string) int {
	a := newAdminCmd(e, "account role", "yubin account role ADDRESS admin|user")
	pos, code, ok := a.parse(args, 2, 2)
	if !ok {
		return code
	}
	acct, err := call(a, admin.OpAccountRole, admin.RoleChange{Address: pos[0], Role: pos[1]})
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(acct, func(w io.Writer) { fmt.Fprintf(w, "%s is now %s\n", acct.Address, acct.Role) })
}

func accountQuota(e *env, args []string) int {
	a := newAdminCmd(e, "account quota", "yubin account quota ADDRESS Q   (Q: bytes or 500M, 1G, 1.5G...; 0 = unlimited)")
	// A negative quota ("-1G") is a bad value, not an unknown flag: keep
	// arguments that start with "-" and a digit positional.
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case len(arg) < 2 || arg[0] != '-' || arg[1] >= '0' && arg[1] <= '9' || arg[1] == '.':
			positional = append(positional, arg)
		default:
			flags = append(flags, arg)
			if n := strings.TrimLeft(arg, "-"); (n == "config" || n == "data") && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		}
	}
	a.fs.SetOutput(io.Discard)
	err := a.fs.Parse(flags)
	if err == nil && a.fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", a.fs.Arg(0))
	}
	pos, code, ok := a.check(positional, err, 2, 2)
	if !ok {
		return code
	}
	q, err := admin.ParseQuota(pos[1])
	if err != nil {
		return fail(e, "%v", err)
	}
	acct, err := call(a, admin.OpAccountQuota, admin.QuotaChange{Address: pos[0], Quota: q})
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(acct, func(w io.Writer) {
		fmt.Fprintf(w, "set the quota of %s to %s; usage: %s\n", acct.Address, admin.FormatQuota(acct.Quota), admin.FormatUsage(acct.Used, acct.Quota))
	})
}

func accountList(e *env, args []string) int {
	a := newAdminCmd(e, "account list", "yubin account list [DOMAIN]")
	pos, code, ok := a.parse(args, 0, 1)
	if !ok {
		return code
	}
	domain := ""
	if len(pos) == 1 {
		domain = pos[0]
	}
	as, err := call(a, admin.OpAccountList, domain)
	if err != nil {
		return fail(e, "%v", err)
	}
	if as == nil {
		as = []admin.Account{}
	}
	return a.out(as, func(w io.Writer) {
		if len(as) == 0 {
			fmt.Fprintln(w, "no accounts (add one with: yubin account add ADDRESS)")
			return
		}
		rows := [][]string{{"ADDRESS", "ROLE", "USAGE"}}
		for _, ac := range as {
			rows = append(rows, []string{ac.Address, ac.Role, admin.FormatUsage(ac.Used, ac.Quota)})
		}
		table(w, rows)
	})
}

func accountShow(e *env, args []string) int {
	a := newAdminCmd(e, "account show", "yubin account show ADDRESS")
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	d, err := call(a, admin.OpAccountShow, pos[0])
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(d, func(w io.Writer) {
		table(w, [][]string{
			{"Address:", d.Address},
			{"Role:", d.Role},
			{"Quota:", admin.FormatQuota(d.Quota)},
			{"Usage:", admin.FormatUsage(d.Used, d.Quota)},
			{"Receives mail for:", strings.Join(d.Addresses, ", ")},
			{"Created:", d.Created.UTC().Format(time.DateTime + " MST")},
		})
		fmt.Fprintln(w)
		rows := [][]string{{"MAILBOX", "MESSAGES", "SIZE"}}
		for _, m := range d.Mailboxes {
			rows = append(rows, []string{m.Name, fmt.Sprint(m.Messages), admin.FormatBytes(m.Size)})
		}
		table(w, rows)
	})
}

func accountRemove(e *env, args []string) int {
	a := newAdminCmd(e, "account remove", "yubin account remove ADDRESS")
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	_, err := call(a, admin.OpAccountRemove, pos[0])
	if err != nil {
		return fail(e, "%v", err)
	}
	addr := normal(pos[0])
	return a.out(map[string]string{"removed": addr}, func(w io.Writer) {
		fmt.Fprintf(w, "removed account %s and all its mail\n", addr)
	})
}

// readPassword reads a new password: one line of stdin with
// --password-stdin, else twice from a prompt on the terminal.
func readPassword(e *env, fromStdin bool, addr string) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			if errors.Is(err, io.EOF) {
				return "", errors.New("--password-stdin: no password on stdin")
			}
			return "", fmt.Errorf("--password-stdin: %v", err)
		}
		pw := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if pw == "" {
			return "", errors.New("--password-stdin: the password is empty")
		}
		return pw, nil
	}
	if !e.stdinIsTerminal {
		return "", errors.New("stdin is not a terminal, so there is no prompt for the password: pass it on stdin with --password-stdin")
	}
	fmt.Fprintf(e.stderr, "New password for %s: ", addr)
	pw, err := promptPassword(e)
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errors.New("the password is empty")
	}
	fmt.Fprint(e.stderr, "Repeat the password: ")
	again, err := promptPassword(e)
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the passwords do not match; nothing changed")
	}
	return pw, nil
}

// promptPassword reads a line from the terminal without echo. Tests
// replace it.
var promptPassword = func(e *env) (string, error) {
	f, ok := e.stdin.(*os.File)
	if !ok {
		return "", errors.New("cannot prompt for a password: stdin is not a terminal")
	}
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return "", fmt.Errorf("reading the password: %v", err)
	}
	return string(b), nil
}
