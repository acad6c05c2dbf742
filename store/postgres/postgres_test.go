package postgres_test

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"yubin/internal/testutil/pgtest"
	"yubin/store"
	"yubin/store/postgres"
	"yubin/store/storetest"
)

var pg pgtest.Shared

// spare holds the URLs of schemas that a finished test emptied, for the
// next to use: migrating a new schema costs a quarter of a second, much
// more than the test itself.
var spare = make(chan string, 64)

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

// schema returns the URL of an empty store's schema: a spare one, or a
// new one.
func schema(t *testing.T) string {
	t.Helper()
	var url string
	select {
	case url = <-spare:
	default:
		_, url = pg.NewSchema(t)
	}
	t.Cleanup(func() {
		// After the store is closed (cleanups run last first).
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if empty(ctx, url) == nil {
			select {
			case spare <- url:
			default:
			}
		}
	})
	return url
}

// empty deletes every row a store wrote, as if it was new; the schema
// stays (schema_version and the rows migrations made).
func empty(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	tables, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename NOT IN ('schema_version', 'events_pruned')`)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(tables, pgx.RowTo[string])
	if err != nil {
		return err
	}
	sql := `SET session_replication_role = replica;`
	for _, n := range names {
		sql += ` DELETE FROM ` + pgx.Identifier{n}.Sanitize() + `;`
	}
	sql += ` UPDATE events_pruned SET pruned = 0; SELECT setval('uidvalidity_seq', extract(epoch FROM now())::bigint);`
	_, err = conn.Exec(ctx, sql)
	return err
}

// open opens a store on an empty schema of the test cluster.
func open(t *testing.T, o storetest.Options) (store.Store, storetest.Reopen) {
	url := schema(t)
	open := func(t *testing.T) store.Store {
		s, err := postgres.Open(t.Context(), url, postgres.Options{Now: o.Now, MaxMailboxes: o.MaxMailboxes, MaxExpunged: o.MaxExpunged,
			ExpungedAge: o.ExpungedAge, MaxSubscriptions: o.MaxSubscriptions, MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return open(t), open
}

// TestConformance runs the store's conformance suite on PostgreSQL.
func TestConformance(t *testing.T) {
	storetest.Run(t, open)
}

// TestConformanceBackup runs the suite's backup tests: a snapshot is
// restored into a new schema (postgres.Restore), as a restored database.
func TestConformanceBackup(t *testing.T) {
	storetest.RunBackup(t, open, func(t *testing.T, snapshot io.Reader, o storetest.Options) store.Store {
		s, err := postgres.Restore(t.Context(), schema(t), snapshot, postgres.Options{Now: o.Now, MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
