package admin

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"yubin/store"

	"yubin/internal/config"
	"yubin/internal/storage"
	"yubin/internal/tlsutil"
	"yubin/scan"
)

// Status is what "yubin status" shows: the server when it runs, the
// outbound queue, the store, the certificates, clamd and the daily
// reports.
type Status struct {
	Running bool `json:"running"`
	// Of the running server only:
	Version       string     `json:"version,omitempty"`
	PID           int        `json:"pid,omitempty"`
	Started       time.Time  `json:"started,omitzero"`
	UptimeSeconds int64      `json:"uptime_seconds,omitempty"`
	Listeners     []Listener `json:"listeners,omitempty"`

	Queue        QueueStatus        `json:"queue"`
	Store        StoreStatus        `json:"store"`
	Certificates []tlsutil.CertInfo `json:"certificates"`
	// CertificateError says why no certificate could be read (a
	// configured file that is missing, say).
	CertificateError string         `json:"certificate_error,omitempty"`
	Clamd            *ClamdStatus   `json:"clamd,omitempty"` // nil: scan.clamd is not set
	Reports          []ReportStatus `json:"reports"`
	// LastBackup is the latest backup "yubin backup" made (Time zero:
	// none yet).
	LastBackup store.LastBackup `json:"last_backup"`
}

// Listener is one listener of the running server.
type Listener struct {
	Name string `json:"name"` // smtp, submission, ..., metrics
	Addr string `json:"addr"` // as bound (the port chosen for ":0")
}

// QueueStatus is the outbound queue in brief.
type QueueStatus struct {
	Entries          int       `json:"entries"`
	Oldest           time.Time `json:"oldest,omitzero"`
	OldestAgeSeconds int64     `json:"oldest_age_seconds"`
}

// StoreStatus is the store on disk.
type StoreStatus struct {
	Path string `json:"path"`
	// Bytes is the size of the store's file, or of its PostgreSQL
	// database on the database server's disk.
	Bytes int64 `json:"bytes"`
}

