// Package queue delivers the outbound queue: the messages the store holds
// for remote recipients (mail submitted to other domains, remote forward
// targets, bounces routed back through SRS, and our own DSNs).
//
// A Runner takes the entries that are due, groups them by destination (the
// recipient domain, or the smart host) and delivers each group over one
// connection: MX lookup with the A/AAAA fallback of RFC 5321 section 5.1,
// STARTTLS whenever offered (opportunistic: certificates are not checked by
// default, RFC 7435), SMTPUTF8 and 8BITMIME as offered, DKIM signatures for
// mail from local domains. Every outcome is written to the store right
// after the remote reply: a recipient accepted with 250 is never sent
// again. Temporary failures are retried with exponential backoff until the
// entry is RetryFor old; then, or at once on a permanent (5xx) failure, a
// DSN (RFC 3464) goes to the return path — never for a null sender.
package queue

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"yubin/store"
)

// Config is the outbound configuration.
type Config struct {
	Hostname string // EHLO name and Reporting-MTA of DSNs

	// SmartHost ("host:port") relays every message through a provider
	// instead of the recipients' MX hosts.
	SmartHost string
	// SmartHostTLS: "starttls" (the default: a smart host that offers no
	// STARTTLS gets nothing, the mail stays queued), "tls" (implicit,
	// port 465), "opportunistic" (STARTTLS when offered) or "none" (plain
	// text). With SmartHostUser set, TLS is always required.
	SmartHostTLS       string
	SmartHostUser      string // AUTH PLAIN, only over TLS; "" = no AUTH
	SmartHostPassword  string
	SmartHostVerifyTLS bool // check the smart host's certificate

	RetryFor     time.Duration // give up and bounce after this long; 24h
	RetryInitial time.Duration // first backoff; doubles per attempt; 5m
	RetryMax     time.Duration // backoff cap; 1h

	ConnectTimeout time.Duration // 30s
	CommandTimeout time.Duration // per command and for the greeting; 5m
	DataTimeout    time.Duration // for the reply to the final dot; 10m
	Concurrency    int           // destinations delivered at once; 16
	// StopGrace is how long Run lets messages being sent finish after
	// its context ends before it cuts their connections; 20s.
	StopGrace time.Duration
	VerifyTLS bool // check MX certificates (off: opportunistic)

	// Node names this runner in the queue's leases: one per process
	// sharing a store (default: the machine's host name and Hostname).
	Node string
	// Lease is how long a claimed entry stays this runner's before another
	// may claim it (its runner died); 2m. The runner renews the leases of
	// the entries it works on every Lease/3, and stops working on an entry
	// whose lease it could not renew before the lease ends.
	Lease time.Duration
	// LeaseBatch bounds the entries of one destination claimed at once; 200.
	LeaseBatch int
}

// Defaults for zero Config fields.
const (
	DefaultRetryFor       = 24 * time.Hour
	DefaultRetryInitial   = 5 * time.Minute
	DefaultRetryMax       = time.Hour
	DefaultConnectTimeout = 30 * time.Second
	DefaultCommandTimeout = 5 * time.Minute
	DefaultDataTimeout    = 10 * time.Minute
	DefaultConcurrency    = 16
	DefaultStopGrace      = 20 * time.Second
	DefaultLease          = 2 * time.Minute
	DefaultLeaseBatch     = 200
)

// Resolver is the part of *net.Resolver the runner uses (tests substitute
// go-mockdns).
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Options are the runner's collaborators; zero values take the real ones.
type Options struct {
	Resolver Resolver                                                          // net.DefaultResolver
	Dial     func(ctx context.Context, network, addr string) (net.Conn, error) // a net.Dialer; tests redirect port 25 with it
	Now      func() time.Time                                                  // time.Now
	Log      *slog.Logger                                                      // discard
	Signer   Signer                                                            // NewDKIMSigner(st)
	TLS      *tls.Config                                                       // base client TLS config
	Metrics  Metrics                                                           // counts outcomes; nil: none
}

