// Package config reads Yubin's configuration file (TOML) and supplies the
// embedded defaults used when there is none.
package config

import (
	_ "embed"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration. Every field has a default (Default).
type Config struct {
	Hostname string `toml:"hostname"` // name in greetings and Received headers
	DataDir  string `toml:"data_dir"`

	Listen Listen `toml:"listen"`
	TLS    TLS    `toml:"tls"`
	SMTP   SMTP   `toml:"smtp"`
	POP3   POP3   `toml:"pop3"`
	IMAP   IMAP   `toml:"imap"`
	Scan   Scan   `toml:"scan"`
	Notify Notify `toml:"notify"`
	Web    Web    `toml:"web"`
	Auth   Auth   `toml:"auth"`
	Store  Store  `toml:"store"`
	Log    Log    `toml:"log"`
	DNS    DNS    `toml:"dns"`
	Spam   Spam   `toml:"spam"`

	Outbound Outbound `toml:"outbound"`
}

// Listen holds listen addresses ("host:port"); "" or "off" switches one off.
type Listen struct {
	SMTP        string `toml:"smtp"`        // port 25, mail from the Internet
	Submission  string `toml:"submission"`  // port 587, STARTTLS + AUTH
	Submissions string `toml:"submissions"` // port 465, implicit TLS + AUTH
	POP3        string `toml:"pop3"`        // port 110, STLS
	POP3S       string `toml:"pop3s"`       // port 995, implicit TLS
	IMAP        string `toml:"imap"`        // port 143, STARTTLS
	IMAPS       string `toml:"imaps"`       // port 993, implicit TLS
	HTTP        string `toml:"http"`        // port 80: ACME http-01 challenges and client autoconfiguration; required by tls.acme
	Metrics     string `toml:"metrics"`     // Prometheus metrics over plain HTTP, /metrics only (e.g. 127.0.0.1:9425)
	Web         string `toml:"web"`         // HTTPS: the Mail Manager and Site Manager (internal/web)
}

// IMAP settings.
type IMAP struct {
	IdleTimeout    Duration `toml:"idle_timeout"`    // autologout of an idle logged-in client (RFC 3501: at least 30m)
	MaxConnections int      `toml:"max_connections"` // for the whole IMAP server
	AppendLimit    int64    `toml:"append_limit"`    // largest APPEND, bytes (advertised as APPENDLIMIT)
	// AppendBudget bounds the bytes of all APPENDs being received or
	// stored at once (data_dir/spool/imap holds what is beyond a small
	// buffer per APPEND); over it APPEND gets NO [LIMIT].
	AppendBudget int64 `toml:"append_budget"`
	// MaxUserIPConnections bounds the logged-in connections of one account
	// from one IP address; 0 = unlimited.
	MaxUserIPConnections int `toml:"max_userip_connections"`
	// What one client may hold (see Security limits in README.md).
	MaxConnectionsIP int      `toml:"max_connections_per_ip"` // per client address (IPv6: /64); 0 = no limit
	AuthTimeout      Duration `toml:"auth_timeout"`           // from connect to login
}

// POP3 settings.
type POP3 struct {
	IdleTimeout      Duration `toml:"idle_timeout"`           // RFC 1939 asks for at least 10 minutes
	MaxConnections   int      `toml:"max_connections"`        // for the whole POP3 server (110 and 995)
	MaxConnectionsIP int      `toml:"max_connections_per_ip"` // per client address (IPv6: /64); 0 = no limit
	AuthTimeout      Duration `toml:"auth_timeout"`           // from connect to login
	LineTimeout      Duration `toml:"line_timeout"`           // a command line, from its first byte
}

// TLS says where the certificate comes from: a configured pair, ACME, or
// (neither) a self-signed certificate in the data dir.
type TLS struct {
	Cert string `toml:"cert"` // PEM certificate chain; "" = ACME or self-signed in the data dir
	Key  string `toml:"key"`

	ACME            bool   `toml:"acme"`              // certificates from an ACME CA (Let's Encrypt), http-01 on listen.http
	ACMEEmail       string `toml:"acme_email"`        // contact address given to the CA; "" = none
	ACMEDirectory   string `toml:"acme_directory"`    // the CA's directory URL
	ACMEDirectoryCA string `toml:"acme_directory_ca"` // PEM file of roots trusted for the directory's HTTPS; "" = the system's

	HandshakeTimeout Duration `toml:"handshake_timeout"` // every server-side handshake: 465, 995, 993, STARTTLS, STLS
}

// DefaultACMEDirectory is Let's Encrypt's production directory.
const DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"

func (t *TLS) validate(l *Listen) error {
	if (t.Cert == "") != (t.Key == "") {
		return fmt.Errorf("tls.cert and tls.key must be set together")
	}
	if !t.ACME {
		return nil
	}
	if t.Cert != "" {
		return fmt.Errorf("tls.acme and tls.cert/tls.key are mutually exclusive: use either a configured certificate or ACME")
	}
	if u, err := url.Parse(t.ACMEDirectory); err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("tls.acme_directory = %q: want an https:// URL", t.ACMEDirectory)
	}
	if t.ACMEEmail != "" && !strings.Contains(t.ACMEEmail, "@") {
		return fmt.Errorf("tls.acme_email = %q: want an address", t.ACMEEmail)
	}
	if Off(l.HTTP) {
		return fmt.Errorf("tls.acme needs listen.http (port 80, for the CA's http-01 challenges), e.g. listen.http = \"0.0.0.0:80\"")
	}
	return nil
}

