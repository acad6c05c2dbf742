package postgres

import (
	"strings"
	"testing"
)

// TestChannel: NOTIFY channel names fit PostgreSQL's 63 bytes, and stay
// apart for different schemas.
func TestChannel(t *testing.T) {
	long := strings.Repeat("s", 100)
	for _, c := range []struct{ schema, want string }{
		{"public", "yubin_feed_public"},
		{long, ""},
	} {
		got := channel("yubin_feed_", c.schema)
		if len(got) > 63 || c.want != "" && got != c.want {
			t.Errorf("channel of %.10q: %q", c.schema, got)
		}
	}
	if channel("yubin_feed_", long) == channel("yubin_feed_", long+"x") {
		t.Error("two long schema names share a channel")
	}
}
