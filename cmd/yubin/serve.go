package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"yubin/internal/server"
)

// nonRootPortShift moves the standard ports out of the privileged range
// when the embedded default runs as an ordinary user: 25 → 10025.
const nonRootPortShift = 10000

func cmdServe(e *env, args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var c common
	c.register(fs, false)
	pos, err := parseArgs(fs, args)
	if err == flag.ErrHelp {
		flagUsage(e.stdout, fs, "yubin serve [--config FILE] [--data DIR]")
		return 0
	}
	if err != nil {
		return fail(e, "serve: %v", err)
	}
	if len(pos) > 0 {
		return fail(e, "serve: unexpected argument %q", pos[0])
	}
	cfg, embedded, err := c.load()
	if err != nil {
		return fail(e, "%v", err)
	}
	log := newLogger(e, cfg.Log.Level, cfg.Log.Format)
	if embedded {
		log.Info("no --config given: running on the embedded defaults (yubin config example shows them)")
		if os.Geteuid() != 0 {
			if err := cfg.ShiftPorts(nonRootPortShift); err != nil {
				return fail(e, "%v", err)
			}
			log.Info("not running as root: standard ports shifted by +10000",
				"smtp", cfg.Listen.SMTP, "submission", cfg.Listen.Submission, "submissions", cfg.Listen.Submissions,
				"pop3", cfg.Listen.POP3, "pop3s", cfg.Listen.POP3S, "imap", cfg.Listen.IMAP, "imaps", cfg.Listen.IMAPS, "http", cfg.Listen.HTTP)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := server.Run(ctx, cfg, log); err != nil {
		log.Error("serve failed", "err", err)
		return 1
	}
	return 0
}

func newLogger(e *env, level, format string) *slog.Logger {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: lv}
	if strings.ToLower(format) == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}