// MaxSMTPLineLength is the most smtp.max_line_length may be.
const MaxSMTPLineLength = 1 << 20

// SMTP limits.
type SMTP struct {
	MaxMessageSize int64    `toml:"max_message_size"` // bytes, advertised with SIZE
	MaxRecipients  int      `toml:"max_recipients"`
	MaxLineLength  int      `toml:"max_line_length"` // bytes per line of a message, CRLF included (smtpd.Config)
	ReadTimeout    Duration `toml:"read_timeout"`    // idle time allowed between commands
	WriteTimeout   Duration `toml:"write_timeout"`
	MaxConnections int      `toml:"max_connections"` // per listener
	AuthTimeout    Duration `toml:"auth_timeout"`    // 587/465: time allowed before AUTH succeeds
	// What one account may submit (587/465) in any hour; 0 = no limit.
	SubmissionMessagesPerHour   int `toml:"submission_messages_per_hour"`
	SubmissionRecipientsPerHour int `toml:"submission_recipients_per_hour"`
	// MaxInflightData bounds the bytes of all messages being received or
	// delivered at once, on every listener (data_dir/spool holds what is
	// beyond a small buffer per message); over it DATA gets 451 4.3.1.
	MaxInflightData int64 `toml:"max_inflight_data"`
	// What one client may hold (see Security limits in README.md).
	MaxConnectionsIP int      `toml:"max_connections_per_ip"` // per client address (IPv6: /64) and listener; 0 = no limit
	MXSessionTimeout Duration `toml:"mx_session_timeout"`     // 25: a session's length, message transfers aside
	LineTimeout      Duration `toml:"line_timeout"`           // a command line, from its first byte
}

// Scan settings: engines and limits of the virus scanner.
type Scan struct {
	Builtin        bool     `toml:"builtin"`         // the built-in engine (EICAR + signature files)
	Signatures     string   `toml:"signatures"`      // signature directory; "" = data_dir/signatures
	ReloadInterval Duration `toml:"reload_interval"` // how often the signature directory is checked for changes
	Clamd          string   `toml:"clamd"`           // "unix:/path" or "tcp:host:port"; "" = no clamd
	ClamdTimeout   Duration `toml:"clamd_timeout"`
	MaxMessageSize int64    `toml:"max_message_size"` // larger: 552 5.2.3 on submission, "oversize" inbound
	MaxDepth       int      `toml:"max_depth"`        // archive nesting (VC03)
	MaxFileSize    int64    `toml:"max_file_size"`    // per extracted file (VC04)
	MaxTotalSize   int64    `toml:"max_total_size"`   // all extracted bytes per message (VC04)
	MaxEntries     int      `toml:"max_entries"`      // archive members per message (VC04)
}

// Notify settings: warning mails and the daily report.
type Notify struct {
	ReportTime   string `toml:"report_time"`   // HH:MM, local time, when daily reports go out
	QuotaWarning int    `toml:"quota_warning"` // percent of the quota that triggers the warning
}

