package admin

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"

	"yubin/store"
)

// The operations. Each is defined once, as an entry of the table below:
// its name on the wire, its request and response types, and the Service
// method that performs it (where validation happens). From that entry the
// control socket decodes a request into the op's own request type and
// runs it, and Do runs it on any API — a *Service directly, or a *Client
// through the running server's socket — typed both ways.
//
// Adding an operation is writing its Service method and one entry:
//
//	OpAccountShow = touching("account.show", account, (*Service).Account)
//
// (noRequest and noResult adapt methods without an argument or a result;
// a method with several arguments gets a request struct and a closure.)

// Op is one administration operation: a request of type Req answered with
// a Resp. The operations are this package's Op* variables; run one with Do.
type Op[Req, Resp any] struct {
	name string
	run  func(s *Service, ctx context.Context, req Req) (Resp, error)
	// touches says what a request touches, for a caller with a scope
	// (see scope.go); nil: the op is the owner's only. scoped: the op
	// checks the scope itself (its request carries one).
	touches func(Req) target
	scoped  bool
}

// call checks the context's scope against the request, then runs the op.
func (o Op[Req, Resp]) call(s *Service, ctx context.Context, req Req) (Resp, error) {
	var zero Resp
	if sc := ScopeFrom(ctx); !sc.IsOwner() && !o.scoped {
		if o.touches == nil {
			return zero, errorf(ErrDenied, "%s is for the server's owner", o.name)
		}
		if err := s.authorize(ctx, sc, o.name, o.touches(req)); err != nil {
			return zero, err
		}
	}
	return o.run(s, ctx, req)
}

// Name returns the operation's name on the wire ("account.add").
func (o Op[Req, Resp]) Name() string { return o.name }

// None is the request of an operation without arguments and the response
// of one without a result.
type None = struct{}

// Do performs o with req on api: on the store when api is a *Service,
// through the server's control socket when it is a *Client.
func Do[Req, Resp any](ctx context.Context, api API, o Op[Req, Resp], req Req) (Resp, error) {
	var resp Resp
	err := api.perform(ctx, o.name, req, &resp, func(s *Service) (err error) {
		resp, err = o.call(s, ctx, req)
		return err
	})
	return resp, err
}

// perform implements API: the Service runs the operation itself.
func (s *Service) perform(_ context.Context, _ string, _, _ any, local func(*Service) error) error {
	return local(s)
}

// StreamOp is an operation that writes a stream of bytes (a backup) before
// its answer: a request of type Req, the bytes, a Resp. Run one with
// DoStream. Through the control socket the bytes come in frames before
// the answer line (see control.go).
type StreamOp[Req, Resp any] struct {
	name string
	run  func(s *Service, ctx context.Context, req Req, w io.Writer) (Resp, error)
}

// Name returns the operation's name on the wire ("backup").
func (o StreamOp[Req, Resp]) Name() string { return o.name }

// DoStream performs o with req on api, writing its bytes to w as they
// come: on the store when api is a *Service, through the server's control
// socket when it is a *Client.
func DoStream[Req, Resp any](ctx context.Context, api API, o StreamOp[Req, Resp], req Req, w io.Writer) (Resp, error) {
	var resp Resp
	err := api.performStream(ctx, o.name, req, &resp, w, func(s *Service) (err error) {
		resp, err = o.run(s, ctx, req, w)
		return err
	})
	return resp, err
}

// performStream implements API: the Service runs the operation itself.
func (s *Service) performStream(_ context.Context, _ string, _, _ any, _ io.Writer, local func(*Service) error) error {
	return local(s)
}

func (o StreamOp[Req, Resp]) serve(context.Context, *Service, json.RawMessage) (any, error) {
	return nil, errorf(store.ErrInvalid, "control socket: %s streams its answer (use DoStream)", o.name)
}

func (o StreamOp[Req, Resp]) serveStream(ctx context.Context, s *Service, raw json.RawMessage, w io.Writer) (any, error) {
	var req Req
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, errorf(store.ErrInvalid, "control socket: malformed %s request: %v", o.name, err)
	}
	return o.run(s, ctx, req, w)
}

