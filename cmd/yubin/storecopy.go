package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"yubin/internal/storage"
	"yubin/store/postgres"
)

const storeCopyHelp = `usage: yubin store copy --from DATA_DIR --to postgres://USER:PASSWORD@HOST:5432/DATABASE [--json]

Copies the embedded store of DATA_DIR (its yubin.db; no server may be running on it) into an empty
PostgreSQL database, the whole state: domains with their settings and DKIM keys; accounts with
their password hashes, roles, quotas, scan and spam policies, forwarding and quota warnings given;
mailboxes with their UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, subscriptions and remembered expunges;
every message with its UID, flags, date and mod-sequence (IMAP clients download nothing again); the
outbound queue, the quarantine, the scanning stops, the SRS key, the last backup; the spam models
(per account and per domain) and what each message was trained as; the import keys (yubin import
brings nothing twice) and the once-per-day keys (no daily report or digest twice). Then it compares
the two: counts, sizes, the SHA-256 of every message and of every held message, and each part of
the state (the spam models by their totals and a SHA-256 of their tokens); exit status 1 and one
line per difference if anything differs. Then set store.backend = "postgres" and
store.postgres_url in the configuration of every node.
`

func cmdStore(e *env, args []string) int {
	if len(args) == 0 || args[0] != "copy" {
		if asksHelp(args) {
			fmt.Fprint(e.stdout, storeCopyHelp)
			return 0
		}
		fmt.Fprint(e.stderr, storeCopyHelp)
		return 2
	}
	a := newAdminCmd(e, "store copy", "yubin store copy --from DATA_DIR --to postgres://… [--json]")
	from := a.fs.String("from", "", "the data dir of the embedded store to copy")
	to := a.fs.String("to", "", "the PostgreSQL database to copy it into (postgres://…)")
	if asksHelp(args[1:]) {
		fmt.Fprint(e.stdout, storeCopyHelp)
		return 0
	}
	if _, code, ok := a.parse(args[1:], 0, 0); !ok {
		return code
	}
	if *from == "" || *to == "" {
		fmt.Fprint(e.stderr, storeCopyHelp)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if ok, err := storage.Exists(*from); err != nil {
		return fail(e, "store copy: %v", err)
	} else if !ok {
		return fail(e, "store copy: %s has no store (%s)", *from, storage.Describe(*from))
	}
	src, err := storage.OpenDir(*from, storage.Options{})
	if err != nil {
		return fail(e, "store copy: %s: %v (stop the server using it first)", *from, err)
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, *to, postgres.Options{})
	if err != nil {
		return fail(e, "store copy: %v", err)
	}
	defer dst.Close()
	progress := func(s string) {
		if !a.c.json {
			fmt.Fprintln(e.stderr, s)
		}
	}
	rep, err := postgres.Copy(ctx, src, dst, progress)
	if err != nil {
		return fail(e, "store copy: %v (the database holds part of the store now: drop and create it before trying again)", err)
	}
	problems, msgs, bytes, err := postgres.VerifyCopy(ctx, src, dst)
	if err != nil {
		return fail(e, "store copy: verifying: %v", err)
	}
	res := struct {
		postgres.CopyReport
		Compared      int64    `json:"messages_compared"`
		ComparedBytes int64    `json:"bytes_compared"`
		Problems      []string `json:"problems,omitempty"`
	}{rep, msgs, bytes, problems}
	code := a.out(res, func(w io.Writer) {
		fmt.Fprintf(w, "copied %d domains, %d accounts, %d mailboxes, %d messages (%d bytes), %d queue entries, %d held in the quarantine, %d stops\n",
			rep.Domains, rep.Accounts, rep.Mailboxes, rep.Messages, rep.Bytes, rep.Queue, rep.Quarantine, rep.Stops)
		fmt.Fprintf(w, "copied %d spam models (%d tokens, %d messages trained), %d import keys, %d once-per-day keys, %d remembered expunges, %d quota warnings given\n",
			rep.SpamModels, rep.SpamTokens, rep.SpamTrained, rep.ImportKeys, rep.OnceKeys, rep.Expunges, rep.QuotaWarned)
		fmt.Fprintf(w, "compared %d messages (%d bytes, SHA-256 each) and the rest of the state with the original: ", msgs, bytes)
		if len(problems) == 0 {
			fmt.Fprintln(w, "the same")
		}
	})
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(e.stderr, "yubin: store copy: differs: "+p)
		}
		return 1
	}
	return code
}
