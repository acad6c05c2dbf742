// Package store defines what Yubin keeps — domains, accounts, mailboxes,
// messages, the outbound queue, settings — as plain types, and the small
// interfaces through which each part of the server reaches it. The
// interfaces speak mail (deliver, list, read, set flags, expunge, quota,
// lease a queue entry, follow changes), never buckets, transactions or files.
//
// Backends live beneath: store/bolt (bbolt, the embedded default) is the
// only one today, and every backend must pass store/storetest. Each
// consumer holds the narrowest interface it needs:
//
//	Directory   domains and accounts, read only      auth, smtpd, notify, forward
//	Maildrop    one mailbox read and expunged         pop3d
//	Mail        mailboxes and messages of an account  imapd
//	Inbound     the delivery path's writes            delivery, notify
//	Queue       the outbound queue                    forward/queue
//	Settings    per-domain and per-account settings   admin, notify, forward, dkimkey
//	SpamModel   the spam filter's token counts        delivery (spam stage), spam.Trainer
//	Quarantine  mail the spam filter holds            spam.Trainer, admin
//	Admin       everything an administrator changes   admin
//	Backups     snapshots while running, last backup  admin (yubin backup, status)
//	Importer    mail brought in, once per source key  admin (yubin import)
//	Transfer    the rest of the state, listed/loaded  yubin store copy
//
// Promises every backend keeps: every method is safe for concurrent use; a
// write that returns without error is durable; UIDs are never reused within
// a UIDVALIDITY; an account's usage is exactly the sum of the sizes of its
// messages; the change feed delivers an account's events in commit order.
//
// Mod-sequences (IMAP CONDSTORE and QRESYNC, RFC 7162): every change to a
// mailbox's messages — a new message (delivery, APPEND, the destination of
// COPY and MOVE), a flag change that changes flags, an expunge (the source
// of MOVE too) — takes a mod-sequence of its own, above every one before it
// in the mailbox, and never going back (across restarts too) while the
// mailbox keeps its UIDVALIDITY. A message's ModSeq is that of its last
// change, the mailbox's HighestModSeq that of its latest, and each event of
// the change feed carries its change's.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"yubin/internal/mailheader"
)

// Errors returned by the store. Callers test them with errors.Is.
var (
	ErrNoSuchDomain  = errors.New("no such domain")
	ErrNoSuchAccount = errors.New("no such account")
	ErrNoSuchMailbox = errors.New("no such mailbox")
	ErrNoSuchMessage = errors.New("no such message")
	ErrExists        = errors.New("already exists")
	ErrInvalid       = errors.New("invalid request")
	ErrInUse         = errors.New("the store is in use by a running server")
	ErrClosed        = errors.New("store is closed")
	// ErrLimit is returned when a request would go over one of the
	// store's limits, such as the number of mailboxes of an account.
	ErrLimit = errors.New("limit reached")
)

// QuotaError says a message does not fit into an account's quota.
type QuotaError struct {
	Account string
	Quota   int64
	Used    int64
	Need    int64
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("mailbox of %s is full: %d of %d bytes used, %d more needed", e.Account, e.Used, e.Quota, e.Need)
}

// Stats counts a backend's write work since it was opened.
type Stats struct {
	Commits    int64 // durable write transactions
	Deliveries int64 // deliveries and appends committed
}

// Directory looks up domains and accounts.
type Directory interface {
	Domains(ctx context.Context) ([]Domain, error)
	Domain(ctx context.Context, name string) (Domain, error)
	// IsLocalDomain reports whether d is one of ours (parent or child).
	IsLocalDomain(ctx context.Context, d string) bool
	// Resolve maps an address to the account that receives its mail
	// (the address itself, or for a child domain the parent's account).
	Resolve(ctx context.Context, addr string) (string, error)
	Account(ctx context.Context, addr string) (Account, error)
	Accounts(ctx context.Context, domain string) ([]Account, error)
}