// Web settings (the listener is listen.web).
type Web struct {
	SessionIdle   Duration `toml:"session_idle"`    // a web session not used for this long ends
	SessionMaxAge Duration `toml:"session_max_age"` // any web session ends this long after its login
}

// Auth settings shared by every protocol.
type Auth struct {
	AllowInsecure bool     `toml:"allow_insecure"` // dev only: AUTH before TLS
	MaxFailures   int      `toml:"max_failures"`
	FailureWindow Duration `toml:"failure_window"`
	Lockout       Duration `toml:"lockout"`
	FailureDelay  Duration `toml:"failure_delay"`
}

// Store settings.
type Store struct {
	DefaultQuota int64 `toml:"default_quota"` // bytes for new accounts; 0 = unlimited
	MaxMailboxes int   `toml:"max_mailboxes"` // per account, INBOX included; 0 = unlimited
	// Backend is where everything is kept: "bolt" (one file in data_dir,
	// the default) or "postgres" (PostgresURL, which several nodes may
	// share).
	Backend     string `toml:"backend"`
	PostgresURL string `toml:"postgres_url"`
}

// Log settings.
type Log struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// DNS describes this server for the records "yubin dns records" prints,
// and how inbound mail is checked (SPF, DKIM, DMARC).
type DNS struct {
	MXHost        string   `toml:"mx_host"`        // target of the MX and SRV records; "" = hostname
	IPv4          []string `toml:"ipv4"`           // this server's public IPv4 addresses (SPF ip4:, A record)
	IPv6          []string `toml:"ipv6"`           // ... and IPv6 addresses
	SPFInclude    []string `toml:"spf_include"`    // extra SPF include: domains (e.g. a relay provider's)
	DMARCPolicy   string   `toml:"dmarc_policy"`   // p= suggested in the DMARC record
	DMARCReport   string   `toml:"dmarc_report"`   // rua address; "" = the domain's admin account
	CheckInbound  bool     `toml:"check_inbound"`  // SPF, DKIM and DMARC on port 25
	Resolver      string   `toml:"resolver"`       // DNS server "host:port" for those checks; "" = the system's
	LookupTimeout Duration `toml:"lookup_timeout"` // all lookups for one message
}

// Outbound is delivery to other domains: the outbound queue.
type Outbound struct {
	SmartHost             string   `toml:"smart_host"`               // "host:port" to relay everything through; "" = the recipients' MX hosts
	SmartHostTLS          string   `toml:"smart_host_tls"`           // "starttls" (required), "tls" (implicit TLS, usually port 465), "opportunistic" or "none"
	SmartHostUser         string   `toml:"smart_host_user"`          // AUTH PLAIN user name; "" = no AUTH
	SmartHostPasswordFile string   `toml:"smart_host_password_file"` // file whose first line is the password
	SmartHostVerifyTLS    bool     `toml:"smart_host_verify_tls"`    // check the smart host's certificate
	VerifyTLS             bool     `toml:"verify_tls"`               // check MX hosts' certificates (off: opportunistic TLS)
	RetryFor              Duration `toml:"retry_for"`                // temporary failures are retried this long, then bounced
	RetryInitial          Duration `toml:"retry_initial"`            // first wait; doubles per attempt ...
	RetryMax              Duration `toml:"retry_max"`                // ... up to this
	ConnectTimeout        Duration `toml:"connect_timeout"`
	CommandTimeout        Duration `toml:"command_timeout"` // per SMTP command; the reply to the final dot gets twice this
	Concurrency           int      `toml:"concurrency"`     // destinations delivered at once
	// Lease is how long a queued message a node works on stays its own
	// without a renewal (renewed every third of it): on several nodes,
	// how soon another takes over the messages of a node that died.
	Lease Duration `toml:"lease"`
}

// MinLease is the shortest outbound.lease: renewals every second.
const MinLease = 3 * time.Second

// The values of outbound.smart_host_tls. Only the first two ever send
// mail to the smart host encrypted; the last two are for a smart host on
// a trusted network that cannot do TLS, and must be chosen explicitly.
const (
	SmartHostSTARTTLS      = "starttls"      // STARTTLS, required: no STARTTLS, no mail (the default)
	SmartHostImplicitTLS   = "tls"           // TLS from the first byte (port 465)
	SmartHostOpportunistic = "opportunistic" // STARTTLS when offered, else plain text
	SmartHostNoTLS         = "none"          // plain text, never STARTTLS
)

