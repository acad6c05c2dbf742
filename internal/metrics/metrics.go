// Package metrics owns the server's Prometheus collectors, on one registry
// made by New (no package-level registry). The protocol packages never
// import it: each declares the small interface it calls (smtpd.Metrics,
// delivery.Metrics, ...) and internal/server hands them a *Metrics, which
// has every one of those methods. Counters and histograms are resolved to
// their label children once, in New: counting a message costs an atomic
// add, no allocation and no label lookup. Gauges that describe the state
// of the store (the outbound queue) or of the servers (open sessions,
// certificates) are computed when Prometheus scrapes, from Sources.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Label values. The methods take these words; an unknown one is counted
// nowhere (it is a programming error, and a scrape must not fail for it).
const (
	// SMTP listeners.
	ListenerMX          = "mx"
	ListenerSubmission  = "submission"
	ListenerSubmissions = "submissions"

	// Delivery verdicts: what one recipient of a message got.
	VerdictClean       = "clean"
	VerdictStripped    = "stripped"
	VerdictDiscarded   = "discarded"
	VerdictJunk        = "junk"
	VerdictQuarantined = "quarantined"
	VerdictRejected    = "rejected"

	// Protocols with logins.
	ProtoSMTP = "smtp"
	ProtoPOP3 = "pop3"
	ProtoIMAP = "imap"
	ProtoWeb  = "web" // logins on the web listener (internal/web)
)

var (
	listeners = []string{ListenerMX, ListenerSubmission, ListenerSubmissions}
	classes   = []string{"2xx", "4xx", "5xx"}
	verdicts  = []string{VerdictClean, VerdictStripped, VerdictDiscarded, VerdictJunk, VerdictQuarantined, VerdictRejected}
	outcomes  = []string{"delivered", "deferred", "bounced"}
	protos    = []string{ProtoSMTP, ProtoPOP3, ProtoIMAP, ProtoWeb}
	reasons   = []string{"bad_credentials", "locked_out"}
)

// QueueStats is the outbound queue as a scrape sees it.
type QueueStats struct {
	Entries int       // entries (one per message and remote domain)
	Oldest  time.Time // the oldest entry's creation; zero when empty
}

// Cert is a certificate the server presents.
type Cert struct {
	Name     string // the host name it is for
	NotAfter time.Time
}

// Sources are read at every scrape. Any may be nil: its metric is then
// left out.
type Sources struct {
	Queue        func(ctx context.Context) (QueueStats, error)
	IMAPSessions func() int
	POP3Sessions func() int
	Certificates func(ctx context.Context) []Cert
	Version      string // yubin_build_info's label
	Log          *slog.Logger
	Now          func() time.Time // nil: time.Now
}

// Metrics is the server's registry and its collectors. Its methods are
// safe for concurrent use, and a nil *Metrics counts nothing.
type Metrics struct {
	reg *prometheus.Registry

	smtp       [3][3]prometheus.Counter // listener, class
	deliveries [6]prometheus.Counter    // verdict
	scan       prometheus.Histogram
	commit     prometheus.Histogram
	outbound   [3]prometheus.Counter    // delivered, deferred, bounced
	authFail   [4][2]prometheus.Counter // protocol, reason
}

// New makes the registry with every collector: Yubin's, the Go runtime's
// and the process's.
func New(src Sources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	smtp := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "yubin_smtp_transactions_total",
		Help: "SMTP transactions by listener and the class of the reply that ended them: the reply to the message data, a refused MAIL, or the last refused RCPT of a transaction given up before its data.",
	}, []string{"listener", "class"})
	for i, l := range listeners {
		for j, c := range classes {
			m.smtp[i][j] = smtp.WithLabelValues(l, c)
		}
	}
	del := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "yubin_deliveries_total",
		Help: "Recipients of messages that went through the delivery path, by what they got: clean, stripped, discarded, junk, quarantined, or rejected (the message was refused for its content).",
	}, []string{"verdict"})
	for i, v := range verdicts {
		m.deliveries[i] = del.WithLabelValues(v)
	}
	m.scan = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "yubin_scan_duration_seconds",
		Help:    "Time the virus scanner took per message (every engine, archives expanded).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "yubin_store_commit_duration_seconds",
		Help:    "Time from handing a message's deliveries to the store to their fsync'd commit (the group commit's wait included).",
		Buckets: []float64{.0005, .001, .002, .004, .008, .016, .032, .064, .128, .256, .512, 1, 2, 5},
	})
	out := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "yubin_outbound_recipients_total",
		Help: "Outcomes of delivery attempts to remote recipients: delivered, deferred (to be retried), bounced (a DSN goes back).",
	}, []string{"result"})
	for i, o := range outcomes {
		m.outbound[i] = out.WithLabelValues(o)
	}
	af := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "yubin_auth_failures_total",
		Help: "Failed logins by protocol: a wrong user name or password, or a login refused because the client's address is locked out.",
	}, []string{"protocol", "reason"})
	for i, p := range protos {
		for j, r := range reasons {
			m.authFail[i][j] = af.WithLabelValues(p, r)
		}
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "yubin_build_info",
		Help:        "1, with the running yubin's version as a label.",
		ConstLabels: prometheus.Labels{"version": src.Version},
	})
	build.Set(1)
	m.reg.MustRegister(smtp, del, m.scan, m.commit, out, af, build, newScrape(src))
	return m
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, Timeout: 10 * time.Second})
}

