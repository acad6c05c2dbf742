package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// migrations are the schema, version by version: migrations[i] takes a
// database from version i to version i+1. They are applied in one
// transaction, under an advisory lock, by the first node that opens the
// database; a database of a later version than this code knows is refused.
// Never edit a migration that was released: add one.
var migrations = []string{
	// 1: everything.
	`
CREATE TABLE meta (
	key   text PRIMARY KEY,
	value bytea NOT NULL
);
CREATE SEQUENCE uidvalidity_seq MINVALUE 1 MAXVALUE 4294967295 CYCLE;
CREATE TABLE domains (
	name     text PRIMARY KEY,
	parent   text REFERENCES domains (name),
	created  timestamptz NOT NULL,
	settings jsonb
);
CREATE TABLE dkim (
	domain text PRIMARY KEY,
	keys   jsonb NOT NULL
);
CREATE TABLE accounts (
	address       text PRIMARY KEY,
	domain        text NOT NULL REFERENCES domains (name),
	role          text NOT NULL,
	quota         bigint NOT NULL,
	used          bigint NOT NULL,
	password_hash text NOT NULL,
	created       timestamptz NOT NULL,
	scan          jsonb NOT NULL,
	spam          jsonb NOT NULL,
	forward       jsonb,
	quota_warned  boolean NOT NULL DEFAULT false
);
CREATE INDEX accounts_domain ON accounts (domain);
CREATE TABLE mailboxes (
	id             bigserial PRIMARY KEY,
	account        text NOT NULL REFERENCES accounts (address) ON DELETE CASCADE,
	name           text NOT NULL,
	uidvalidity    bigint NOT NULL,
	uidnext        bigint NOT NULL,
	messages       bigint NOT NULL,
	size           bigint NOT NULL,
	special_use    text NOT NULL,
	highest_modseq bigint NOT NULL,
	first_recent   bigint NOT NULL,
	gone_floor     bigint NOT NULL DEFAULT 0,
	UNIQUE (account, name)
);
CREATE TABLE subscriptions (
	account text NOT NULL REFERENCES accounts (address) ON DELETE CASCADE,
	name    text NOT NULL,
	PRIMARY KEY (account, name)
);
CREATE TABLE blobs (
	id       bigserial PRIMARY KEY,
	size     bigint NOT NULL,
	envelope bytea
);
CREATE TABLE chunks (
	blob bigint NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
	n    integer NOT NULL,
	data bytea NOT NULL,
	PRIMARY KEY (blob, n)
);
CREATE TABLE messages (
	mailbox     bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
	uid         bigint NOT NULL,
	blob        bigint NOT NULL REFERENCES blobs (id),
	size        bigint NOT NULL,
	header_size bigint NOT NULL,
	date_ns     bigint NOT NULL,
	flags       text[] NOT NULL,
	modseq      bigint NOT NULL,
	PRIMARY KEY (mailbox, uid)
);
CREATE INDEX messages_blob ON messages (blob);
CREATE TABLE expunged (
	mailbox bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
	modseq  bigint NOT NULL,
	uid     bigint NOT NULL,
	at      timestamptz NOT NULL,
	PRIMARY KEY (mailbox, modseq)
);
CREATE SEQUENCE events_seq;
CREATE TABLE events (
	seq         bigint PRIMARY KEY,
	account     text NOT NULL,
	payload     jsonb NOT NULL,
	at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_account ON events (account, seq);
CREATE INDEX events_at ON events (at);
CREATE TABLE events_pruned (pruned bigint NOT NULL);
INSERT INTO events_pruned VALUES (0);
CREATE TABLE once_keys (
	key text PRIMARY KEY COLLATE "C",
	at  timestamptz NOT NULL
);
CREATE TABLE import_keys (
	account text NOT NULL REFERENCES accounts (address) ON DELETE CASCADE,
	key     text NOT NULL,
	PRIMARY KEY (account, key)
);
CREATE TABLE queue (
	id           text PRIMARY KEY,
	blob         bigint NOT NULL REFERENCES blobs (id),
	entry        jsonb NOT NULL,
	created      timestamptz NOT NULL,
	next_attempt timestamptz NOT NULL,
	lease_holder text NOT NULL DEFAULT '',
	lease_until  timestamptz
);
CREATE INDEX queue_due ON queue (greatest(next_attempt, coalesce(lease_until, next_attempt)));
CREATE SEQUENCE queue_seq;
CREATE INDEX queue_blob ON queue (blob);
CREATE TABLE quarantine (
	id      text PRIMARY KEY,
	account text NOT NULL REFERENCES accounts (address) ON DELETE CASCADE,
	blob    bigint NOT NULL REFERENCES blobs (id),
	arrived bigint NOT NULL,
	size    bigint NOT NULL,
	header_size bigint NOT NULL,
	entry   jsonb NOT NULL
);
CREATE INDEX quarantine_account ON quarantine (account, arrived);
CREATE INDEX quarantine_blob ON quarantine (blob);
CREATE TABLE stops (
	id      bigserial PRIMARY KEY,
	time_ns bigint NOT NULL,
	stop    jsonb NOT NULL
);
CREATE INDEX stops_time ON stops (time_ns);
CREATE TABLE spam_models (
	owner text PRIMARY KEY,
	spam  bigint NOT NULL,
	ham   bigint NOT NULL,
	tokens bigint NOT NULL
);
CREATE TABLE spam_tokens (
	owner text NOT NULL REFERENCES spam_models (owner) ON DELETE CASCADE,
	token text NOT NULL COLLATE "C",
	spam  bigint NOT NULL,
	ham   bigint NOT NULL,
	seen  bigint NOT NULL,
	PRIMARY KEY (owner, token)
);
CREATE TABLE spam_trained (
	account text NOT NULL,
	blob    bigint NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
	class   smallint NOT NULL,
	PRIMARY KEY (account, blob)
);
`,
}

// SchemaVersion is the schema this code reads and writes.
var SchemaVersion = len(migrations)

// ErrNewerSchema is returned by Open for a database whose schema a newer
// Yubin made.
var ErrNewerSchema = errors.New("the database's schema is newer than this Yubin knows")

// migrate brings the database's schema up to SchemaVersion in one
// transaction. Nodes opening the database at once wait for each other (an
// advisory lock), so a migration runs once.
func migrate(ctx context.Context, conn *pgx.Conn, now time.Time) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	// The lock is per schema (the same database may hold several).
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.yubin_migrate'))`); err != nil {
		return fmt.Errorf("locking for migration: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("creating schema_version: %w", err)
	}
	var v int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return fmt.Errorf("reading schema_version: %w", err)
	}
	if v > SchemaVersion {
		return fmt.Errorf("%w: the database is at schema version %d, this Yubin knows versions up to %d; run the newer Yubin (or restore a backup made by this one)", ErrNewerSchema, v, SchemaVersion)
	}
	if v == SchemaVersion {
		return nil
	}
	for i := v; i < SchemaVersion; i++ {
		if _, err := tx.Exec(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrating the schema to version %d: %w", i+1, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, i+1); err != nil {
			return err
		}
	}
	if v == 0 {
		// UIDVALIDITY values start at the creation time, so a store
		// created anew never repeats values an old one handed out.
		if _, err := tx.Exec(ctx, `SELECT setval('uidvalidity_seq', $1)`, max(now.Unix(), 1)); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}
