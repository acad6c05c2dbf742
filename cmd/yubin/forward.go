package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"yubin/admin"
)

const forwardUsage = "usage: yubin forward set ADDRESS TARGET... [--keep-copy] | forward show ADDRESS | forward clear ADDRESS"

const forwardHelp = `Usage: yubin forward COMMAND [flags]

  set ADDRESS TARGET... [--keep-copy]  forward the account's mail to up to 10
                                       targets (local or remote addresses),
                                       replacing any earlier rule; with
                                       --keep-copy a copy also stays in the INBOX
  show ADDRESS                         show the account's forwarding
  clear ADDRESS                        stop forwarding

Mail discarded by virus scanning is never forwarded. Remote targets get the
message with an SRS sender address (so SPF passes) through the outbound queue.
Flags of every command: --config FILE, --data DIR, --json.
`

func cmdForward(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, forwardUsage)
		return 2
	}
	switch args[0] {
	case "set":
		return forwardSet(e, args[1:])
	case "show":
		return forwardShowClear(e, args[1:], false)
	case "clear":
		return forwardShowClear(e, args[1:], true)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, forwardHelp)
		return 0
	}
	fmt.Fprintf(e.stderr, "yubin: unknown forward command %q\n%s\n", args[0], forwardUsage)
	return 2
}

func forwardSet(e *env, args []string) int {
	a := newAdminCmd(e, "forward set", "yubin forward set ADDRESS TARGET... [--keep-copy]")
	keep := a.fs.Bool("keep-copy", false, "also keep a copy in the account's INBOX")
	pos, code, ok := a.parse(args, 2, 1<<20)
	if !ok {
		return code
	}
	if n := len(pos) - 1; n > admin.MaxForwardTargets {
		return fail(e, "forward set: at most %d targets, %d given; nothing changed", admin.MaxForwardTargets, n)
	}
	f, err := call(a, admin.OpForwardSet, admin.Forwarding{Address: pos[0], Targets: pos[1:], KeepCopy: *keep})
	if err != nil {
		return fail(e, "%v; nothing changed", err)
	}
	return a.out(f, func(w io.Writer) { printForward(w, f) })
}

func forwardShowClear(e *env, args []string, clear bool) int {
	name := "show"
	if clear {
		name = "clear"
	}
	a := newAdminCmd(e, "forward "+name, "yubin forward "+name+" ADDRESS")
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	var f admin.Forwarding
	err := a.with(func(ctx context.Context, api admin.API) (err error) {
		if clear {
			if _, err := admin.Do(ctx, api, admin.OpForwardClear, pos[0]); err != nil {
				return err
			}
		}
		f, err = admin.Do(ctx, api, admin.OpForwardShow, pos[0])
		return err
	})
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(f, func(w io.Writer) { printForward(w, f) })
}

func printForward(w io.Writer, f admin.Forwarding) {
	if len(f.Targets) == 0 {
		fmt.Fprintf(w, "%s does not forward its mail.\n", f.Address)
		return
	}
	copyNote := "no copy is kept"
	if f.KeepCopy {
		copyNote = "a copy stays in the INBOX"
	}
	fmt.Fprintf(w, "%s forwards to %d address(es); %s:\n  %s\n", f.Address, len(f.Targets), copyNote, strings.Join(f.Targets, "\n  "))
}
