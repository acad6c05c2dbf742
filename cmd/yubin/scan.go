package main

import (
	"fmt"
	"io"

	"yubin/admin"
	"yubin/store"
)

const scanUsage = "usage: yubin scan policy ADDRESS [--oversize=discard|accept] [--depth=discard|accept] [--extract-size=discard|accept] [--partial=discard|accept] [--encrypted=accept|reject] | scan show ADDRESS"

const scanHelp = `Usage: yubin scan COMMAND [flags]

  policy ADDRESS [flags]  change the inbound scanning policy of an account;
                          only the conditions named by flags change
      --oversize=discard|accept      message larger than the scan limit (5 MiB)
      --depth=discard|accept         archives nested too deep (10)
      --extract-size=discard|accept  a file inside an archive too big (100 MiB/200 MiB)
      --partial=discard|accept       message/partial
      --encrypted=accept|reject      password-protected archive member
  show ADDRESS            show an account's inbound scanning policy

discard (the default) keeps only the headers and sends the recipient a report;
accept delivers the message unchecked, with a header saying why.
Flags of every command: --config FILE, --data DIR, --json.
`

func cmdScan(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, scanUsage)
		return 2
	}
	switch args[0] {
	case "policy":
		return scanPolicy(e, args[1:])
	case "show":
		return scanShow(e, args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, scanHelp)
		return 0
	}
	fmt.Fprintf(e.stderr, "yubin: unknown scan command %q\n%s\n", args[0], scanUsage)
	return 2
}

func scanPolicy(e *env, args []string) int {
	a := newAdminCmd(e, "scan policy", "yubin scan policy ADDRESS [--oversize=…] [--depth=…] [--extract-size=…] [--partial=…] [--encrypted=…]")
	oversize := a.fs.String("oversize", "", "message over the scan size limit: `discard|accept`")
	depth := a.fs.String("depth", "", "archives nested too deep: `discard|accept`")
	extract := a.fs.String("extract-size", "", "file inside an archive too big: `discard|accept`")
	partial := a.fs.String("partial", "", "message/partial: `discard|accept`")
	encrypted := a.fs.String("encrypted", "", "password-protected archive member: `accept|reject`")
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	change := store.ScanPolicy{
		Oversize: store.ScanAction(*oversize), Depth: store.ScanAction(*depth),
		ExtractSize: store.ScanAction(*extract), Partial: store.ScanAction(*partial),
		Encrypted: store.ScanAction(*encrypted),
	}
	if change == (store.ScanPolicy{}) {
		return fail(e, "scan policy: nothing to change (give at least one of --oversize, --depth, --extract-size, --partial, --encrypted)")
	}
	p, err := call(a, admin.OpScanPolicy, admin.ScanPolicyChange{Address: pos[0], Change: change})
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(p, func(w io.Writer) { printPolicy(w, p) })
}

func scanShow(e *env, args []string) int {
	a := newAdminCmd(e, "scan show", "yubin scan show ADDRESS")
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	p, err := call(a, admin.OpScanShow, pos[0])
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(p, func(w io.Writer) { printPolicy(w, p) })
}

func printPolicy(w io.Writer, p admin.ScanPolicy) {
	fmt.Fprintf(w, "Inbound scanning policy of %s:\n", p.Address)
	table(w, [][]string{
		{"  oversize", string(p.Oversize)},
		{"  depth", string(p.Depth)},
		{"  extract-size", string(p.ExtractSize)},
		{"  partial", string(p.Partial)},
		{"  encrypted", string(p.Encrypted)},
	})
}
