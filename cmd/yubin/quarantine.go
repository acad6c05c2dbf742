package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"yubin/admin"
	"yubin/internal/mailtext"
)

const quarantineUsage = "usage: yubin quarantine list ADDRESS|DOMAIN | quarantine show ID | quarantine release ID... | quarantine delete ID..."

const quarantineHelp = `Usage: yubin quarantine COMMAND [flags]

  list ADDRESS|DOMAIN  the mail held for an account, or for every account of a
                       domain, oldest first
  show ID              one held message: its header fields and its text, as
                       plain text (HTML is converted to text, never shown as HTML)
  release ID...        deliver held messages to their INBOX as they arrived;
                       the filter learns them as wanted mail
  delete ID...         delete held messages

Mail is held when an account's spam action is quarantine (yubin spam policy),
for 14 days; each account gets a daily digest of what was held.
Flags of every command: --config FILE, --data DIR, --json.
`

func cmdQuarantine(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, quarantineUsage)
		return 2
	}
	switch args[0] {
	case "list", "ls":
		return quarantineList(e, args[1:])
	case "show":
		return quarantineShow(e, args[1:])
	case "release":
		return quarantineRelease(e, args[1:])
	case "delete", "rm":
		return quarantineDelete(e, args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, quarantineHelp)
		return 0
	}
	fmt.Fprintf(e.stderr, "yubin: unknown quarantine command %q\n%s\n", args[0], quarantineUsage)
	return 2
}

// The CLI runs as the server's owner: its scope is everything.

func quarantineList(e *env, args []string) int {
	a := newAdminCmd(e, "quarantine list", "yubin quarantine list ADDRESS|DOMAIN")
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	list, err := call(a, admin.OpQuarantineList, admin.QuarantineList{Of: pos[0]})
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(list, func(w io.Writer) {
		of := normal(pos[0])
		if len(list) == 0 {
			fmt.Fprintf(w, "Nothing is held for %s.\n", of)
			return
		}
		domain := !strings.Contains(of, "@")
		head := []string{"ID", "ARRIVED", "SCORE", "FROM", "SUBJECT"}
		if domain {
			head = []string{"ID", "ACCOUNT", "ARRIVED", "SCORE", "FROM", "SUBJECT"}
		}
		rows := [][]string{head}
		for _, q := range list {
			row := []string{q.ID, q.Arrived.Local().Format("2006-01-02 15:04"), score(q.Score), mailtext.Line(q.From, 40), mailtext.Line(q.Subject, 60)}
			if domain {
				row = append([]string{q.ID, q.Account}, row[1:]...)
			}
			rows = append(rows, row)
		}
		table(w, rows)
		fmt.Fprintf(w, "%s held. yubin quarantine show ID reads one; release ID delivers it.\n", plural(len(list), "message"))
	})
}

func quarantineShow(e *env, args []string) int {
	a := newAdminCmd(e, "quarantine show", "yubin quarantine show ID")
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	m, err := call(a, admin.OpQuarantineShow, admin.QuarantineShow{ID: pos[0]})
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(m, func(w io.Writer) {
		table(w, [][]string{
			{"ID", m.ID},
			{"Account", m.Account},
			{"Arrived", m.Arrived.Local().Format(time.RFC1123Z)},
			{"Sender", sender(mailtext.Line(m.Sender, 200))},
			{"Score", score(m.Score)},
			{"Signals", mailtext.Line(strings.Join(m.Signals, ", "), 500)},
			{"Size", admin.FormatBytes(m.Size)},
		})
		fmt.Fprintf(w, "\n%s", m.View)
	})
}

func quarantineRelease(e *env, args []string) int {
	a := newAdminCmd(e, "quarantine release", "yubin quarantine release ID...")
	pos, code, ok := a.parse(args, 1, 1<<20)
	if !ok {
		return code
	}
	r, err := call(a, admin.OpQuarantineRelease, admin.QuarantineIDs{IDs: pos})
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(r, func(w io.Writer) {
		for _, x := range r {
			fmt.Fprintf(w, "released %s to the %s of %s (learned as wanted mail)\n", x.ID, x.Mailbox, x.Account)
		}
	})
}

func quarantineDelete(e *env, args []string) int {
	a := newAdminCmd(e, "quarantine delete", "yubin quarantine delete ID...")
	pos, code, ok := a.parse(args, 1, 1<<20)
	if !ok {
		return code
	}
	n, err := call(a, admin.OpQuarantineDelete, admin.QuarantineIDs{IDs: pos})
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(map[string]int{"deleted": n}, func(w io.Writer) {
		fmt.Fprintf(w, "deleted %s from the quarantine\n", plural(n, "message"))
	})
}
