package spam

import (
	"bytes"
	"strings"
	"testing"

	"yubin/internal/testutil"
	"yubin/internal/testutil/mailgen"
)

// BenchmarkTokenize tokenizes a 10 KiB message of prose with a few links,
// the kind of work the spam stage does for each message from port 25.
func BenchmarkTokenize(b *testing.B) {
	var msg bytes.Buffer
	msg.WriteString("From: Alice <alice@partner.test>\r\nTo: bob@example.com\r\nSubject: Project review agenda\r\n" +
		"Message-ID: <1.alice@partner.test>\r\nDate: Mon, 2 Jan 2006 15:04:05 -0700\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	words := strings.Fields("the quick brown fox jumps over the lazy dog while our team reviews the project plan " +
		"and schedules the meeting see https://wiki.partner.test/project for details thanks regards alice")
	for i := 0; msg.Len() < 10<<10; i++ {
		msg.WriteString(words[i%len(words)])
		if i%12 == 11 {
			msg.WriteString("\r\n")
		} else {
			msg.WriteByte(' ')
		}
	}
	b.SetBytes(int64(msg.Len()))
	b.ReportAllocs()
	cpu := testutil.ProcessCPU()
	for b.Loop() {
		Tokenize(msg.Bytes())
	}
	testutil.ReportCPU(b, cpu, "cpu-ns/op")
}

// BenchmarkTokenizeRealistic tokenizes a realistic 10 KiB message
// (mailgen: a header with Received and DKIM-Signature fields,
// multipart/alternative with quoted-printable text and HTML), as the spam
// stage does for each message from port 25.
func BenchmarkTokenizeRealistic(b *testing.B) {
	msg := mailgen.New(1).Message(false, 10<<10)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	cpu := testutil.ProcessCPU()
	for b.Loop() {
		Tokenize(msg)
	}
	testutil.ReportCPU(b, cpu, "cpu-ns/op")
}
