package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"yubin/admin"
	"yubin/internal/storage"
	"yubin/internal/version"
)

const backupHelp = `Usage: yubin backup FILE|- [--config FILE] [--data DIR] [--json]

Writes a backup of the store to FILE (or to standard output for "-"): a
consistent snapshot, taken through the running server's control socket while
it goes on receiving and serving mail, or from the store itself when no server
runs. The file is written beside FILE and renamed into place when whole, with
mode 0600 (it holds password hashes and DKIM keys). An existing FILE is
replaced only by a backup that succeeded.

What the file holds: one header line (format version, yubin version, time,
host), the store compressed with gzip, one trailer line (size, SHA-256, counts).
Restore it with: yubin restore FILE --data DIR

On PostgreSQL (store.backend = "postgres") the snapshot is the database's
tables, read in one repeatable-read transaction while every node goes on
writing; the file is the same format. Restore it with yubin restore on a
configuration that names an empty database.
`

const restoreHelp = `Usage: yubin restore FILE|- --data DIR [--config FILE] [--force] [--json]

Makes the store of DIR from a backup file (or from standard input for "-").
DIR must not have a store: restore never overwrites one. The backup is
checked as it is read (a truncated or damaged file is refused), written to a
temporary file in DIR, opened and run through the store's verifier, and put
in place only if the verifier finds nothing (--force: put it in place anyway).

On PostgreSQL (store.backend = "postgres" in the configuration) the store is
made in the database of store.postgres_url, which must hold none (a new
database): a backup of a PostgreSQL store in one transaction that commits only
if the file was read whole and the verifier and the counts agree with it; a
backup of the embedded store is made aside in DIR, checked the same way, then
copied into the database as "yubin store copy" does and compared with it.
A backup of a PostgreSQL store cannot be restored into an embedded store.
`