func (o *Outbound) validate() error {
	if o.SmartHost != "" {
		if _, _, err := net.SplitHostPort(o.SmartHost); err != nil {
			return fmt.Errorf("outbound.smart_host = %q: want host:port: %v", o.SmartHost, err)
		}
	}
	switch o.SmartHostTLS {
	case SmartHostSTARTTLS, SmartHostImplicitTLS, SmartHostOpportunistic, SmartHostNoTLS:
	default:
		return fmt.Errorf("outbound.smart_host_tls = %q: want starttls, tls, opportunistic or none", o.SmartHostTLS)
	}
	if (o.SmartHostUser == "") != (o.SmartHostPasswordFile == "") {
		return fmt.Errorf("outbound.smart_host_user and outbound.smart_host_password_file must be set together")
	}
	if o.SmartHostUser != "" && o.SmartHostTLS != SmartHostSTARTTLS && o.SmartHostTLS != SmartHostImplicitTLS {
		return fmt.Errorf("outbound.smart_host_user: the password is only ever sent over TLS, so outbound.smart_host_tls must be starttls or tls, not %q", o.SmartHostTLS)
	}
	for name, d := range map[string]Duration{"retry_for": o.RetryFor, "retry_initial": o.RetryInitial, "retry_max": o.RetryMax,
		"connect_timeout": o.ConnectTimeout, "command_timeout": o.CommandTimeout} {
		if d.Duration <= 0 {
			return fmt.Errorf("outbound.%s must be positive", name)
		}
	}
	if o.Concurrency <= 0 {
		return fmt.Errorf("outbound.concurrency must be positive")
	}
	if o.Lease.Duration < MinLease {
		return fmt.Errorf("outbound.lease = %s: must be at least %s (it is renewed every third of it)", o.Lease.Duration, MinLease)
	}
	return nil
}

// Duration is a time.Duration written as "5m", "30s".
type Duration struct{ time.Duration }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("negative duration %s", b)
	}
	d.Duration = v
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the built-in configuration: standard ports on all
// addresses, data in ./data.
func Default() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return Config{
		Hostname: host,
		DataDir:  "./data",
		Listen: Listen{
			SMTP:        "0.0.0.0:25",
			Submission:  "0.0.0.0:587",
			Submissions: "0.0.0.0:465",
			POP3:        "0.0.0.0:110",
			POP3S:       "0.0.0.0:995",
			IMAP:        "0.0.0.0:143",
			IMAPS:       "0.0.0.0:993",
			HTTP:        "off",
			Metrics:     "off",
			Web:         "0.0.0.0:8443",
		},
		TLS: TLS{ACMEDirectory: DefaultACMEDirectory, HandshakeTimeout: Duration{30 * time.Second}},
		IMAP: IMAP{IdleTimeout: Duration{30 * time.Minute}, MaxConnections: 1000, AppendLimit: 50 << 20, AppendBudget: 256 << 20, MaxUserIPConnections: 10,
			MaxConnectionsIP: 100, AuthTimeout: Duration{time.Minute}},
		POP3: POP3{IdleTimeout: Duration{10 * time.Minute}, MaxConnections: 500, MaxConnectionsIP: 50,
			AuthTimeout: Duration{time.Minute}, LineTimeout: Duration{time.Minute}},
		Scan: Scan{
			Builtin:        true,
			ReloadInterval: Duration{5 * time.Second},
			ClamdTimeout:   Duration{time.Minute},
			MaxMessageSize: 5 << 20,
			MaxDepth:       10,
			MaxFileSize:    100 << 20,
			MaxTotalSize:   200 << 20,
			MaxEntries:     10000,
		},
		SMTP: SMTP{
			MaxMessageSize:  50 << 20,
			MaxRecipients:   100,
			MaxLineLength:   64 << 10,
			ReadTimeout:     Duration{5 * time.Minute},
			WriteTimeout:    Duration{5 * time.Minute},
			MaxConnections:  500,
			AuthTimeout:     Duration{time.Minute},
			MaxInflightData: 256 << 20,

			SubmissionMessagesPerHour:   200,
			SubmissionRecipientsPerHour: 1000,

			MaxConnectionsIP: 50,
			MXSessionTimeout: Duration{10 * time.Minute},
			LineTimeout:      Duration{time.Minute},
		},
		Notify: Notify{ReportTime: "07:00", QuotaWarning: 90},
		Web:    Web{SessionIdle: Duration{30 * time.Minute}, SessionMaxAge: Duration{12 * time.Hour}},
		Auth: Auth{
			MaxFailures:   10,
			FailureWindow: Duration{15 * time.Minute},
			Lockout:       Duration{15 * time.Minute},
			FailureDelay:  Duration{500 * time.Millisecond},
		},
		Store: Store{DefaultQuota: 1 << 30, MaxMailboxes: 1000, Backend: "bolt"},
		Log:   Log{Level: "info", Format: "text"},
		DNS: DNS{
			IPv4: []string{}, IPv6: []string{}, SPFInclude: []string{},
			DMARCPolicy: "quarantine", CheckInbound: true, LookupTimeout: Duration{30 * time.Second},
		},
		Spam: Spam{DNSBL: []Blocklist{}, URIBL: []Blocklist{}, DNSBLTimeout: Duration{5 * time.Second},
			Enabled: true, QuarantineMaxMessages: 1000, QuarantineMaxSize: 100 << 20, TokenMaxAge: Duration{180 * 24 * time.Hour}},
		Outbound: Outbound{
			SmartHostTLS: SmartHostSTARTTLS, SmartHostVerifyTLS: true,
			RetryFor: Duration{24 * time.Hour}, RetryInitial: Duration{5 * time.Minute}, RetryMax: Duration{time.Hour},
			ConnectTimeout: Duration{30 * time.Second}, CommandTimeout: Duration{5 * time.Minute}, Concurrency: 16,
			Lease: Duration{2 * time.Minute},
		},
	}
}

