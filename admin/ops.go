package admin

import (
	"context"
	"encoding/json"
	"io"
	"os"

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
//	OpAccountShow = newOp("account.show", (*Service).Account)
//
// (noRequest and noResult adapt methods without an argument or a result;
// a method with several arguments gets a request struct and a closure.)

// Op is one administration operation: a request of type Req answered with
// a Resp. The operations are this package's Op* variables; run one with Do.
type Op[Req, Resp any] struct {
	name string
	run  func(s *Service, ctx context.Context, req Req) (Resp, error)
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
		resp, err = o.run(s, ctx, req)
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
	return o.run(s, ctx, req)
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
	// OpDomainRemove removes a domain without accounts and child domains.
	OpDomainRemove = newOp("domain.remove", noResult((*Service).RemoveDomain))

	// OpAccountAdd creates an account (with its default mailboxes).
	OpAccountAdd = newOp("account.add", (*Service).AddAccount)
	// OpAccountPasswd replaces an account's password.
	OpAccountPasswd = newOp("account.passwd", func(s *Service, ctx context.Context, r PasswordChange) (None, error) {
		return None{}, s.SetPassword(ctx, r.Address, r.Password)
	})
	// OpAccountQuota sets an account's quota.
	OpAccountQuota = newOp("account.quota", func(s *Service, ctx context.Context, r QuotaChange) (Account, error) {
		return s.SetQuota(ctx, r.Address, r.Quota)
	})
	// OpAccountList lists the accounts of a domain, or all for "".
	OpAccountList = newOp("account.list", (*Service).Accounts)
	// OpAccountShow returns an account with its mailboxes.
	OpAccountShow = newOp("account.show", (*Service).Account)
	// OpAccountRemove deletes an account and all its mail.
	OpAccountRemove = newOp("account.remove", noResult((*Service).RemoveAccount))

	// OpScanShow returns an account's inbound scanning policy.
	OpScanShow = newOp("scan.show", (*Service).ScanPolicy)
	// OpScanPolicy changes the fields of an account's inbound scanning
	// policy that are set in the change.
	OpScanPolicy = newOp("scan.policy", func(s *Service, ctx context.Context, r ScanPolicyChange) (ScanPolicy, error) {
		return s.SetScanPolicy(ctx, r.Address, r.Change)
	})

	// OpSettingsShow returns a parent domain's settings (warning mails,
	// daily report, spam reject score).
	OpSettingsShow = newOp("settings.show", (*Service).DomainSettings)
	// OpSettingsUpdate changes them.
	OpSettingsUpdate = newOp("settings.update", func(s *Service, ctx context.Context, r SettingsUpdate) (DomainSettings, error) {
		return s.UpdateDomainSettings(ctx, r.Domain, r.Change)
	})
	// OpReportSend sends a domain's daily report now.
	OpReportSend = newOp("report.send", (*Service).SendReport)

	// OpDKIMKeys returns the public side of a domain's DKIM keys,
	// generating the keys on first use.
	OpDKIMKeys = newOp("dkim.keys", (*Service).DKIMKeys)

	// OpForwardShow returns an account's forwarding rule.
	OpForwardShow = newOp("forward.show", (*Service).Forward)
	// OpForwardSet replaces the forwarding rule of the account that
	// receives the request's Address.
	OpForwardSet = newOp("forward.set", func(s *Service, ctx context.Context, r Forwarding) (Forwarding, error) {
		return s.SetForward(ctx, r.Address, r.Targets, r.KeepCopy)
	})
	// OpForwardClear stops an account's forwarding.
	OpForwardClear = newOp("forward.clear", noResult((*Service).ClearForward))

	// OpSpamShow returns an account's spam filter policy and the state of
	// the models that score its mail.
	OpSpamShow = newOp("spam.show", (*Service).SpamShow)
	// OpSpamPolicy changes the fields of an account's spam filter policy
	// that are set in the change.
	OpSpamPolicy = newOp("spam.policy", (*Service).SetSpamPolicy)
	// OpSpamTrain trains a domain's spam model with a batch of messages'
	// tokens.
	OpSpamTrain = newOp("spam.train", (*Service).TrainSpam)

	// OpQuarantineList lists the held mail of an account or a domain,
	// within the request's scope.
	OpQuarantineList = newOp("quarantine.list", (*Service).Quarantined)
	// OpQuarantineShow returns a held message as plain text.
	OpQuarantineShow = newOp("quarantine.show", (*Service).QuarantineShow)
	// OpQuarantineRelease delivers held messages to INBOX and learns them
	// as ham.
	OpQuarantineRelease = newOp("quarantine.release", (*Service).QuarantineRelease)
	// OpQuarantineDelete deletes held messages and returns how many.
	OpQuarantineDelete = newOp("quarantine.delete", (*Service).QuarantineDelete)

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