// Metrics is what the runner counts (internal/metrics).
type Metrics interface {
	// OutboundResults counts the recipients of one attempt at an entry
	// that were delivered, deferred (to be retried) and bounced.
	OutboundResults(delivered, deferred, bounced int)
}

type noMetrics struct{}

func (noMetrics) OutboundResults(int, int, int) {}

// Store is what the runner uses: the queue, and the directory and keys
// for DKIM signing and DSNs to local senders.
type Store interface {
	store.Queue
	keyStore
}

// Runner delivers the outbound queue of one store.
type Runner struct {
	st      Store
	cfg     Config
	res     Resolver
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	now     func() time.Time
	log     *slog.Logger
	signer  Signer
	tlsBase *tls.Config
	metrics Metrics

	sem  chan struct{}
	kick chan struct{}

	// ticker makes the clock that paces lease renewals (tests drive it).
	ticker func(d time.Duration) (<-chan time.Time, func())

	mu       sync.Mutex
	busy     map[string]bool // routes being delivered
	inflight map[string]bool // entry ids being delivered
	conns    map[*conn]bool  // open connections
}

// New returns a runner over st.
func New(st Store, cfg Config, opts Options) *Runner {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.RetryFor, DefaultRetryFor)
	def(&cfg.RetryInitial, DefaultRetryInitial)
	def(&cfg.RetryMax, DefaultRetryMax)
	def(&cfg.ConnectTimeout, DefaultConnectTimeout)
	def(&cfg.CommandTimeout, DefaultCommandTimeout)
	def(&cfg.DataTimeout, DefaultDataTimeout)
	def(&cfg.StopGrace, DefaultStopGrace)
	def(&cfg.Lease, DefaultLease)
	if cfg.LeaseBatch <= 0 {
		cfg.LeaseBatch = DefaultLeaseBatch
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if cfg.Node == "" {
		host, _ := os.Hostname()
		cfg.Node = host + "/" + cfg.Hostname
	}
	r := &Runner{
		st: st, cfg: cfg, res: opts.Resolver, dial: opts.Dial, now: opts.Now, log: opts.Log,
		signer: opts.Signer, tlsBase: opts.TLS, metrics: opts.Metrics,
		sem: make(chan struct{}, cfg.Concurrency), kick: make(chan struct{}, 1),
		busy: map[string]bool{}, inflight: map[string]bool{}, conns: map[*conn]bool{},
		ticker: func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		},
	}
	if r.res == nil {
		r.res = net.DefaultResolver
	}
	if r.dial == nil {
		r.dial = (&net.Dialer{}).DialContext
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.signer == nil {
		r.signer = NewDKIMSigner(st)
	}
	if r.metrics == nil {
		r.metrics = noMetrics{}
	}
	return r
}

// Kick makes Run look at the queue now.
func (r *Runner) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// maxIdle bounds how long Run sleeps without looking at the queue (the
// store signals new entries, but the clock may jump).
const maxIdle = time.Minute