// Gatherer is the registry, for tests.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

func index(words []string, w string) int {
	for i, x := range words {
		if x == w {
			return i
		}
	}
	return -1
}

// classOf is the index in classes of an SMTP reply code, or -1.
func classOf(code int) int {
	switch code / 100 {
	case 2:
		return 0
	case 4:
		return 1
	case 5:
		return 2
	}
	return -1
}

// SMTPTransaction counts a transaction on listener (ListenerMX, ...)
// ended by a reply with code.
func (m *Metrics) SMTPTransaction(listener string, code int) {
	if m == nil {
		return
	}
	l, c := index(listeners, listener), classOf(code)
	if l >= 0 && c >= 0 {
		m.smtp[l][c].Inc()
	}
}

// Deliveries counts n recipients that got verdict (VerdictClean, ...).
func (m *Metrics) Deliveries(verdict string, n int) {
	if m == nil || n <= 0 {
		return
	}
	if v := index(verdicts, verdict); v >= 0 {
		m.deliveries[v].Add(float64(n))
	}
}

// ScanDuration records the time one message's scan took.
func (m *Metrics) ScanDuration(d time.Duration) {
	if m != nil {
		m.scan.Observe(d.Seconds())
	}
}

// CommitDuration records the time one delivery's store commit took.
func (m *Metrics) CommitDuration(d time.Duration) {
	if m != nil {
		m.commit.Observe(d.Seconds())
	}
}

// OutboundResults counts the outcome of one attempt at a queue entry's
// recipients.
func (m *Metrics) OutboundResults(delivered, deferred, bounced int) {
	if m == nil {
		return
	}
	for i, n := range [3]int{delivered, deferred, bounced} {
		if n > 0 {
			m.outbound[i].Add(float64(n))
		}
	}
}

// AuthFailure counts a failed login on protocol (ProtoSMTP, ...); locked
// out: refused because the client's address has failed too often.
func (m *Metrics) AuthFailure(protocol string, lockedOut bool) {
	if m == nil {
		return
	}
	p := index(protos, protocol)
	if p < 0 {
		return
	}
	r := 0
	if lockedOut {
		r = 1
	}
	m.authFail[p][r].Inc()
}

// scrape computes the gauges of the state of things when Prometheus asks.
type scrape struct {
	src                                 Sources
	queueEntries, queueOldest, sessions *prometheus.Desc
	certDays, scrapeErrors              *prometheus.Desc
}

func newScrape(src Sources) *scrape {
	if src.Now == nil {
		src.Now = time.Now
	}
	if src.Log == nil {
		src.Log = slog.New(slog.DiscardHandler)
	}
	return &scrape{
		src:          src,
		queueEntries: prometheus.NewDesc("yubin_outbound_queue_entries", "Entries in the outbound queue (one per message and remote domain).", nil, nil),
		queueOldest:  prometheus.NewDesc("yubin_outbound_queue_oldest_age_seconds", "Age of the oldest entry in the outbound queue; 0 when it is empty.", nil, nil),
		sessions:     prometheus.NewDesc("yubin_open_sessions", "Open IMAP and POP3 connections, logged in or not.", []string{"protocol"}, nil),
		certDays:     prometheus.NewDesc("yubin_tls_certificate_days_left", "Days until the certificate the server presents for a name expires (negative: expired).", []string{"name"}, nil),
		scrapeErrors: prometheus.NewDesc("yubin_scrape_errors", "1 when the store could not be read for this scrape (the queue gauges are then missing).", nil, nil),
	}
}

func (s *scrape) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.queueEntries, s.queueOldest, s.sessions, s.certDays, s.scrapeErrors} {
		ch <- d
	}
}

func (s *scrape) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := s.src.Now()
	if s.src.Queue != nil {
		failed := 0.0
		if q, err := s.src.Queue(ctx); err != nil {
			s.src.Log.Warn("metrics: reading the outbound queue", "err", err)
			failed = 1
		} else {
			age := 0.0
			if !q.Oldest.IsZero() {
				age = max(now.Sub(q.Oldest).Seconds(), 0)
			}
			ch <- prometheus.MustNewConstMetric(s.queueEntries, prometheus.GaugeValue, float64(q.Entries))
			ch <- prometheus.MustNewConstMetric(s.queueOldest, prometheus.GaugeValue, age)
		}
		ch <- prometheus.MustNewConstMetric(s.scrapeErrors, prometheus.GaugeValue, failed)
	}
	if s.src.IMAPSessions != nil {
		ch <- prometheus.MustNewConstMetric(s.sessions, prometheus.GaugeValue, float64(s.src.IMAPSessions()), ProtoIMAP)
	}
	if s.src.POP3Sessions != nil {
		ch <- prometheus.MustNewConstMetric(s.sessions, prometheus.GaugeValue, float64(s.src.POP3Sessions()), ProtoPOP3)
	}
	if s.src.Certificates != nil {
		seen := map[string]bool{}
		for _, c := range s.src.Certificates(ctx) {
			if seen[c.Name] {
				continue // one series per name
			}
			seen[c.Name] = true
			ch <- prometheus.MustNewConstMetric(s.certDays, prometheus.GaugeValue, c.NotAfter.Sub(now).Hours()/24, c.Name)
		}
	}
}