// Load reads a config file over the defaults. Unknown keys are an error,
// so a typo does not silently fall back to a default.
func Load(path string) (Config, error) {
	c := Default()
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return c, fmt.Errorf("config %s: unknown key(s): %s", path, strings.Join(keys, ", "))
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Validate checks values that TOML types cannot.
func (c *Config) Validate() error {
	for name, a := range c.Listen.all() {
		if Off(*a) {
			continue
		}
		if _, _, err := net.SplitHostPort(*a); err != nil {
			return fmt.Errorf("%s = %q: want host:port (or \"off\"): %v", name, *a, err)
		}
	}
	if err := c.TLS.validate(&c.Listen); err != nil {
		return err
	}
	if c.SMTP.MaxMessageSize <= 0 || c.SMTP.MaxRecipients <= 0 {
		return fmt.Errorf("smtp.max_message_size and smtp.max_recipients must be positive")
	}
	if c.SMTP.MaxLineLength < 1000 || c.SMTP.MaxLineLength > MaxSMTPLineLength {
		// At most: a command line may be 64 KiB longer, and it is read
		// into memory before it is parsed.
		return fmt.Errorf("smtp.max_line_length must be at least 1000 (RFC 5321) and at most %d (1 MiB)", MaxSMTPLineLength)
	}
	if c.SMTP.SubmissionMessagesPerHour < 0 || c.SMTP.SubmissionRecipientsPerHour < 0 {
		return fmt.Errorf("smtp.submission_messages_per_hour and smtp.submission_recipients_per_hour cannot be negative (0 = no limit)")
	}
	if c.SMTP.MaxInflightData < c.SMTP.MaxMessageSize {
		return fmt.Errorf("smtp.max_inflight_data (%d) must be at least smtp.max_message_size (%d): a message of the largest size must fit", c.SMTP.MaxInflightData, c.SMTP.MaxMessageSize)
	}
	if c.Store.DefaultQuota < 0 {
		return fmt.Errorf("store.default_quota cannot be negative")
	}
	if c.Store.MaxMailboxes < 0 {
		return fmt.Errorf("store.max_mailboxes cannot be negative")
	}
	switch c.Store.Backend {
	case "", "bolt":
		if c.Store.PostgresURL != "" {
			return fmt.Errorf("store.postgres_url is set but store.backend is %q: set backend = \"postgres\" to use it", c.Store.Backend)
		}
	case "postgres":
		u := c.Store.PostgresURL
		if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
			return fmt.Errorf("store.backend = \"postgres\" needs store.postgres_url = \"postgres://user:password@host:5432/database\" (got %q)", redactURL(u))
		}
	default:
		return fmt.Errorf("store.backend must be \"bolt\" or \"postgres\", not %q", c.Store.Backend)
	}
	if !c.Scan.Builtin && c.Scan.Clamd == "" {
		return fmt.Errorf("scan: no engine (set scan.builtin = true or scan.clamd); mail is never accepted unscanned")
	}
	if c.Scan.MaxMessageSize <= 0 || c.Scan.MaxDepth <= 0 || c.Scan.MaxFileSize <= 0 || c.Scan.MaxTotalSize <= 0 || c.Scan.MaxEntries <= 0 {
		return fmt.Errorf("scan limits must be positive")
	}
	if c.Scan.Clamd != "" && !strings.HasPrefix(c.Scan.Clamd, "unix:") && !strings.HasPrefix(c.Scan.Clamd, "tcp:") {
		return fmt.Errorf("scan.clamd = %q: want unix:/path or tcp:host:port", c.Scan.Clamd)
	}
	if t, err := time.Parse("15:04", c.Notify.ReportTime); err != nil || t.Format("15:04") != c.Notify.ReportTime {
		return fmt.Errorf("notify.report_time = %q: want HH:MM", c.Notify.ReportTime)
	}
	if c.Notify.QuotaWarning < 1 || c.Notify.QuotaWarning > 100 {
		return fmt.Errorf("notify.quota_warning must be 1 to 100 (percent)")
	}
	if c.IMAP.IdleTimeout.Duration < 30*time.Minute {
		return fmt.Errorf("imap.idle_timeout must be at least 30m (RFC 3501)")
	}
	if c.IMAP.AppendLimit <= 0 {
		return fmt.Errorf("imap.append_limit must be positive")
	}
	if c.IMAP.AppendBudget < c.IMAP.AppendLimit {
		return fmt.Errorf("imap.append_budget (%d) must be at least imap.append_limit (%d): an APPEND of the largest size must fit", c.IMAP.AppendBudget, c.IMAP.AppendLimit)
	}
	if c.IMAP.MaxUserIPConnections < 0 {
		return fmt.Errorf("imap.max_userip_connections cannot be negative")
	}
	if c.POP3.IdleTimeout.Duration < 10*time.Minute {
		return fmt.Errorf("pop3.idle_timeout must be at least 10m (RFC 1939)")
	}
	if err := c.validateConnLimits(); err != nil {
		return err
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level = %q: want debug, info, warn or error", c.Log.Level)
	}
	switch strings.ToLower(c.Log.Format) {
	case "text", "json":
	default:
		return fmt.Errorf("log.format = %q: want text or json", c.Log.Format)
	}
	if err := c.DNS.validate(); err != nil {
		return err
	}
	if err := c.Spam.validate(); err != nil {
		return err
	}
	if err := c.Outbound.validate(); err != nil {
		return err
	}
	if c.Hostname == "" {
		return fmt.Errorf("hostname is empty")
	}
	return nil
}