// Run delivers the queue until ctx is cancelled: at once for new entries
// (the store signals them), and when retries fall due. When ctx ends it
// starts nothing new, lets the messages being sent finish (bounded by the
// timeouts), records their outcome and returns.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer func() {
		cut := time.AfterFunc(r.cfg.StopGrace, r.closeConns)
		wg.Wait()
		cut.Stop()
	}()
	// Leases this node held when it stopped (a crash) end now, not at
	// their expiry: nobody is delivering those entries.
	r.releaseOwnLeases(ctx)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-r.kick:
		case <-r.st.QueueChanged():
		}
		r.dispatch(ctx, &wg)
		wait := maxIdle
		if next, ok, err := r.st.QueueNextAttempt(ctx); err == nil && ok {
			wait = min(max(next.Sub(r.now()), 10*time.Millisecond), maxIdle)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// RunDue delivers every entry that is due now and returns when all of them
// have been attempted (tests, and "deliver now" tools).
func (r *Runner) RunDue(ctx context.Context) {
	var wg sync.WaitGroup
	r.dispatch(ctx, &wg)
	wg.Wait()
}

// dispatch starts a worker for every due destination not already being
// delivered.
func (r *Runner) dispatch(ctx context.Context, wg *sync.WaitGroup) {
	due, err := r.st.QueueDue(ctx, r.now(), 10000)
	if err != nil {
		r.log.Error("reading the outbound queue", "err", err)
		return
	}
	groups := map[string][]store.QueueEntry{}
	routes := map[string]route{}
	var order []string
	r.mu.Lock()
	for _, e := range due {
		if r.inflight[e.ID] {
			continue
		}
		rt := route{key: e.Domain, domain: e.Domain}
		if r.cfg.SmartHost != "" {
			rt.key = "smarthost:" + r.cfg.SmartHost
		}
		if r.busy[rt.key] {
			continue
		}
		if _, ok := groups[rt.key]; !ok {
			order = append(order, rt.key)
			routes[rt.key] = rt
		}
		groups[rt.key] = append(groups[rt.key], e)
	}
	for _, k := range order {
		if len(groups[k]) > r.cfg.LeaseBatch {
			groups[k] = groups[k][:r.cfg.LeaseBatch] // the rest after this batch (Kick)
		}
		r.busy[k] = true
		for _, e := range groups[k] {
			r.inflight[e.ID] = true
		}
	}
	r.mu.Unlock()
	// Claim the entries, all in one store transaction: in a store shared
	// by several nodes, another may hold some of them.
	var ids []string
	for _, k := range order {
		for _, e := range groups[k] {
			ids = append(ids, e.ID)
		}
	}
	now := r.now()
	until := now.Add(r.cfg.Lease)
	leased, err := r.st.LeaseQueued(ctx, ids, r.cfg.Node, now, until)
	if err != nil {
		r.log.Error("claiming outbound queue entries", "err", err)
	}
	ours := make(map[string]store.QueueEntry, len(leased)) // as stored now
	for _, e := range leased {
		ours[e.ID] = e
	}
	r.mu.Lock()
	for _, k := range order {
		var kept []store.QueueEntry
		for _, e := range groups[k] {
			if cur, ok := ours[e.ID]; ok {
				kept = append(kept, cur)
			} else {
				delete(r.inflight, e.ID) // another node's
			}
		}
		groups[k] = kept
	}
	r.mu.Unlock()
	for _, k := range order {
		if len(groups[k]) == 0 {
			r.release(k, nil)
			continue
		}
		wg.Add(1)
		// The leases are renewed from now until the route's entries are
		// settled, while the route waits for its turn too.
		rctx, cancel := context.WithCancel(ctx)
		ls := r.keepLeases(groups[k], until, cancel)
		go func() {
			defer wg.Done()
			defer r.Kick() // entries of this route may have become due meanwhile
			select {
			case r.sem <- struct{}{}:
			case <-rctx.Done():
				ls.stop()
				r.unlease(groups[k])
				r.release(k, groups[k])
				return
			}
			defer func() { <-r.sem }()
			defer func() {
				// A remote server's odd reply must not take the whole
				// mail server down: the entries stay queued for a retry.
				if v := recover(); v != nil {
					// The route stays busy (its leases renewed) for one
					// backoff step, so the same input cannot spin; then
					// its entries are retried.
					r.log.Error("panic delivering a route; its entries stay queued", "route", k, "retry_in", r.cfg.RetryInitial, "panic", v, "stack", string(debug.Stack()))
					time.AfterFunc(r.cfg.RetryInitial, func() {
						ls.stop()
						r.unlease(groups[k])
						r.release(k, groups[k])
						r.Kick()
					})
				}
			}()
			r.deliverRoute(rctx, ls, routes[k], groups[k])
			ls.stop()
			// Entries the run did not get to because it is stopping are
			// due again now (another node may take them). The others not
			// attempted (the connection broken twice, a message that could
			// not be read) are due when their leases end, unrenewed: a
			// retry a lease later, not at once again and again.
			if rest := ls.heldEntries(groups[k]); len(rest) > 0 && ctx.Err() != nil {
				r.unlease(rest)
			}
			r.release(k, groups[k])
		}()
	}
}

// closeConns cuts every open connection: the attempts fail (temporarily)
// and are recorded as such.
func (r *Runner) closeConns() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for cn := range r.conns {
		cn.c.Close()
	}
}