// ClamdStatus says whether clamd answers a PING.
type ClamdStatus struct {
	Address   string `json:"address"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
}

// ReportStatus is a parent domain's daily report.
type ReportStatus struct {
	Domain string `json:"domain"`
	To     string `json:"to,omitempty"` // "" = the domain has no report
	// Last is the day (YYYY-MM-DD) of the last daily report sent at the
	// report time; "" = never ("yubin report send" is not counted).
	Last string `json:"last,omitempty"`
}

// StatusInfo is what the store does not know: given by the running
// server (SetStatusInfo), or, without one, read from the config and the
// data dir (LocalStatusInfo).
type StatusInfo struct {
	Running          bool
	Version          string
	PID              int
	Started          time.Time
	Listeners        []Listener
	Store            StoreStatus
	Certificates     []tlsutil.CertInfo
	CertificateError string
	Clamd            *ClamdStatus
}

// SetStatusInfo gives the service what Status reports beyond the store.
func (s *Service) SetStatusInfo(f func(ctx context.Context) StatusInfo) { s.statusInfo = f }

// Status reports on the server, or, when the service runs on the store
// directly, on the data dir.
func (s *Service) Status(ctx context.Context) (Status, error) {
	var info StatusInfo
	if s.statusInfo != nil {
		info = s.statusInfo(ctx)
	}
	now := time.Now()
	st := Status{
		Running: info.Running, Version: info.Version, PID: info.PID, Started: info.Started, Listeners: info.Listeners,
		Store: info.Store, Certificates: info.Certificates, CertificateError: info.CertificateError, Clamd: info.Clamd,
		Reports: []ReportStatus{},
	}
	if st.Certificates == nil {
		st.Certificates = []tlsutil.CertInfo{}
	}
	if !info.Started.IsZero() {
		st.UptimeSeconds = int64(now.Sub(info.Started).Seconds())
	}
	n, oldest, err := s.st.QueueStats(ctx)
	if err != nil {
		return Status{}, translate(err)
	}
	st.Queue = QueueStatus{Entries: n, Oldest: oldest}
	if !oldest.IsZero() {
		st.Queue.OldestAgeSeconds = int64(max(now.Sub(oldest), 0).Seconds())
	}
	domains, err := s.st.Domains(ctx)
	if err != nil {
		return Status{}, translate(err)
	}
	for _, d := range domains {
		if d.Parent != "" {
			continue // a child's mail is its parent's
		}
		r := ReportStatus{Domain: d.Name}
		if set, err := s.st.DomainSettings(ctx, d.Name); err == nil && !set.WarningsOff {
			r.To = set.ReportTo
		}
		// The keys the reporter records: report/DOMAIN/YYYY-MM-DD.
		prefix := "report/" + d.Name + "/"
		last, err := s.st.LastOnceKey(ctx, prefix)
		if err != nil {
			return Status{}, translate(err)
		}
		r.Last = strings.TrimPrefix(last, prefix)
		st.Reports = append(st.Reports, r)
	}
	if st.LastBackup, err = s.st.LastBackup(ctx); err != nil {
		return Status{}, translate(err)
	}
	if sz, ok := s.st.(store.Sizer); ok && st.Store.Bytes == 0 {
		// A database: its size is the server's to say, not a file's.
		if st.Store.Bytes, err = sz.StoreBytes(ctx); err != nil {
			return Status{}, translate(err)
		}
	}
	return st, nil
}

// LocalStatusInfo is StatusInfo for a data dir no server runs on: the
// store's file, the certificates on disk (the configured file, the
// self-signed one, or ACME's cache) and clamd.
func LocalStatusInfo(ctx context.Context, cfg config.Config) StatusInfo {
	info := StatusInfo{Store: StoreInfoOf(cfg), Clamd: CheckClamd(ctx, cfg)}
	var err error
	switch {
	case cfg.TLS.Cert != "":
		var c tlsutil.CertInfo
		if c, err = tlsutil.FileCert(cfg.TLS.Cert, tlsutil.SourceConfigured); err == nil {
			info.Certificates = []tlsutil.CertInfo{c}
		}
	case cfg.TLS.ACME:
		info.Certificates = tlsutil.ACMECached(cfg.ACMEDir(), cfg.ACMEHosts())
	default:
		var c tlsutil.CertInfo
		c, err = tlsutil.FileCert(tlsutil.SelfSignedCert(cfg.TLSDir()), tlsutil.SourceSelfSigned)
		if errors.Is(err, os.ErrNotExist) {
			err = nil // made when the server first starts
		} else if err == nil {
			info.Certificates = []tlsutil.CertInfo{c}
		}
	}
	if err != nil {
		info.CertificateError = err.Error()
	}
	return info
}

// StoreInfo is where the store of a data dir is and its size on disk.
func StoreInfo(dataDir string) StoreStatus {
	size, _ := storage.SizeOnDisk(dataDir)
	return StoreStatus{Path: storage.Describe(dataDir), Bytes: size}
}

// StoreInfoOf is StoreInfo of the store cfg names: a PostgreSQL database
// is named without its password, and has no size on disk here (0; Status
// asks the database).
func StoreInfoOf(cfg config.Config) StoreStatus {
	if cfg.Store.Backend == "postgres" {
		return StoreStatus{Path: cfg.StoreDescription()}
	}
	return StoreInfo(cfg.DataDir)
}

// clamdPing bounds the PING of CheckClamd.
const clamdPing = 3 * time.Second

// CheckClamd says whether the clamd of cfg answers a PING; nil when none
// is configured.
func CheckClamd(ctx context.Context, cfg config.Config) *ClamdStatus {
	if cfg.Scan.Clamd == "" {
		return nil
	}
	cs := &ClamdStatus{Address: cfg.Scan.Clamd}
	c, err := scan.NewClamd(scan.ClamdConfig{Address: cfg.Scan.Clamd, Timeout: clamdPing})
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, clamdPing)
		defer cancel()
		err = c.Ping(ctx)
	}
	if err != nil {
		cs.Error = err.Error()
	} else {
		cs.Reachable = true
	}
	return cs
}
