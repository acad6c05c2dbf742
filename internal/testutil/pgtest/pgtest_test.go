package pgtest

import (
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

var shared Shared

func TestMain(m *testing.M) { os.Exit(shared.Main(m)) }

// TestDatabase checks that each database is fresh and usable, and gone
// after its test.
func TestDatabase(t *testing.T) {
	ctx := t.Context()
	var names []string
	for range 2 {
		url := shared.Database(t, "")
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		var name string
		var n int
		if err := conn.QueryRow(ctx, "SELECT current_database(), (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')").Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("database %s has %d tables, want none", name, n)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE x (a int)"); err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
		names = append(names, name)
	}
	if names[0] == names[1] {
		t.Errorf("two databases named %s", names[0])
	}
}

// TestSchema checks that a schema's URL puts new tables in the schema.
func TestSchema(t *testing.T) {
	ctx := t.Context()
	url := shared.Schema(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE x (a int)"); err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := conn.QueryRow(ctx, "SELECT table_schema FROM information_schema.tables WHERE table_name = 'x'").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if schema == "public" || schema == "" {
		t.Errorf("table created in schema %q, want the test's own", schema)
	}
}