func (r *Runner) track(cn *conn, open bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if open {
		r.conns[cn] = true
	} else {
		delete(r.conns, cn)
	}
}

// unlease gives back the leases of entries that were not attempted.
func (r *Runner) unlease(entries []store.QueueEntry) {
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	// The run's context may be over; this bookkeeping must still happen.
	if err := r.st.ReleaseQueued(context.Background(), ids, r.cfg.Node); err != nil {
		r.log.Error("releasing outbound queue leases", "err", err)
	}
}

// releaseOwnLeases ends the leases this node holds.
func (r *Runner) releaseOwnLeases(ctx context.Context) {
	all, err := r.st.QueueEntries(ctx)
	if err != nil {
		r.log.Error("reading the outbound queue", "err", err)
		return
	}
	var mine []store.QueueEntry
	for _, e := range all {
		if e.LeaseHolder == r.cfg.Node {
			mine = append(mine, e)
		}
	}
	if len(mine) > 0 {
		r.unlease(mine)
	}
}

func (r *Runner) release(key string, entries []store.QueueEntry) {
	r.mu.Lock()
	delete(r.busy, key)
	for _, e := range entries {
		delete(r.inflight, e.ID)
	}
	r.mu.Unlock()
}

// deliverRoute sends the entries of one destination over one connection
// (reconnecting once if it breaks). Outcomes are recorded as they come; the
// recording of one message overlaps the sending of the next.
func (r *Runner) deliverRoute(ctx context.Context, ls *leases, rt route, entries []store.QueueEntry) {
	var settles sync.WaitGroup
	defer settles.Wait()
	stop := make(chan struct{})
	defer close(stop)
	prep := make(chan prepared, 2)
	go r.prepare(ctx, entries, prep, stop)
	var cn *conn
	defer func() {
		if cn != nil {
			cn.quit()
			r.track(cn, false)
		}
	}()
	reconnects := 0
	for p := range prep {
		if ctx.Err() != nil {
			return // still due; the next run takes them
		}
		e := p.e
		if ls.isLost(e.ID) {
			continue // another node's now
		}
		if cn == nil {
			var err error
			if cn, err = r.connect(ctx, rt); err == nil {
				r.track(cn, true)
			} else {
				cn = nil
				de := asDeliveryError(err)
				// The destination is unreachable: every entry of it shares
				// the outcome of this attempt.
				r.settleAsync(ctx, &settles, ls, e, p.msg, nil, sendResult{failed: allFailed(e.Pending(), de)})
				for _, rest := range entries[p.i+1:] {
					if !ls.isLost(rest.ID) {
						r.settleAsync(ctx, &settles, ls, rest, nil, nil, sendResult{failed: allFailed(rest.Pending(), de)})
					}
				}
				return
			}
		}
		if !ls.sending(e.ID, cn) {
			continue // lost while connecting, or the lease ran out
		}
		res := cn.send(e.From, e.Pending(), p.sig, p.msg)
		ls.sending("", nil)
		r.settleAsync(ctx, &settles, ls, e, p.msg, cn, res)
		if res.broken {
			cn.close()
			r.track(cn, false)
			cn = nil
			if reconnects++; reconnects > 1 {
				return // the rest stays due for the next run
			}
		}
	}
}

// prepared is a queued message read and signed, ready to send.
type prepared struct {
	i        int // index in the route's entries
	e        store.QueueEntry
	msg, sig []byte
}

