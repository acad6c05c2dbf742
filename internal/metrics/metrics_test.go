package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// What the hot path calls costs no allocation, and counts where it should.
func TestCountingAllocatesNothing(t *testing.T) {
	m := New(Sources{Version: "test"})
	allocs := testing.AllocsPerRun(1000, func() {
		m.SMTPTransaction(ListenerMX, 250)
		m.Deliveries(VerdictClean, 2)
		m.ScanDuration(3 * time.Millisecond)
		m.CommitDuration(time.Millisecond)
		m.OutboundResults(1, 1, 0)
		m.AuthFailure(ProtoIMAP, false)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per message", allocs)
	}
	runs := 1001.0 // AllocsPerRun runs once more to warm up
	for _, c := range []struct {
		what      string
		got, want float64
	}{
		{"mx 2xx", testutil.ToFloat64(m.smtp[0][0]), runs},
		{"clean", testutil.ToFloat64(m.deliveries[0]), 2 * runs},
		{"delivered", testutil.ToFloat64(m.outbound[0]), runs},
		{"deferred", testutil.ToFloat64(m.outbound[1]), runs},
		{"bounced", testutil.ToFloat64(m.outbound[2]), 0},
		{"imap bad credentials", testutil.ToFloat64(m.authFail[2][0]), runs},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	// Words it does not know and codes outside 2xx/4xx/5xx count nowhere;
	// a nil *Metrics counts nothing.
	m.SMTPTransaction("lmtp", 250)
	m.SMTPTransaction(ListenerMX, 354)
	m.Deliveries("bounced", 1)
	m.AuthFailure("ftp", true)
	if got := testutil.ToFloat64(m.smtp[0][0]); got != runs {
		t.Errorf("mx 2xx = %v after unknown words", got)
	}
	var none *Metrics
	none.SMTPTransaction(ListenerMX, 250)
	none.Deliveries(VerdictJunk, 1)
	none.ScanDuration(time.Second)
	none.CommitDuration(time.Second)
	none.OutboundResults(1, 2, 3)
	none.AuthFailure(ProtoSMTP, true)
}