// validateConnLimits checks what one client may hold: connections per
// address, and the deadlines on handshakes, logins and command lines.
func (c *Config) validateConnLimits() error {
	for name, n := range map[string]int{"smtp.max_connections_per_ip": c.SMTP.MaxConnectionsIP,
		"pop3.max_connections_per_ip": c.POP3.MaxConnectionsIP, "imap.max_connections_per_ip": c.IMAP.MaxConnectionsIP} {
		if n < 0 {
			return fmt.Errorf("%s cannot be negative (0 = no limit)", name)
		}
	}
	for name, d := range map[string]Duration{"tls.handshake_timeout": c.TLS.HandshakeTimeout,
		"smtp.auth_timeout": c.SMTP.AuthTimeout, "smtp.mx_session_timeout": c.SMTP.MXSessionTimeout, "smtp.line_timeout": c.SMTP.LineTimeout,
		"pop3.auth_timeout": c.POP3.AuthTimeout, "pop3.line_timeout": c.POP3.LineTimeout, "imap.auth_timeout": c.IMAP.AuthTimeout,
		"web.session_idle": c.Web.SessionIdle, "web.session_max_age": c.Web.SessionMaxAge} {
		if d.Duration <= 0 {
			return fmt.Errorf("%s must be positive", name)
		}
	}
	return nil
}