// prepare reads and signs the entries in order, a little ahead of the
// sending (signing with RSA costs about as much as sending).
func (r *Runner) prepare(ctx context.Context, entries []store.QueueEntry, out chan<- prepared, stop <-chan struct{}) {
	defer close(out)
	for i, e := range entries {
		msg, cur, err := r.st.ReadQueued(ctx, e.ID)
		if errors.Is(err, store.ErrNoSuchMessage) {
			continue // dropped meanwhile
		}
		if err != nil {
			r.log.Error("reading a queued message", "id", e.ID, "err", err)
			continue
		}
		if len(cur.Pending()) == 0 || cur.LeaseHolder != r.cfg.Node {
			continue // done, or no longer ours
		}
		msg = crlfOnly(msg) // before signing: the signature covers what is sent
		sig, err := r.signer.Sign(ctx, cur.From, msg)
		if err != nil {
			r.log.Warn("DKIM signing failed; sending unsigned", "id", e.ID, "err", err)
			sig = nil
		}
		select {
		case out <- prepared{i: i, e: cur, msg: msg, sig: sig}:
		case <-stop:
			return
		}
	}
}

// errLeaseLost refuses to record an attempt at an entry no longer ours.
var errLeaseLost = errors.New("the entry's lease is another holder's")

func allFailed(rcpts []string, de *deliveryError) map[string]*deliveryError {
	m := map[string]*deliveryError{}
	for _, rc := range rcpts {
		m[rc] = de
	}
	return m
}

func asDeliveryError(err error) *deliveryError {
	var de *deliveryError
	if errors.As(err, &de) {
		return de
	}
	return tempErr("4.0.0", "%v", err)
}

func (r *Runner) settleAsync(ctx context.Context, wg *sync.WaitGroup, ls *leases, e store.QueueEntry, msg []byte, cn *conn, res sendResult) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.settle(e, msg, cn, res)
		ls.settled(e.ID) // renewed until its outcome is stored
	}()
}

// backoff is the wait after the n-th failed attempt.
func (r *Runner) backoff(n int) time.Duration {
	d := r.cfg.RetryInitial
	for i := 1; i < n && d < r.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, r.cfg.RetryMax)
}

