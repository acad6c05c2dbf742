package admin

import (
	"strings"
	"testing"

	"yubin/internal/config"
)

// TestStoreInfoOfPostgres: status names a PostgreSQL store by its host
// and database, never its password.
func TestStoreInfoOfPostgres(t *testing.T) {
	cfg := config.Default()
	cfg.Store.Backend, cfg.Store.PostgresURL = "postgres", "postgres://yubin:s3cret@db.internal:5432/mail"
	got := StoreInfoOf(cfg)
	if strings.Contains(got.Path, "s3cret") || !strings.Contains(got.Path, "db.internal:5432/mail") || got.Bytes != 0 {
		t.Errorf("StoreInfoOf: %+v", got)
	}
	cfg = config.Default()
	cfg.DataDir = t.TempDir()
	if got := StoreInfoOf(cfg); !strings.HasSuffix(got.Path, "yubin.db") {
		t.Errorf("StoreInfoOf of the embedded store: %+v", got)
	}
}
