package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"yubin/admin"
	"yubin/store"
)

const queueUsage = "usage: yubin queue list | queue show ID | queue retry ID...|--all | queue drop ID...|--all"

const queueHelp = `Usage: yubin queue COMMAND [flags]

  list               the outbound queue: one entry per message and remote domain
  show ID            one entry: recipients, attempts, last error, message headers
  retry ID...|--all  try the entries again now (a running server does at once)
  drop ID...|--all   delete the entries without sending a bounce

Temporary failures are retried with backoff for a day (outbound.retry_for), then
bounced to the sender with a DSN; permanent ones bounce at once.
Flags of every command: --config FILE, --data DIR, --json.
`

func cmdQueue(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, queueUsage)
		return 2
	}
	switch args[0] {
	case "list":
		return queueList(e, args[1:])
	case "show":
		return queueShow(e, args[1:])
	case "retry":
		return queueEdit(e, args[1:], "retry")
	case "drop":
		return queueEdit(e, args[1:], "drop")
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, queueHelp)
		return 0
	}
	fmt.Fprintf(e.stderr, "yubin: unknown queue command %q\n%s\n", args[0], queueUsage)
	return 2
}

func queueList(e *env, args []string) int {
	a := newAdminCmd(e, "queue list", "yubin queue list")
	if _, code, ok := a.parse(args, 0, 0); !ok {
		return code
	}
	q, err := call(a, admin.OpQueueList, admin.None{})
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(q, func(w io.Writer) {
		if len(q) == 0 {
			fmt.Fprintln(w, "The outbound queue is empty.")
			return
		}
		rows := [][]string{{"ID", "FROM", "TO", "SIZE", "QUEUED", "TRIES", "NEXT", "LAST ERROR"}}
		for _, x := range q {
			rows = append(rows, []string{x.ID, sender(x.From), strings.Join(x.Pending(), ","), strconv.FormatInt(x.Size, 10),
				x.Created.Local().Format("01-02 15:04"), strconv.Itoa(x.Attempts), x.NextAttempt.Local().Format("01-02 15:04"), short(x.LastError, 60)})
		}
		table(w, rows)
	})
}

func queueShow(e *env, args []string) int {
	a := newAdminCmd(e, "queue show", "yubin queue show ID")
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	d, err := call(a, admin.OpQueueShow, pos[0])
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(d, func(w io.Writer) {
		table(w, [][]string{
			{"ID", d.ID},
			{"Message", d.QueueID},
			{"Origin", d.Origin},
			{"From", sender(d.From)},
			{"Bounces to", sender(d.ReturnPath)},
			{"Size", strconv.FormatInt(d.Size, 10)},
			{"Queued", d.Created.Local().Format(time.RFC1123Z)},
			{"Attempts", strconv.Itoa(d.Attempts)},
			{"Next attempt", d.NextAttempt.Local().Format(time.RFC1123Z)},
			{"Last error", d.LastError},
		})
		fmt.Fprintln(w, "Recipients:")
		for _, r := range d.Recipients {
			st := r.Status
			if st == store.RcptPending {
				st = "pending"
			}
			line := fmt.Sprintf("  %s  %s", r.Addr, st)
			if r.Error != "" {
				line += "  (" + r.Error + ")"
			}
			fmt.Fprintln(w, line)
		}
		fmt.Fprintf(w, "Headers:\n%s", strings.ReplaceAll(d.Headers, "\r\n", "\n"))
	})
}

func queueEdit(e *env, args []string, op string) int {
	a := newAdminCmd(e, "queue "+op, "yubin queue "+op+" ID...|--all")
	all := a.fs.Bool("all", false, "every entry")
	pos, code, ok := a.parse(args, 0, 1<<20)
	if !ok {
		return code
	}
	edit := admin.OpQueueRetry
	if op == "drop" {
		edit = admin.OpQueueDrop
	}
	n, err := call(a, edit, admin.QueueSelection{IDs: pos, All: *all})
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(map[string]int{op: n}, func(w io.Writer) {
		verb := map[string]string{"retry": "will be retried now", "drop": "dropped"}[op]
		fmt.Fprintf(w, "%d queue entr%s %s.\n", n, map[bool]string{true: "y", false: "ies"}[n == 1], verb)
	})
}

func sender(s string) string {
	if s == "" {
		return "<>"
	}
	return s
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
