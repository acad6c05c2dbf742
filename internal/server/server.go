// Package server runs every listener of one Yubin process over one store,
// and shuts them down gracefully.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"yubin/admin"
	"yubin/imapd"
	"yubin/internal/auth"
	"yubin/internal/autoconfig"
	"yubin/internal/config"
	"yubin/internal/delivery"
	"yubin/internal/netserve"
	"yubin/internal/notify"
	"yubin/internal/sdnotify"
	"yubin/internal/sendlimit"
	"yubin/internal/spam"
	"yubin/internal/spool"
	"yubin/internal/storage"
	"yubin/internal/tlsutil"
	"yubin/internal/version"
	"yubin/internal/web"
	"yubin/pop3d"
	"yubin/scan"
	"yubin/smtpd"
	"yubin/store"
)

// ShutdownTimeout bounds how long transactions in flight may take to
// finish after a shutdown signal.
const ShutdownTimeout = 30 * time.Second

// Run starts every configured listener and serves until ctx is cancelled,
// then stops accepting, lets transactions in flight finish, and closes the
// store. It returns an error if anything fails to start.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	// SIGHUP reloads (see reload below); taken from the start, so that one
	// sent early does not end the process, and served once ready.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	warnExposedSecrets(cfg, log)
	started := time.Now()
	certs, err := loadTLS(cfg, log)
	if err != nil {
		return err
	}
	tlsConf, acmeHTTP := certs.conf, certs.http
	st, err := storage.OpenDir(cfg.DataDir, storage.Options{Wait: time.Second, MaxMailboxes: cfg.Store.MaxMailboxes, Backend: cfg.Store.Backend, PostgresURL: cfg.Store.PostgresURL})
	if errors.Is(err, store.ErrInUse) {
		return fmt.Errorf("another yubin is already running on %s (it holds the store)", cfg.DataDir)
	}
	if err != nil {
		return err
	}
	defer st.Close()

	// The protocol servers, made below; the metrics read their sessions
	// when scraped, which is after they are made.
	var (
		pop  *pop3d.Server
		imap *imapd.Server
	)
	met := newMetrics(cfg, st, certs.info, func() int { return imap.Sessions() }, func() int { return pop.Sessions() }, log)

	notifier := notify.New(st, cfg.Hostname, log)
	notifier.SetQuotaPercent(cfg.Notify.QuotaWarning)
	reporter, err := notify.NewReporter(notifier, cfg.Notify.ReportTime, nil)
	if err != nil {
		return err
	}
	// The quarantine digest goes out with the daily report.
	digest, err := notify.NewDigest(notifier, st, cfg.Notify.ReportTime, nil)
	if err != nil {
		return err
	}
	// The admin service is what the CLI reaches through the control
	// socket while the server runs: it gets everything "yubin report
	// send" and friends need from the running server.
	svc := admin.NewService(st, cfg.Store.DefaultQuota)
	svc.SetReporter(reporter)
	svc.SetDNS(admin.DNSSettings(cfg), cfg.DNS.Resolver) // dns records|check, also the web's
	trainer := spam.NewTrainer(st, log)
	svc.SetTrainer(trainer)        // quarantine release learns through the server's trainer
	var listening []admin.Listener // filled once every listener is bound, before the control socket serves
	svc.SetStatusInfo(func(ctx context.Context) admin.StatusInfo {
		return admin.StatusInfo{
			Running: true, Version: version.String(), PID: os.Getpid(), Started: started, Listeners: listening,
			Store: admin.StoreInfoOf(cfg), Certificates: certs.info(ctx), Clamd: admin.CheckClamd(ctx, cfg),
		}
	})
	ctl, err := admin.ListenControl(cfg.ControlSocket())
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}

	scanner, stopScan, reloadSignatures, err := newScanner(cfg, log)
	if err != nil {
		ctl.Close()
		return err
	}
	defer stopScan()
	bl := blocklists(cfg, log) // smtpd's DNSBL lookups and the spam stage's URIBL lookups (one cache)
	stages := []delivery.Stage{
		&delivery.ScanStage{Scanner: scanner, Store: st, Notifier: notifier, Log: log, Metrics: met.delivery()},
		&delivery.QuotaStage{Notifier: notifier, Log: log},
	}
	if cfg.Spam.Enabled {
		stages = append(stages, spamStage(cfg, st, bl, log)) // after scanning, before forwarding
	}
	if cfg.DNS.CheckInbound {
		// SPF, DKIM and DMARC first: a DMARC reject costs no scan.
		stages = append([]delivery.Stage{authStage(cfg, log)}, stages...)
	}
	fwd, runner, err := newOutbound(ctx, cfg, st, met.queue(), log)
	if err != nil {
		ctl.Close()
		return err
	}
	stages = append(stages, fwd) // after scanning: what is forwarded is what was scanned
	deliverer := delivery.New(st, log, stages...)
	deliverer.SetMetrics(met.delivery())
	deliverer.SetStructure(imapd.EncodeStructure) // BODYSTRUCTURE without a parse at the first FETCH

	sp, err := spool.Open(cfg.SpoolDir(), cfg.SMTP.MaxInflightData, 0)
	if err != nil {
		ctl.Close()
		return err
	}
	// IMAP APPEND has a spool of its own: an IMAP user stalling big
	// APPENDs must not use up the room port 25 receives mail in.
	imapSpool, err := spool.Open(cfg.IMAPSpoolDir(), cfg.IMAP.AppendBudget, 0)
	if err != nil {
		ctl.Close()
		return err
	}
	au := auth.New(st, auth.Policy{
		MaxFailures: cfg.Auth.MaxFailures,
		Window:      cfg.Auth.FailureWindow.Duration,
		Lockout:     cfg.Auth.Lockout.Duration,
		Delay:       cfg.Auth.FailureDelay.Duration,
	}, nil)
	smtp := smtpd.New(smtpd.Config{
		Hostname:          cfg.Hostname,
		MaxMessageSize:    cfg.SMTP.MaxMessageSize,
		MaxRecipients:     cfg.SMTP.MaxRecipients,
		MaxLineLength:     cfg.SMTP.MaxLineLength,
		ReadTimeout:       cfg.SMTP.ReadTimeout.Duration,
		WriteTimeout:      cfg.SMTP.WriteTimeout.Duration,
		AllowInsecureAuth: cfg.Auth.AllowInsecure,
		MaxConnections:    cfg.SMTP.MaxConnections,
		MaxConnsPerIP:     cfg.SMTP.MaxConnectionsIP,
		PreAuthTimeout:    cfg.SMTP.AuthTimeout.Duration,
		MXSessionTimeout:  cfg.SMTP.MXSessionTimeout.Duration,
		LineTimeout:       cfg.SMTP.LineTimeout.Duration,
		HandshakeTimeout:  cfg.TLS.HandshakeTimeout.Duration,
		Deliverer:         deliverer,
		Spool:             sp,
		Outbound:          true,
		ReverseSRS:        fwd.SRS.Reverse,
		DNSBL:             bl,
		SendLimit: sendlimit.New(sendlimit.Limits{
			Messages:   cfg.SMTP.SubmissionMessagesPerHour,
			Recipients: cfg.SMTP.SubmissionRecipientsPerHour,
		}),
		Notifier: notifier,
		Metrics:  met.smtp(),
	}, st, au, log)

	pop = pop3d.New(pop3d.Config{
		Hostname:          cfg.Hostname,
		AllowInsecureAuth: cfg.Auth.AllowInsecure,
		IdleTimeout:       cfg.POP3.IdleTimeout.Duration,
		MaxConnections:    cfg.POP3.MaxConnections,
		MaxConnsPerIP:     cfg.POP3.MaxConnectionsIP,
		PreAuthTimeout:    cfg.POP3.AuthTimeout.Duration,
		LineTimeout:       cfg.POP3.LineTimeout.Duration,
		HandshakeTimeout:  cfg.TLS.HandshakeTimeout.Duration,
		Metrics:           met.pop3(),
	}, st, au, log)

	imap = imapd.New(imapd.Config{
		Hostname:             cfg.Hostname,
		AllowInsecureAuth:    cfg.Auth.AllowInsecure,
		MaxConnections:       cfg.IMAP.MaxConnections,
		IdleTimeout:          cfg.IMAP.IdleTimeout.Duration,
		AppendLimit:          cfg.IMAP.AppendLimit,
		Spool:                imapSpool,
		MaxUserIPConnections: cfg.IMAP.MaxUserIPConnections,
		MaxConnsPerIP:        cfg.IMAP.MaxConnectionsIP,
		PreAuthTimeout:       cfg.IMAP.AuthTimeout.Duration,
		HandshakeTimeout:     cfg.TLS.HandshakeTimeout.Duration,
		UsageGrew: func(ctx context.Context, account string) {
			if err := notifier.CheckQuota(ctx, account); err != nil {
				log.Error("quota warning", "account", account, "err", err)
			}
		},
		Train:   trainHook(cfg, trainer),
		Metrics: met.imap(),
	}, st, au, log)

	// Bind everything before serving anything: a port in use is reported at
	// once and nothing half-starts.
	type binding struct {
		name  string
		serve func(net.Listener) error
		ln    net.Listener
	}
	var bound []binding
	closeAll := func() {
		ctl.Close()
		for _, b := range bound {
			b.ln.Close()
		}
	}
	smtpServe := func(m smtpd.Mode) func(net.Listener) error {
		return func(ln net.Listener) error { return smtp.Serve(ln, m, tlsConf) }
	}
	popServe := func(m netserve.Mode) func(net.Listener) error {
		return func(ln net.Listener) error { return pop.Serve(ln, m, tlsConf) }
	}
	imapServe := func(m netserve.Mode) func(net.Listener) error {
		return func(ln net.Listener) error { return imap.Serve(ln, m, tlsConf) }
	}
	// HTTP (port 80) answers ACME http-01 challenges and client
	// autoconfiguration; its handler is set once the mail listeners are
	// bound (autoconfig advertises their ports).
	httpSrv := &http.Server{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	httpServe := func(ln net.Listener) error {
		if err := httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	// Metrics: plain HTTP, /metrics only.
	metricsSrv := met.httpServer(log)
	metricsServe := func(ln net.Listener) error {
		if err := metricsSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	// The web: Mail Manager and Site Manager over HTTPS (HTTP/2 and
	// HTTP/1.1), the mail listeners' certificate, the same logins and
	// lockout (au), every change through the admin service (svc).
	// Client autoconfiguration, on listen.http and on the web; what it
	// advertises is set again once the listeners are bound.
	autoconf := autoconfig.New(autoconfig.FromConfig(cfg), st, log)
	webSrv, webServe, err := newWeb(cfg, svc, au, autoconf, tlsConf, met.web(), log)
	if err != nil {
		closeAll()
		return err
	}
	for _, l := range []struct {
		name, addr string
		serve      func(net.Listener) error
	}{
		{"smtp", cfg.Listen.SMTP, smtpServe(smtpd.MX)},
		{"submission", cfg.Listen.Submission, smtpServe(smtpd.Submission)},
		{"submissions", cfg.Listen.Submissions, smtpServe(smtpd.Submissions)},
		{"pop3", cfg.Listen.POP3, popServe(netserve.Plain)},
		{"pop3s", cfg.Listen.POP3S, popServe(netserve.Implicit)},
		{"imap", cfg.Listen.IMAP, imapServe(netserve.Plain)},
		{"imaps", cfg.Listen.IMAPS, imapServe(netserve.Implicit)},
		{"http", cfg.Listen.HTTP, httpServe},
		{"metrics", cfg.Listen.Metrics, metricsServe},
		{"web", cfg.Listen.Web, webServe},
	} {
		if config.Off(l.addr) {
			log.Info("listener off", "listener", l.name)
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen %s on %s: %w", l.name, l.addr, err)
		}
		bound = append(bound, binding{l.name, l.serve, ln})
		listening = append(listening, admin.Listener{Name: l.name, Addr: ln.Addr().String()})
	}
	autoconf.SetSettings(autoconfig.FromConfig(boundConfig(cfg, listening)))
	httpSrv.Handler = httpHandler(autoconf, acmeHTTP)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(bound)+1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := svc.ServeControl(ctx, ctl); err != nil {
			errc <- fmt.Errorf("control socket: %w", err)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		reporter.Run(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		digest.Run(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		runner.Run(ctx) // on shutdown: finishes the messages being sent
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		spamUpkeep(ctx, cfg, st, log)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		trainer.Run(ctx) // what is still queued at shutdown: trainer.Close below
	}()
	for _, b := range bound {
		log.Info("listening", "listener", b.name, "addr", b.ln.Addr().String())
		if b.name == "web" {
			log.Info("web: Mail Manager and Site Manager", "url", web.URL(cfg.Hostname, b.ln.Addr().String()))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.serve(b.ln); err != nil {
				errc <- fmt.Errorf("%s: %w", b.name, err)
			}
		}()
	}
	log.Info("yubin ready", "data", cfg.DataDir, "store", cfg.StoreDescription(), "control", cfg.ControlSocket())
	names := make([]string, len(bound))
	for i, b := range bound {
		names[i] = b.name + " " + b.ln.Addr().String()
	}
	status := sdnotify.Status("serving: " + strings.Join(names, ", "))
	sdNotify(log, sdnotify.Ready, status)

	// What SIGHUP reloads. The config file is not read again: a change
	// to it takes a restart.
	type reloader struct {
		what string
		fn   func() error
	}
	reloaders := []reloader{{certs.what, certs.reload}}
	if reloadSignatures != nil {
		reloaders = append(reloaders, reloader{"signatures in " + cfg.SignatureDir(), reloadSignatures})
	}
	reload := func() {
		sdNotify(log, sdnotify.Reloading())
		log.Info("SIGHUP: reloading (certificates, signatures; the config file takes a restart)")
		failed := 0
		for _, r := range reloaders {
			if err := r.fn(); err != nil {
				failed++
				log.Error("reload failed, kept what was loaded before", "what", r.what, "err", err)
			} else {
				log.Info("reloaded", "what", r.what)
			}
		}
		st := status
		if failed > 0 {
			st = sdnotify.Status(fmt.Sprintf("serving; the last reload failed for %d of %d (see the log)", failed, len(reloaders)))
		}
		sdNotify(log, sdnotify.Ready, st)
	}

	var runErr error
wait:
	for {
		select {
		case <-hup:
			reload()
		case <-ctx.Done():
			log.Info("shutting down: no new connections, finishing transactions in flight")
			break wait
		case runErr = <-errc:
			log.Error("listener failed, shutting down", "err", runErr)
			break wait
		}
	}
	sdNotify(log, sdnotify.Stopping, sdnotify.Status("stopping: finishing transactions in flight"))
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer scancel()
	var sw sync.WaitGroup
	for name, shut := range map[string]func(context.Context) error{"smtp": smtp.Shutdown, "pop3": pop.Shutdown, "imap": imap.Shutdown,
		"http": httpSrv.Shutdown, "metrics": metricsSrv.Shutdown, "web": webSrv.Shutdown} {
		sw.Add(1)
		go func() {
			defer sw.Done()
			if err := shut(sctx); err != nil {
				log.Warn("shutdown", "proto", name, "err", err)
			}
		}()
	}
	sw.Wait()
	// IMAP has stopped, so nothing more is queued for training: train
	// what is, in what is left of the shutdown time (what cannot be is
	// logged, with how many messages).
	trainer.Close(sctx)
	ctl.Close()
	wg.Wait()
	if err := st.Close(); err != nil {
		return fmt.Errorf("closing store: %w", err)
	}
	log.Info("stopped")
	return runErr
}

// sdNotify tells systemd (Type=notify) the server's state; nothing when not
// run by it.
func sdNotify(log *slog.Logger, state ...string) {
	if _, err := sdnotify.Notify(state...); err != nil {
		log.Warn("telling systemd the state", "state", state[0], "err", err)
	}
}

// newScanner builds the virus scanner from the config: the built-in engine
// (watching its signature directory) and clamd. reload reads the
// signatures again (SIGHUP); nil without the built-in engine.
func newScanner(cfg config.Config, log *slog.Logger) (s *scan.Scanner, stop func(), reload func() error, err error) {
	var engines []scan.Engine
	stop = func() {}
	if cfg.Scan.Builtin {
		dir := cfg.SignatureDir()
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, nil, fmt.Errorf("signature directory: %w", err)
		}
		b, err := scan.NewBuiltin(dir, log)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("built-in scanner: %w", err)
		}
		stop = b.Watch(cfg.Scan.ReloadInterval.Duration)
		reload = b.Reload
		engines = append(engines, b)
		log.Info("built-in scanner", "signatures", dir)
	}
	if cfg.Scan.Clamd != "" {
		c, err := scan.NewClamd(scan.ClamdConfig{Address: cfg.Scan.Clamd, Timeout: cfg.Scan.ClamdTimeout.Duration})
		if err != nil {
			stop()
			return nil, nil, nil, fmt.Errorf("clamd: %w", err)
		}
		engines = append(engines, c)
		log.Info("clamd scanner", "address", cfg.Scan.Clamd)
	}
	lim := scan.DefaultLimits()
	lim.MaxMessageSize = cfg.Scan.MaxMessageSize
	lim.MaxDepth = cfg.Scan.MaxDepth
	lim.MaxFileSize = cfg.Scan.MaxFileSize
	lim.MaxTotalSize = cfg.Scan.MaxTotalSize
	lim.MaxEntries = cfg.Scan.MaxEntries
	s, err = scan.New(scan.Config{Engines: engines, Limits: lim, Logger: log})
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	return s, stop, reload, nil
}

// certSource is where every TLS listener's certificate comes from.
type certSource struct {
	conf *tls.Config
	http http.Handler // ACME's http-01 handler; nil without ACME
	// reload is what SIGHUP does to it: the configured or self-signed
	// pair is read again, ACME's cooldowns are forgotten.
	reload func() error
	what   string // what reload does, for the log
	// info describes the certificates served (the pair as reloaded last,
	// or ACME's as in its cache), for the metrics and yubin status.
	info func(context.Context) []tlsutil.CertInfo
}

// loadTLS returns the certificate source shared by every listener: the
// configured certificate, ACME (with the handler for its http-01
// challenges), or the self-signed certificate in the data dir.
func loadTLS(cfg config.Config, log *slog.Logger) (certSource, error) {
	if cfg.TLS.Cert != "" {
		p, err := tlsutil.LoadPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			return certSource{}, err
		}
		return certSource{conf: p.TLSConfig(), reload: p.Reload, what: "certificate " + cfg.TLS.Cert,
			info: p.Certificates(tlsutil.SourceConfigured)}, nil
	}
	if cfg.TLS.ACME {
		var hc *http.Client
		if cfg.TLS.ACMEDirectoryCA != "" {
			var err error
			if hc, err = tlsutil.RootsClient(cfg.TLS.ACMEDirectoryCA); err != nil {
				return certSource{}, err
			}
		}
		hosts := cfg.ACMEHosts()
		dir := cfg.ACMEDir()
		a, err := tlsutil.NewACME(tlsutil.ACMEConfig{
			Hosts: hosts, Email: cfg.TLS.ACMEEmail, DirectoryURL: cfg.TLS.ACMEDirectory, CacheDir: dir, HTTPClient: hc, Log: log,
		})
		if err != nil {
			return certSource{}, err
		}
		log.Info("ACME: certificates are fetched on the first TLS connection and renewed automatically",
			"hosts", hosts, "directory", cfg.TLS.ACMEDirectory, "cache", dir, "http-01", cfg.Listen.HTTP)
		reset := func() error { a.ResetCooldown(); return nil }
		return certSource{conf: a.TLSConfig(), http: a.HTTPHandler(), reload: reset, what: "ACME cooldowns forgotten", info: a.Certificates}, nil
	}
	dir := cfg.TLSDir()
	p, err := tlsutil.SelfSignedPair(dir, cfg.Hostname)
	if err != nil {
		return certSource{}, err
	}
	log.Info("using the self-signed certificate in the data dir", "dir", dir)
	return certSource{conf: p.TLSConfig(), reload: p.Reload, what: "self-signed certificate in " + dir,
		info: p.Certificates(tlsutil.SourceSelfSigned)}, nil
}