// Maildrop is what POP3 does with an account's INBOX.
type Maildrop interface {
	Messages(ctx context.Context, account, mailbox string) ([]MessageInfo, Mailbox, error)
	OpenMessage(ctx context.Context, account, mailbox string, uid uint32) (io.ReadCloser, MessageInfo, error)
	Expunge(ctx context.Context, account, mailbox string, uids []uint32) ([]uint32, error)
}

// Mail is an account's mailboxes and messages, as IMAP sees them.
type Mail interface {
	Maildrop
	Account(ctx context.Context, addr string) (Account, error)
	Mailboxes(ctx context.Context, account string) ([]Mailbox, error)
	Mailbox(ctx context.Context, account, name string) (Mailbox, error)
	CreateMailbox(ctx context.Context, account, name string) (Mailbox, error)
	DeleteMailbox(ctx context.Context, account, name string) error
	RenameMailbox(ctx context.Context, account, oldName, newName string) error
	// Subscriptions returns the names an account subscribes to (IMAP
	// SUBSCRIBE, RFC 3501 6.3.6), INBOX first, then sorted. They are names,
	// not mailboxes: creating a mailbox does not subscribe it, and
	// deleting or renaming one does not change the subscriptions, so some
	// may name no mailbox. A new account subscribes to its default
	// mailboxes.
	Subscriptions(ctx context.Context, account string) ([]string, error)
	// SetSubscribed adds a name to an account's subscriptions or removes
	// it. Subscribing needs the mailbox to exist (ErrNoSuchMailbox) and
	// room among a bounded number of names (ErrLimit); unsubscribing
	// succeeds for any name, subscribed or not, mailbox or not. INBOX in
	// any case is INBOX, and a trailing separator is ignored.
	SetSubscribed(ctx context.Context, account, name string, subscribed bool) error
	MessagesByUID(ctx context.Context, account, mailbox string, uids []uint32) ([]MessageInfo, Mailbox, error)
	ReadMessage(ctx context.Context, account, mailbox string, uid uint32) ([]byte, error)
	// Summaries returns the header summaries (IMAP ENVELOPE) of messages,
	// in the order asked; a UID that does not exist gets a zero Summary.
	Summaries(ctx context.Context, account, mailbox string, uids []uint32) ([]mailheader.Summary, error)
	// SetFlags changes the flags of messages and returns them as they are
	// afterwards, in the order asked; a UID that does not exist is skipped,
	// one asked twice counts once. A message whose flags change takes a new
	// ModSeq; one that already had them keeps its own (and has no event).
	SetFlags(ctx context.Context, account, mailbox string, uids []uint32, op FlagOp, flags []string) ([]MessageInfo, error)
	// SetFlagsIf is SetFlags on the messages whose ModSeq is at most
	// unchangedSince (IMAP STORE UNCHANGEDSINCE, RFC 7162 3.1.3), checked
	// and done in one transaction: changed holds the messages that passed,
	// as SetFlags returns them; failed the UIDs of those that did not, in
	// the order asked, untouched. unchangedSince 0 fails every message.
	SetFlagsIf(ctx context.Context, account, mailbox string, uids []uint32, op FlagOp, flags []string, unchangedSince uint64) (changed []MessageInfo, failed []uint32, err error)
	// Expunged returns the UIDs expunged from a mailbox with a mod-sequence
	// above sinceModSeq, ascending (QRESYNC's VANISHED, RFC 7162 3.2.5.1).
	// A mailbox remembers its expunges for a while only (how long is the
	// backend's: see its options); asked about expunges it no longer
	// remembers all of, it returns every UID below UIDNEXT that is not in the
	// mailbox. So it may name UIDs that never were there (RFC 7162 allows
	// that), but never one that is, and never leaves out one expunged after
	// sinceModSeq.
	Expunged(ctx context.Context, account, mailbox string, sinceModSeq uint64) ([]uint32, error)
	// ClaimRecent claims a mailbox's recent messages (\Recent, RFC 3501
	// 2.3.2) for the caller's session, in one transaction: it returns the
	// mailbox's FirstRecent before the claim, and the mailbox after it
	// (FirstRecent moved to UIDNext). The messages with UIDs from
	// firstRecent up to mbox.UIDNext are recent in the caller's session and
	// in no other; those that come later are recent to the next claimer.
	ClaimRecent(ctx context.Context, account, mailbox string) (firstRecent uint32, mbox Mailbox, err error)
	CopyMessages(ctx context.Context, account, src, dst string, uids []uint32) (CopyResult, error)
	MoveMessages(ctx context.Context, account, src, dst string, uids []uint32) (CopyResult, error)
	// Deliver stores one message (IMAP APPEND, warning mails).
	Deliver(ctx context.Context, d Delivery) ([]Delivered, error)
	Changes
}