// settle records the outcome of one attempt for entry e: sent recipients
// are done, permanent failures and (once the entry is RetryFor old)
// temporary ones are bounced, the rest is rescheduled.
func (r *Runner) settle(e store.QueueEntry, msg []byte, cn *conn, res sendResult) {
	// The outcome must reach the disk even when Run is being stopped.
	ctx := context.Background()
	now := r.now()
	expired := now.Sub(e.Created) >= r.cfg.RetryFor
	sent := map[string]bool{}
	for _, rc := range res.sent {
		sent[rc] = true
	}
	var fails []failure
	var lastErr string
	status := map[string]string{}
	for _, rc := range e.Pending() {
		if sent[rc] {
			status[rc] = store.RcptSent
			continue
		}
		de := res.failed[rc]
		if de == nil {
			de = tempErr("4.4.2", "not attempted (connection lost)")
		}
		lastErr = de.msg
		if de.perm || expired {
			st, diag := de.status, de.msg
			if !de.perm {
				st = "5.4.7" // delivery time expired (RFC 3463)
				diag = fmt.Sprintf("delivery time expired after %s; last error: %s", r.cfg.RetryFor, de.msg)
			}
			fails = append(fails, failure{Rcpt: rc, Status: st, Diagnostic: diag, RemoteMTA: de.host, SMTP: de.smtp && de.perm})
			status[rc] = store.RcptFailed
		}
	}
	next := now.Add(r.backoff(e.Attempts + 1))
	if deadline := e.Created.Add(r.cfg.RetryFor); next.After(deadline) {
		next = deadline // one last attempt when the time is up
	}
	apply := func(x *store.QueueEntry) error {
		if x.LeaseHolder != r.cfg.Node {
			return errLeaseLost
		}
		x.Attempts++
		x.NextAttempt = next.UTC()
		if lastErr != "" {
			x.LastError = lastErr
		}
		for i := range x.Recipients {
			rc := &x.Recipients[i]
			if rc.Status != store.RcptPending {
				continue
			}
			rc.Status = status[rc.Addr] // pending ("") unless sent or failed
			if de := res.failed[rc.Addr]; de != nil {
				rc.Error = de.msg
			}
		}
		return nil
	}
	var ds []store.Delivery
	var out []store.Outbound
	if len(fails) > 0 {
		if msg == nil {
			msg, _, _ = r.st.ReadQueued(ctx, e.ID)
		}
		ds, out = r.bounce(ctx, e, msg, fails, now)
	}
	err := r.st.SettleQueued(ctx, e.ID, apply, ds, out)
	var qe *store.QuotaError
	if errors.As(err, &qe) {
		r.log.Warn("DSN not delivered: the sender's mailbox is full", "id", e.ID, "to", e.ReturnPath)
		err = r.st.SettleQueued(ctx, e.ID, apply, nil, nil)
	}
	switch {
	case errors.Is(err, store.ErrNoSuchMessage):
		r.log.Info("outbound entry dropped while being delivered", "id", e.ID)
		return
	case errors.Is(err, errLeaseLost):
		// The lease ended while this attempt ran (it could not be
		// renewed in time) and another node may be delivering the entry:
		// of this attempt only what the remote accepted is recorded, so
		// that it is not sent again; no failure, no DSN, and the other
		// node's lease stays as it is (RecordSent), so that it goes on.
		r.log.Warn("outbound entry's lease lost during the attempt; its outcome is left to the node holding it", "id", e.ID, "queue_id", e.QueueID, "sent", res.sent)
		if len(res.sent) > 0 {
			err := r.st.RecordSent(ctx, e.ID, res.sent)
			if err != nil && !errors.Is(err, store.ErrNoSuchMessage) {
				r.log.Error("recording an outbound delivery", "id", e.ID, "err", err)
			}
		}
		return
	case err != nil:
		r.log.Error("recording an outbound delivery", "id", e.ID, "err", err)
		return
	}
	host := ""
	tlsOn := false
	if cn != nil {
		host, tlsOn = cn.host, cn.tls
	}
	delivered, deferred := 0, 0
	for _, rc := range e.Pending() {
		switch {
		case sent[rc]:
			delivered++
		case status[rc] == "":
			deferred++
		}
	}
	r.metrics.OutboundResults(delivered, deferred, len(fails))
	for _, rc := range res.sent {
		r.log.Info("outbound", "id", e.ID, "queue_id", e.QueueID, "from", e.From, "to", rc, "host", host, "tls", tlsOn, "outcome", "sent")
	}
	for _, f := range fails {
		r.log.Info("outbound", "id", e.ID, "queue_id", e.QueueID, "from", e.From, "to", f.Rcpt, "host", f.RemoteMTA, "outcome", "bounced", "status", f.Status, "error", f.Diagnostic)
	}
	for rc, de := range res.failed {
		if status[rc] == "" && !sent[rc] {
			r.log.Info("outbound", "id", e.ID, "queue_id", e.QueueID, "from", e.From, "to", rc, "outcome", "deferred", "error", de.msg, "next", next)
		}
	}
}

// bounce makes the DSN for fails: stored for a local return path, queued
// (with the null sender) for a remote one, nothing for none.
func (r *Runner) bounce(ctx context.Context, e store.QueueEntry, msg []byte, fails []failure, now time.Time) ([]store.Delivery, []store.Outbound) {
	if e.ReturnPath == "" {
		r.log.Info("no DSN: null return path", "id", e.ID)
		return nil, nil
	}
	dsn := buildDSN(r.cfg.Hostname, e, msg, fails, now)
	if acct, err := r.st.Resolve(ctx, e.ReturnPath); err == nil {
		return []store.Delivery{{Recipients: []string{acct}, Message: dsn}}, nil
	}
	return nil, []store.Outbound{{QueueID: e.QueueID, Recipients: []string{e.ReturnPath}, Origin: store.OriginDSN, Message: dsn}}
}