func cmdBackup(e *env, args []string) int {
	a := newAdminCmd(e, "backup", "yubin backup FILE|- [--config FILE] [--data DIR] [--json]")
	if asksHelp(args) {
		fmt.Fprint(e.stdout, backupHelp)
		return 0
	}
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	file := pos[0]
	cfg, _, err := a.c.load()
	if err != nil {
		return fail(e, "%v", err)
	}
	what := cfg.DataDir
	if cfg.Store.Backend == "postgres" {
		what = cfg.StoreDescription()
	} else if ok, err := storage.Exists(cfg.DataDir); err != nil {
		return fail(e, "backup: %v", err)
	} else if !ok {
		return fail(e, "backup: %s has no store (%s): nothing to back up", cfg.DataDir, storage.Describe(cfg.DataDir))
	}
	// What the command prints goes to stderr when the backup is on stdout.
	report := e.stdout
	var out io.Writer
	var f *outFile
	if file == "-" {
		if e.stdoutIsTerminal {
			return fail(e, "backup: refusing to write a backup to a terminal: redirect it to a file or a pipe, or give a FILE")
		}
		out, report = e.stdout, e.stderr
	} else {
		if f, err = createOutFile(file); err != nil {
			return fail(e, "backup: %v", err)
		}
		defer f.abort()
		out = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	api, release, err := admin.Open(cfg)
	if err != nil {
		return fail(e, "%v", err)
	}
	defer release()
	res, err := admin.WriteBackup(ctx, api, out, admin.BackupOptions{Yubin: version.String(), Host: cfg.Hostname})
	if err != nil {
		return fail(e, "backup: %v", err)
	}
	where := "standard output"
	if f != nil {
		if err := f.commit(); err != nil {
			return fail(e, "backup: %v", err)
		}
		where = f.final
	}
	rec := res.Record(file)
	if f != nil {
		rec.File = f.final
	}
	if _, err := admin.Do(ctx, api, admin.OpBackupRecord, rec); err != nil {
		return fail(e, "backup: written to %s, but recording it as the last backup failed: %v", where, err)
	}
	a.e = &env{stdout: report, stderr: e.stderr}
	t := res.Trailer
	return a.out(res, func(w io.Writer) {
		fmt.Fprintf(w, "backup of %s written to %s: %s (store %s), %s, %s, %s (%s of mail), in %s\n",
			what, where, admin.FormatBytes(res.FileSize), admin.FormatBytes(t.Size),
			plural(t.Domains, "domain"), plural(t.Accounts, "account"), plural(int(t.Messages), "message"),
			admin.FormatBytes(t.MailBytes), res.Duration.Round(time.Millisecond))
	})
}

func cmdRestore(e *env, args []string) int {
	a := newAdminCmd(e, "restore", "yubin restore FILE|- --data DIR [--config FILE] [--force] [--json]")
	if asksHelp(args) {
		fmt.Fprint(e.stdout, restoreHelp)
		return 0
	}
	force := a.fs.Bool("force", false, "put the store in place even if the verifier finds problems in it")
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	file := pos[0]
	cfg, _, err := a.c.load()
	if err != nil {
		return fail(e, "%v", err)
	}
	var in io.Reader
	if file == "-" {
		if e.stdinIsTerminal {
			return fail(e, "restore: refusing to read a backup from a terminal: redirect a file or a pipe to it, or give a FILE")
		}
		in = e.stdin
	} else {
		rf, err := os.Open(file)
		if err != nil {
			return fail(e, "restore: %v", err)
		}
		defer rf.Close()
		in = rf
		if abs, err := filepath.Abs(file); err == nil {
			file = abs
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := admin.Restore(ctx, in, cfg.DataDir, admin.RestoreOptions{File: file, Force: *force,
		Backend: cfg.Store.Backend, PostgresURL: cfg.Store.PostgresURL, Where: cfg.StoreDescription()})
	if errors.Is(err, admin.ErrVerify) {
		for _, p := range res.Problems {
			fmt.Fprintln(e.stderr, "  "+p)
		}
	}
	if err != nil {
		return fail(e, "%v", err)
	}
	h, t := res.Header, res.Trailer
	return a.out(res, func(w io.Writer) {
		host := ""
		if h.Host != "" {
			host = " of " + h.Host
		}
		fmt.Fprintf(w, "restored the backup%s taken %s (yubin %s) into %s: %s, %s, %s (%s of mail)\n",
			host, h.Created.Local().Format("2006-01-02 15:04:05 MST"), h.Yubin, res.Path,
			plural(t.Domains, "domain"), plural(t.Accounts, "account"), plural(int(t.Messages), "message"),
			admin.FormatBytes(t.MailBytes))
		if c := res.Copied; c != nil {
			fmt.Fprintf(w, "a backup of the %s store, made aside and copied into the database: %s, %s, %s, %s, %s; compared with it: the same\n",
				t.Backend, fmt.Sprintf("%d mailboxes", c.Mailboxes), plural(int(c.Messages), "message"), plural(c.SpamModels, "spam model"),
				plural(c.ImportKeys, "import key"), plural(c.OnceKeys, "once-per-day key"))
		}
		if len(res.Problems) == 0 {
			fmt.Fprintln(w, "verified: the store's verifier found no problems, and the counts are the backup's")
			return
		}
		fmt.Fprintf(w, "put in place despite %d problems (--force):\n", len(res.Problems))
		for _, p := range res.Problems {
			fmt.Fprintln(w, "  "+p)
		}
	})
}

// outFile is a file written under a temporary name beside where it goes,
// renamed into place when whole.
type outFile struct {
	*os.File
	final string
	done  bool
}

func createOutFile(name string) (*outFile, error) {
	final, err := filepath.Abs(name)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(final); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s is a directory: give a file name", name)
	}
	f, err := os.CreateTemp(filepath.Dir(final), "."+filepath.Base(final)+".tmp-*")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &outFile{File: f, final: final}, nil
}

// commit makes the file durable and renames it into place.
func (f *outFile) commit() error {
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), f.final); err != nil {
		return err
	}
	f.done = true
	if d, err := os.Open(filepath.Dir(f.final)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// abort removes the temporary file unless it was committed.
func (f *outFile) abort() {
	if !f.done {
		f.Close()
		os.Remove(f.Name())
	}
}

// asksHelp reports whether args ask for help (help, -h, -help, --help).
func asksHelp(args []string) bool {
	return len(args) > 0 && (strings.TrimLeft(args[0], "-") == "help" || args[0] == "-h")
}