// Changes is the change feed: every committed change to an account's
// mailboxes, in commit order.
type Changes interface {
	Subscribe(ctx context.Context, account string, buffer int) *Subscription
}

// Inbound is what the delivery path writes.
type Inbound interface {
	Deliver(ctx context.Context, d Delivery) ([]Delivered, error)
	// DeliverBatch stores several deliveries in one transaction: all or none.
	DeliverBatch(ctx context.Context, ds []Delivery) ([]Delivered, error)
	// DeliverAndQueue stores local copies and queues outbound copies in
	// one transaction, and returns the new queue entries' ids.
	DeliverAndQueue(ctx context.Context, ds []Delivery, out []Outbound) ([]Delivered, []string, error)
	// DeliverOnce delivers d unless key was delivered before, in one
	// transaction: d is delivered exactly once per key.
	DeliverOnce(ctx context.Context, key string, d Delivery) (bool, error)
	// LastOnceKey returns the greatest key (in byte order) that
	// DeliverOnce recorded with prefix, or "" when there is none: with
	// keys ending in a date (2006-01-02), the latest day something was
	// delivered under them.
	LastOnceKey(ctx context.Context, prefix string) (string, error)
	// CheckQuotaWarning reports once per crossing that an account's usage
	// went over percent of its quota.
	CheckQuotaWarning(ctx context.Context, account string, percent int) (bool, Account, error)
	RecordStop(ctx context.Context, st Stop) error
	Stops(ctx context.Context, since, until time.Time, domain string) ([]Stop, error)
	PruneStops(ctx context.Context, before time.Time) (int, error)
}