// newStreamOp defines a stream operation and enters it in the table.
func newStreamOp[Req, Resp any](name string, run func(*Service, context.Context, Req, io.Writer) (Resp, error)) StreamOp[Req, Resp] {
	if _, dup := ops[name]; dup {
		panic("admin: two operations named " + name)
	}
	o := StreamOp[Req, Resp]{name: name, run: run}
	ops[name] = o
	return o
}

// handler is an Op with its types erased, as the control socket needs it.
type handler interface {
	// serve decodes a request for the op and runs it on s.
	serve(ctx context.Context, s *Service, req json.RawMessage) (any, error)
}

func (o Op[Req, Resp]) serve(ctx context.Context, s *Service, raw json.RawMessage) (any, error) {
	var req Req
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, errorf(store.ErrInvalid, "control socket: malformed %s request: %v", o.name, err)
	}
	return o.call(s, ctx, req)
}

// streamHandler is a StreamOp with its types erased.
type streamHandler interface {
	handler
	// serveStream decodes a request for the op and runs it on s,
	// writing its bytes to w.
	serveStream(ctx context.Context, s *Service, req json.RawMessage, w io.Writer) (any, error)
}

// ops is the table of operations by name; newOp and newStreamOp fill it.
var ops = map[string]handler{}

// newOp defines an operation and enters it in the table.
func newOp[Req, Resp any](name string, run func(*Service, context.Context, Req) (Resp, error)) Op[Req, Resp] {
	if _, dup := ops[name]; dup {
		panic("admin: two operations named " + name)
	}
	o := Op[Req, Resp]{name: name, run: run}
	ops[name] = o
	return o
}

// touching defines an operation open to scoped callers for what
// touches says its request touches, and enters it in the table.
func touching[Req, Resp any](name string, touches func(Req) target, run func(*Service, context.Context, Req) (Resp, error)) Op[Req, Resp] {
	o := newOp(name, run)
	o.touches = touches
	ops[name] = o
	return o
}

// selfScoped defines an operation whose request carries a Scope that it
// checks itself (within the context's: requestScope).
func selfScoped[Req, Resp any](name string, run func(*Service, context.Context, Req) (Resp, error)) Op[Req, Resp] {
	o := newOp(name, run)
	o.scoped = true
	ops[name] = o
	return o
}

// Targets for touching: the request is the address or domain itself.
func account(addr string) target { return onAccount(addr) }
func managed(addr string) target { return onManaged(addr) }
func domain(d string) target     { return onDomain(d) }

// domainPart is what follows the last @ of addr (all of it without one).
func domainPart(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }

// noRequest adapts a Service method that takes no argument.
func noRequest[Resp any](m func(*Service, context.Context) (Resp, error)) func(*Service, context.Context, None) (Resp, error) {
	return func(s *Service, ctx context.Context, _ None) (Resp, error) { return m(s, ctx) }
}

// noResult adapts a Service method that returns only an error.
func noResult[Req any](m func(*Service, context.Context, Req) error) func(*Service, context.Context, Req) (None, error) {
	return func(s *Service, ctx context.Context, req Req) (None, error) { return None{}, m(s, ctx, req) }
}

// Requests of the operations whose method takes several arguments.
type (
	// NewDomain is the request of OpDomainAdd.
	NewDomain struct {
		Name   string `json:"name"`
		Parent string `json:"parent,omitempty"` // "" = a parent domain
	}
	// PasswordChange is the request of OpAccountPasswd.
	PasswordChange struct {
		Address  string `json:"address"`
		Password string `json:"password"` // clear text
	}
	// RoleChange is the request of OpAccountRole.
	RoleChange struct {
		Address string `json:"address"`
		Role    string `json:"role"` // admin or user
	}
	// QuotaChange is the request of OpAccountQuota.
	QuotaChange struct {
		Address string `json:"address"`
		Quota   int64  `json:"quota"` // bytes, 0 = unlimited
	}
	// ScanPolicyChange is the request of OpScanPolicy.
	ScanPolicyChange struct {
		Address string           `json:"address"`
		Change  store.ScanPolicy `json:"change"` // the fields to change; empty ones stay
	}
	// SettingsUpdate is the request of OpSettingsUpdate.
	SettingsUpdate struct {
		Domain string         `json:"domain"`
		Change SettingsChange `json:"change"`
	}
	// QueueSelection is the request of OpQueueRetry and OpQueueDrop:
	// queue ids, or all of them.
	QueueSelection struct {
		IDs []string `json:"ids,omitempty"`
		All bool     `json:"all,omitempty"`
	}
)

