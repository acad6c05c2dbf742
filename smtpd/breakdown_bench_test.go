package smtpd

import (
	"fmt"
	"testing"
)

// BenchmarkIngestBreakdown is BenchmarkIngest at one session with the
// parts of a delivery added one at a time, so that the differences between
// its lines say where a message's time goes: the SMTP exchange and the
// store with fsync off (sync=off/stages=none), each stage (scan, then
// scan+spam), and the fsyncs of the commit (sync=on less sync=off).
func BenchmarkIngestBreakdown(b *testing.B) {
	msg := benchMessage()
	for _, sync := range []bool{false, true} {
		for _, stages := range []string{"none", "scan", "scan+spam"} {
			b.Run(fmt.Sprintf("sync=%s/stages=%s", onOff(sync), stages), func(b *testing.B) {
				o := ingestOptions(b, stages)
				o.noSync = !sync
				benchIngestWith(b, msg, 1, o)
			})
		}
	}
}

func onOff(v bool) string {
	if v {
		return "on"
	}
	return "off"
}
