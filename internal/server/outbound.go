package server

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"yubin/forward"
	"yubin/forward/queue"
	"yubin/internal/config"
	"yubin/store"
)

// newOutbound makes the forwarding stage and the outbound queue runner.
func newOutbound(ctx context.Context, cfg config.Config, st store.Store, m queue.Metrics, log *slog.Logger) (*forward.Stage, *queue.Runner, error) {
	fwd, err := forward.NewStage(ctx, st, log)
	if err != nil {
		return nil, nil, fmt.Errorf("forwarding: %w", err)
	}
	o := cfg.Outbound
	password := ""
	if o.SmartHostPasswordFile != "" {
		if password, err = readFirstLine(o.SmartHostPasswordFile); err != nil {
			return nil, nil, fmt.Errorf("outbound.smart_host_password_file: %w", err)
		}
	}
	r := queue.New(st, queue.Config{
		Hostname:           cfg.Hostname,
		SmartHost:          o.SmartHost,
		SmartHostTLS:       o.SmartHostTLS,
		SmartHostUser:      o.SmartHostUser,
		SmartHostPassword:  password,
		SmartHostVerifyTLS: o.SmartHostVerifyTLS,
		VerifyTLS:          o.VerifyTLS,
		RetryFor:           o.RetryFor.Duration,
		RetryInitial:       o.RetryInitial.Duration,
		RetryMax:           o.RetryMax.Duration,
		ConnectTimeout:     o.ConnectTimeout.Duration,
		CommandTimeout:     o.CommandTimeout.Duration,
		DataTimeout:        2 * o.CommandTimeout.Duration,
		Concurrency:        o.Concurrency,
		Lease:              o.Lease.Duration,
		Node:               queueNode(cfg),
	}, queue.Options{Log: log, Metrics: m})
	if o.SmartHost != "" {
		log.Info("outbound mail goes through the smart host", "smart_host", o.SmartHost, "tls", o.SmartHostTLS, "auth", o.SmartHostUser != "")
	}
	return fwd, r, nil
}

// queueNode names this process in the queue's leases. On a shared
// database several nodes may run on one machine with one configuration:
// the process id tells them apart (a restarted node's old leases then run
// out instead of being taken back at once). On the embedded store, the
// queue runner's default (one process per data dir).
func queueNode(cfg config.Config) string {
	if cfg.Store.Backend != "postgres" {
		return ""
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), cfg.Hostname)
}

func readFirstLine(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("%s: empty", path)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