// pong is the answer to a ping.
type pong struct {
	PID int `json:"pid"`
}

// The table. A string request is the one argument of the method: a domain
// name, an address or a queue id.
var (
	// opPing checks that a server answers (Client.Ping).
	opPing = newOp("ping", func(*Service, context.Context, None) (pong, error) { return pong{PID: os.Getpid()}, nil })

	// OpDomainAdd adds a parent domain, or a child of Parent when set.
	OpDomainAdd = newOp("domain.add", func(s *Service, ctx context.Context, r NewDomain) (Domain, error) {
		return s.AddDomain(ctx, r.Name, r.Parent)
	})
	// OpDomainList lists every domain, sorted by name.
	OpDomainList = newOp("domain.list", noRequest((*Service).Domains))
	// OpDomainShow returns a domain with its children and its number of
	// accounts.
	OpDomainShow = touching("domain.show", domain, (*Service).Domain)
	// OpDomainRemove removes a domain without accounts and child domains.
	OpDomainRemove = newOp("domain.remove", noResult((*Service).RemoveDomain))

	// OpAccountAdd creates an account (with its default mailboxes).
	OpAccountAdd = touching("account.add", func(r NewAccount) target { return domain(domainPart(r.Address)) }, (*Service).AddAccount)
	// OpAccountPasswd replaces an account's password.
	OpAccountPasswd = touching("account.passwd", func(r PasswordChange) target { return account(r.Address) }, func(s *Service, ctx context.Context, r PasswordChange) (None, error) {
		return None{}, s.SetPassword(ctx, r.Address, r.Password)
	})
	// OpAccountQuota sets an account's quota.
	OpAccountQuota = touching("account.quota", func(r QuotaChange) target { return managed(r.Address) }, func(s *Service, ctx context.Context, r QuotaChange) (Account, error) {
		return s.SetQuota(ctx, r.Address, r.Quota)
	})
	// OpAccountRole sets an account's role.
	OpAccountRole = touching("account.role", func(r RoleChange) target { return managed(r.Address) }, func(s *Service, ctx context.Context, r RoleChange) (Account, error) {
		return s.SetRole(ctx, r.Address, r.Role)
	})
	// OpAccountList lists the accounts of a domain, or all for "".
	OpAccountList = touching("account.list", domain, (*Service).Accounts)
	// OpAccountShow returns an account with its mailboxes.
	OpAccountShow = touching("account.show", account, (*Service).Account)
	// OpAccountRemove deletes an account and all its mail.
	OpAccountRemove = touching("account.remove", managed, noResult((*Service).RemoveAccount))

	// OpScanShow returns an account's inbound scanning policy.
	OpScanShow = touching("scan.show", account, (*Service).ScanPolicy)
	// OpScanPolicy changes the fields of an account's inbound scanning
	// policy that are set in the change.
	OpScanPolicy = touching("scan.policy", func(r ScanPolicyChange) target { return managed(r.Address) }, func(s *Service, ctx context.Context, r ScanPolicyChange) (ScanPolicy, error) {
		return s.SetScanPolicy(ctx, r.Address, r.Change)
	})

	// OpScanStops lists what scanning stopped that concerned an account.
	OpScanStops = touching("scan.stops", func(r StopsQuery) target { return account(r.Address) }, (*Service).ScanStops)

	// OpSettingsShow returns a parent domain's settings (warning mails,
	// daily report, spam reject score).
	OpSettingsShow = touching("settings.show", domain, (*Service).DomainSettings)
	// OpSettingsUpdate changes them.
	OpSettingsUpdate = touching("settings.update", func(r SettingsUpdate) target { return domain(r.Domain) }, func(s *Service, ctx context.Context, r SettingsUpdate) (DomainSettings, error) {
		return s.UpdateDomainSettings(ctx, r.Domain, r.Change)
	})
	// OpReportSend sends a domain's daily report now.
	OpReportSend = touching("report.send", domain, (*Service).SendReport)

	// OpDKIMKeys returns the public side of a domain's DKIM keys,
	// generating the keys on first use.
	OpDKIMKeys = touching("dkim.keys", domain, (*Service).DKIMKeys)

	// OpDNSRecords returns the DNS records to publish for a domain and
	// its children ("" = every domain).
	OpDNSRecords = touching("dns.records", domain, (*Service).DNSRecords)
	// OpDNSCheck looks them up and says which are published.
	OpDNSCheck = touching("dns.check", func(r DNSCheckRequest) target { return domain(r.Domain) }, (*Service).DNSCheck)

	// OpForwardShow returns an account's forwarding rule.
	OpForwardShow = touching("forward.show", account, (*Service).Forward)
	// OpForwardSet replaces the forwarding rule of the account that
	// receives the request's Address.
	OpForwardSet = touching("forward.set", func(r Forwarding) target { return account(r.Address) }, func(s *Service, ctx context.Context, r Forwarding) (Forwarding, error) {
		return s.SetForward(ctx, r.Address, r.Targets, r.KeepCopy)
	})
	// OpForwardClear stops an account's forwarding.
	OpForwardClear = touching("forward.clear", account, noResult((*Service).ClearForward))

	// OpSpamShow returns an account's spam filter policy and the state of
	// the models that score its mail.
	OpSpamShow = touching("spam.show", account, (*Service).SpamShow)
	// OpSpamPolicy changes the fields of an account's spam filter policy
	// that are set in the change.
	OpSpamPolicy = touching("spam.policy", func(r SpamPolicyChange) target { return account(r.Address) }, (*Service).SetSpamPolicy)
	// OpSpamTrain trains a domain's spam model with a batch of messages'
	// tokens.
	OpSpamTrain = newOp("spam.train", (*Service).TrainSpam)

	// OpQuarantineList lists the held mail of an account or a domain,
	// within the request's scope.
	OpQuarantineList = selfScoped("quarantine.list", (*Service).Quarantined)
	// OpQuarantineShow returns a held message as plain text.
	OpQuarantineShow = selfScoped("quarantine.show", (*Service).QuarantineShow)
	// OpQuarantineRelease delivers held messages to INBOX and learns them
	// as ham.
	OpQuarantineRelease = selfScoped("quarantine.release", (*Service).QuarantineRelease)
	// OpQuarantineDelete deletes held messages and returns how many.
	OpQuarantineDelete = selfScoped("quarantine.delete", (*Service).QuarantineDelete)

	// OpStatus reports on the server (or, without one, the data dir): its
	// listeners, version and uptime, the queue, the store's size, the
	// certificates, clamd, the daily reports.
	OpStatus = newOp("status", noRequest((*Service).Status))
	// OpBackup writes a consistent snapshot of the whole store (see
	// store.Backups) while the server goes on; its answer describes it.
	// WriteBackup makes a backup file of it.
	OpBackup = newStreamOp("backup", func(s *Service, ctx context.Context, _ None, w io.Writer) (store.BackupInfo, error) {
		return s.Backup(ctx, w)
	})
	// OpBackupRecord records the latest backup made.
	OpBackupRecord = newOp("backup.record", noResult((*Service).RecordBackup))
	// OpBackupLast returns the latest backup recorded (Time zero: none):
	// for "yubin status".
	OpBackupLast = newOp("backup.last", noRequest((*Service).LastBackup))
	// OpImportStart looks up the account an import fills and makes the
	// mailboxes it needs.
	OpImportStart = newOp("import.start", (*Service).ImportStart)
	// OpImportCheck reports which import keys are in the account already.
	OpImportCheck = newOp("import.check", (*Service).ImportCheck)
	// OpImportBatch stores a batch of imported messages, each at most
	// once per key.
	OpImportBatch = newOp("import.batch", (*Service).ImportBatch)

	// OpQueueList lists the outbound queue.
	OpQueueList = newOp("queue.list", noRequest((*Service).Queue))
	// OpQueueShow returns one queue entry with its message's headers.
	OpQueueShow = newOp("queue.show", (*Service).QueueShow)
	// OpQueueRetry makes entries due now and returns how many.
	OpQueueRetry = newOp("queue.retry", func(s *Service, ctx context.Context, r QueueSelection) (int, error) {
		return s.QueueRetry(ctx, r.IDs, r.All)
	})
	// OpQueueDrop deletes entries without a bounce and returns how many.
	OpQueueDrop = newOp("queue.drop", func(s *Service, ctx context.Context, r QueueSelection) (int, error) {
		return s.QueueDrop(ctx, r.IDs, r.All)
	})
)
