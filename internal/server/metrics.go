package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"yubin/forward/queue"
	"yubin/imapd"
	"yubin/internal/config"
	"yubin/internal/delivery"
	"yubin/internal/metrics"
	"yubin/internal/tlsutil"
	"yubin/internal/version"
	"yubin/internal/web"
	"yubin/pop3d"
	"yubin/smtpd"
	"yubin/store"
)

// serverMetrics is the one registry of a server (nil m: listen.metrics
// is off, and nothing is counted), handed to each package as the small
// interface it declares.
type serverMetrics struct{ m *metrics.Metrics }

// newMetrics makes the registry when listen.metrics is on. The gauges
// read the store, the certificates and the servers' sessions when
// Prometheus scrapes.
func newMetrics(cfg config.Config, st store.Queue, certs func(context.Context) []tlsutil.CertInfo,
	imapSessions, pop3Sessions func() int, log *slog.Logger) serverMetrics {
	if config.Off(cfg.Listen.Metrics) {
		return serverMetrics{}
	}
	src := metrics.Sources{
		Queue: func(ctx context.Context) (metrics.QueueStats, error) {
			n, oldest, err := st.QueueStats(ctx)
			return metrics.QueueStats{Entries: n, Oldest: oldest}, err
		},
		Version: version.String(),
		Log:     log,
		Certificates: func(ctx context.Context) []metrics.Cert {
			var out []metrics.Cert
			for _, c := range certs(ctx) {
				out = append(out, metrics.Cert{Name: c.Name, NotAfter: c.NotAfter})
			}
			return out
		},
	}
	if !config.Off(cfg.Listen.IMAP) || !config.Off(cfg.Listen.IMAPS) {
		src.IMAPSessions = imapSessions
	}
	if !config.Off(cfg.Listen.POP3) || !config.Off(cfg.Listen.POP3S) {
		src.POP3Sessions = pop3Sessions
	}
	return serverMetrics{metrics.New(src)}
}

// The interfaces, nil when the metrics are off (each package then counts
// nothing).
func (s serverMetrics) smtp() smtpd.Metrics {
	if s.m == nil {
		return nil
	}
	return s.m
}

func (s serverMetrics) pop3() pop3d.Metrics {
	if s.m == nil {
		return nil
	}
	return s.m
}

func (s serverMetrics) imap() imapd.Metrics {
	if s.m == nil {
		return nil
	}
	return s.m
}

func (s serverMetrics) web() web.Metrics {
	if s.m == nil {
		return nil
	}
	return s.m
}

func (s serverMetrics) delivery() delivery.Metrics {
	if s.m == nil {
		return nil
	}
	return s.m
}

func (s serverMetrics) queue() queue.Metrics {
	if s.m == nil {
		return nil
	}
	return s.m
}

// httpServer serves /metrics and nothing else, over plain HTTP.
func (s serverMetrics) httpServer(log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	if s.m != nil {
		mux.Handle("GET /metrics", s.m.Handler())
	}
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
}