// all returns every listen address by its config key.
func (l *Listen) all() map[string]*string {
	return map[string]*string{
		"listen.smtp": &l.SMTP, "listen.submission": &l.Submission, "listen.submissions": &l.Submissions,
		"listen.pop3": &l.POP3, "listen.pop3s": &l.POP3S,
		"listen.imap": &l.IMAP, "listen.imaps": &l.IMAPS,
		"listen.http": &l.HTTP, "listen.metrics": &l.Metrics,
		"listen.web": &l.Web,
	}
}

// Off reports whether a listen address means "switched off".
func Off(addr string) bool { return addr == "" || strings.EqualFold(addr, "off") }

// ShiftPorts adds delta to every listen port (the embedded default does
// this when not running as root, so 25 becomes 10025).
func (c *Config) ShiftPorts(delta int) error {
	for _, p := range c.Listen.all() {
		if Off(*p) {
			continue
		}
		h, port, err := net.SplitHostPort(*p)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(port)
		if err != nil {
			return fmt.Errorf("port %q: %v", port, err)
		}
		*p = net.JoinHostPort(h, strconv.Itoa(n+delta))
	}
	return nil
}

// StorePath is the bbolt file in the data dir.

// SignatureDir is the built-in engine's signature directory.
func (c *Config) SignatureDir() string {
	if c.Scan.Signatures != "" {
		return c.Scan.Signatures
	}
	return filepath.Join(c.DataDir, "signatures")
}

// TLSDir is where the self-signed certificate is kept.
func (c *Config) TLSDir() string { return filepath.Join(c.DataDir, "tls") }

// ACMEDir is where the ACME account key and certificates are kept.
func (c *Config) ACMEDir() string { return filepath.Join(c.DataDir, "acme") }

// ACMEHosts are the names certificates are requested for with tls.acme:
// hostname, and dns.mx_host when set.
func (c *Config) ACMEHosts() []string {
	hosts := []string{c.Hostname}
	if c.DNS.MXHost != "" && !strings.EqualFold(c.DNS.MXHost, c.Hostname) {
		hosts = append(hosts, c.DNS.MXHost)
	}
	return hosts
}

// ControlSocket is the admin control socket in the data dir.
func (c *Config) ControlSocket() string { return filepath.Join(c.DataDir, "control.sock") }

// SpoolDir is where SMTP DATA beyond a small buffer waits while it is
// received and delivered.
func (c *Config) SpoolDir() string { return filepath.Join(c.DataDir, "spool") }

// IMAPSpoolDir is where IMAP APPEND literals beyond a small buffer wait
// while they are received and stored.
func (c *Config) IMAPSpoolDir() string { return filepath.Join(c.SpoolDir(), "imap") }

// Example is a complete, commented configuration file.
//
//go:embed example.toml
var Example string

func (d *DNS) validate() error {
	for _, a := range d.IPv4 {
		if ip := net.ParseIP(a); ip == nil || ip.To4() == nil {
			return fmt.Errorf("dns.ipv4: %q is not an IPv4 address", a)
		}
	}
	for _, a := range d.IPv6 {
		if ip := net.ParseIP(a); ip == nil || ip.To4() != nil {
			return fmt.Errorf("dns.ipv6: %q is not an IPv6 address", a)
		}
	}
	switch d.DMARCPolicy {
	case "none", "quarantine", "reject":
	default:
		return fmt.Errorf("dns.dmarc_policy = %q: want none, quarantine or reject", d.DMARCPolicy)
	}
	if d.DMARCReport != "" && !strings.Contains(d.DMARCReport, "@") {
		return fmt.Errorf("dns.dmarc_report = %q: want an address", d.DMARCReport)
	}
	if d.LookupTimeout.Duration <= 0 {
		return fmt.Errorf("dns.lookup_timeout must be positive")
	}
	return nil
}

// redactURL hides the password of a connection URL, for messages and logs.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

// StoreDescription says where the store is, for logs: the bbolt file in the
// data dir, or the PostgreSQL database (without its password).
func (c *Config) StoreDescription() string {
	if c.Store.Backend == "postgres" {
		return "postgres " + redactURL(c.Store.PostgresURL)
	}
	return filepath.Join(c.DataDir, "yubin.db")
}
