// Command yubin is the Yubin mail server and its admin CLI.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"yubin/internal/config"
	"yubin/internal/version"
)

const usage = `yubin — an all-in-one mail server

Usage:
  yubin serve   [--config FILE] [--data DIR]      run the server
  yubin config  example|check                     a commented config file; check a config and its files
  yubin domain  add|list|remove ...               manage domains (--parent P for a child domain)
  yubin account add|passwd|quota|role|list|show|remove ...
  yubin scan    policy|show ADDRESS ...           inbound scanning policy of an account
  yubin spam    policy|show|reject|train ...      spam filter of an account; a domain's reject score and model
  yubin quarantine list|show|release|delete ...   mail the spam filter holds
  yubin warnings on|off|lang|show DOMAIN ...      warning mails of a domain
  yubin report  set|clear|send DOMAIN ...         the domain's daily report of stopped mail
  yubin forward set|show|clear ADDRESS ...        forwarding of an account (up to 10 targets)
  yubin queue   list|show|retry|drop ...          the outbound queue
  yubin import  ADDRESS PATH|imaps://USER@HOST    move mail in: Maildir, mbox, or the old IMAP server
  yubin dns     records|check [DOMAIN]            DNS records to publish (MX, SPF, DKIM, DMARC, SRV); check them
  yubin status  [--json]                          the server: listeners, uptime, queue, store, certificates, clamd, reports
  yubin backup  FILE|-                            a consistent backup of the store, also while the server runs
  yubin restore FILE|- --data DIR                 make the store of DIR (which has none) from a backup, and verify it
  yubin store copy --from DIR --to postgres://…   copy the embedded store of DIR into PostgreSQL, and verify it
  yubin quickstart ADDRESS                        first-time set-up: config, certificate, domain, admin account
  yubin service install                           install as a systemd service: user yubin, dirs, binary, unit
  yubin version

Every subcommand takes --config FILE and --data DIR; admin subcommands take --json.
They may come before or after the command words: yubin --config F domain list.
Run "yubin COMMAND --help" for a command's flags.
`

// env is what a command reads and writes; tests run commands with their own.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// stdinIsTerminal tells password prompts whether to turn echo off.
	stdinIsTerminal bool
	// stdoutIsTerminal tells long commands whether to show progress on
	// one line written over.
	stdoutIsTerminal bool
}

func main() {
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, stdinIsTerminal: isTerminal(os.Stdin), stdoutIsTerminal: isTerminal(os.Stdout)}
	os.Exit(run(e, os.Args[1:]))
}

func run(e *env, args []string) int {
	args, err := hoistGlobalFlags(args)
	if err != nil {
		fmt.Fprintf(e.stderr, "yubin: %v\n", err)
		return 2
	}
	if len(args) == 0 || flagArg(args[0]) && !isHelp(args[0]) {
		fmt.Fprint(e.stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(e, rest)
	case "config":
		return cmdConfig(e, rest)
	case "domain":
		return cmdDomain(e, rest)
	case "account":
		return cmdAccount(e, rest)
	case "scan":
		return cmdScan(e, rest)
	case "spam":
		return cmdSpam(e, rest)
	case "quarantine":
		return cmdQuarantine(e, rest)
	case "warnings":
		return cmdWarnings(e, rest)
	case "report":
		return cmdReport(e, rest)
	case "forward":
		return cmdForward(e, rest)
	case "queue":
		return cmdQueue(e, rest)
	case "import":
		return cmdImport(e, rest)
	case "dns":
		return cmdDNS(e, rest)
	case "status":
		return cmdStatus(e, rest)
	case "backup":
		return cmdBackup(e, rest)
	case "restore":
		return cmdRestore(e, rest)
	case "store":
		return cmdStore(e, rest)
	case "quickstart":
		return cmdQuickstart(e, rest)
	case "service":
		return cmdService(e, rest)
	case "version":
		fmt.Fprintln(e.stdout, "yubin", version.String())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
		return 0
	}
	fmt.Fprintf(e.stderr, "yubin: unknown command %q (run \"yubin help\")\n", cmd)
	return 2
}

// common holds the flags every subcommand takes.
type common struct {
	configPath string
	dataDir    string
	json       bool
}

func (c *common) register(fs *flag.FlagSet, withJSON bool) {
	fs.StringVar(&c.configPath, "config", "", "configuration file (TOML); none = embedded defaults")
	fs.StringVar(&c.dataDir, "data", "", "data directory (overrides data_dir in the config)")
	if withJSON {
		fs.BoolVar(&c.json, "json", false, "print JSON instead of text")
	}
}

// load returns the configuration. embedded is true when no file was given.
func (c *common) load() (cfg config.Config, embedded bool, err error) {
	if c.configPath == "" {
		cfg = config.Default()
		embedded = true
	} else if cfg, err = config.Load(c.configPath); err != nil {
		return cfg, false, err
	}
	if c.dataDir != "" {
		cfg.DataDir = c.dataDir
	}
	return cfg, embedded, nil
}

// parseArgs parses flags that may come before, between or after the
// positional arguments ("account add x@y --role admin") and returns the
// positional ones.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, suggestFlag(fs, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// flagArg reports whether a looks like a flag (-x, --x).
func flagArg(a string) bool { _, _, ok := flagName(a); return ok }

// suggestFlag adds the nearest flag of fs to an unknown flag's error:
// "flag provided but not defined: -confg (did you mean --config?)".
func suggestFlag(fs *flag.FlagSet, err error) error {
	const prefix = "flag provided but not defined: -"
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return err
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if s := closest(strings.TrimPrefix(msg, prefix), names); s != "" {
		return fmt.Errorf("%w (did you mean --%s?)", err, s)
	}
	return err
}

// flagUsage prints a flag set's help to w.
func flagUsage(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(w, "Usage: %s\n", synopsis)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// fail prints one clear line and returns exit status 1.
func fail(e *env, format string, args ...any) int {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(e.stderr, "yubin: "+strings.TrimPrefix(msg, "yubin: "))
	return 1
}