// Queue is the outbound queue. An entry is due at its next attempt time;
// SettleQueued records an attempt's outcome (and any DSN deliveries) in one
// transaction.
type Queue interface {
	Enqueue(ctx context.Context, out ...Outbound) ([]string, error)
	// QueueDue returns entries due at now and not leased, earliest first.
	// It only reads: an entry is returned again until it is leased,
	// settled, retried or dropped.
	QueueDue(ctx context.Context, now time.Time, max int) ([]QueueEntry, error)
	// LeaseQueued leases those of ids that are due at now and not leased
	// by another holder, until until, and returns them as stored: the one
	// way to claim entries to deliver. Several processes sharing a backend
	// each deliver an entry only while they hold its lease; a lease ends at
	// until (its holder died), at SettleQueued, or at ReleaseQueued.
	LeaseQueued(ctx context.Context, ids []string, holder string, now, until time.Time) ([]QueueEntry, error)
	// RenewLeases moves the end of holder's leases on ids to until, and
	// returns the ids it renewed, in the order asked. Only a lease holder
	// still holds is renewed: not one another holder claimed after it
	// ended, nor one ended by SettleQueued or ReleaseQueued, nor one on an
	// entry that is gone; a lease that ended unclaimed is holder's still
	// (nobody else can have delivered the entry) and is renewed. A holder
	// renews while it works on entries, and stops working on those not
	// renewed: another holder may be delivering them.
	RenewLeases(ctx context.Context, ids []string, holder string, until time.Time) ([]string, error)
	// ReleaseQueued ends holder's leases on ids without an attempt.
	ReleaseQueued(ctx context.Context, ids []string, holder string) error
	QueueNextAttempt(ctx context.Context) (next time.Time, ok bool, err error)
	QueueEntries(ctx context.Context) ([]QueueEntry, error)
	// QueueStats returns how many entries the queue holds and when the
	// oldest of them was created (zero when there are none), without
	// returning the entries: monitoring asks for it at every scrape.
	QueueStats(ctx context.Context) (entries int, oldest time.Time, err error)
	QueueEntry(ctx context.Context, id string) (QueueEntry, error)
	OpenQueued(ctx context.Context, id string) (io.ReadCloser, QueueEntry, error)
	ReadQueued(ctx context.Context, id string) ([]byte, QueueEntry, error)
	// SettleQueued applies fn to the entry as stored and, in the same
	// transaction, delivers ds and queues out; an entry left with nothing
	// pending is removed. fn may run more than once (only its last run
	// counts), so it only changes the entry; if it returns an error nothing
	// is stored, which makes settling idempotent when fn refuses an entry
	// already settled. An entry that is gone gives ErrNoSuchMessage.
	SettleQueued(ctx context.Context, id string, fn func(e *QueueEntry) error, ds []Delivery, out []Outbound) error
	// RecordSent records that the remote accepted rcpts of entry id: those
	// still pending are marked sent, and nothing else changes — the
	// entry's lease, whoever holds it, its next attempt, attempts and last
	// error stay as they are. A holder whose lease ended mid-attempt
	// (another holder may be delivering the entry now) records with it
	// what must not be sent again without ending the other holder's
	// lease, as SettleQueued would. An entry left with nothing pending is
	// removed; one that is gone gives ErrNoSuchMessage.
	RecordSent(ctx context.Context, id string, rcpts []string) error
	RetryQueued(ctx context.Context, ids []string) (int, error)
	DropQueued(ctx context.Context, ids []string) (int, error)
	// QueueChanged is signalled when entries may have become due.
	QueueChanged() <-chan struct{}
}

// Settings are the per-domain and per-account settings.
type Settings interface {
	DomainSettings(ctx context.Context, domain string) (DomainSettings, error)
	SetDomainSettings(ctx context.Context, domain string, ds DomainSettings) error
	SetScanPolicy(ctx context.Context, addr string, p ScanPolicy) error
	SetSpamPolicy(ctx context.Context, addr string, p SpamPolicy) error
	GetForward(ctx context.Context, addr string) (Forward, error)
	SetForward(ctx context.Context, addr string, targets []string, keepCopy bool) (Forward, error)
	ClearForward(ctx context.Context, addr string) error
	DKIMKeys(ctx context.Context, domain string) ([]DKIMKey, error)
	// EnsureDKIMKeys returns the domain's keys, storing generate's on first use.
	EnsureDKIMKeys(ctx context.Context, domain string, generate func() ([]DKIMKey, error)) ([]DKIMKey, error)
	// SRSSecret returns the server's SRS key, made on first use.
	SRSSecret(ctx context.Context) ([]byte, error)
}

// Admin is everything an administrator changes.
type Admin interface {
	Directory
	Settings
	AddDomain(ctx context.Context, name, parent string) error
	RemoveDomain(ctx context.Context, name string) error
	AddAccount(ctx context.Context, a Account) error
	SetPasswordHash(ctx context.Context, addr, hash string) error
	SetQuota(ctx context.Context, addr string, quota int64) error
	SetRole(ctx context.Context, addr string, role Role) error
	RemoveAccount(ctx context.Context, addr string) error
}

// Store is a whole backend: every interface above, plus its upkeep.
type Store interface {
	Admin
	Mail
	Inbound
	Queue
	SpamModel
	Quarantine
	Backups
	Importer
	Transfer
	// Verify checks the backend's invariants (usage = sum of sizes,
	// reference counts, queue indexes, mod-sequences) and returns what is
	// wrong.
	Verify(ctx context.Context) ([]string, error)
	Stats() Stats
	// Close waits for writes in flight and releases the backend.
	Close() error
}
