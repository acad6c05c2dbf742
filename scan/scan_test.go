package scan

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"yubin/internal/testutil/scantest"
)

func TestEICARPlain(t *testing.T) {
	s := newTestScanner(t, Limits{})
	raw := []byte("From: a@example.com\r\nSubject: x\r\n\r\n" + EICAR + "\r\n")
	v := mustScan(t, s, raw)
	f := wantFinding(t, v, Virus)
	if f.Virus != EICARName || f.Engine != BuiltinName || f.Attachment || f.Part != "" || f.Index != 0 {
		t.Errorf("finding = %+v", f)
	}
	if r, ok := v.Submission(""); ok || r != ReplyVirus {
		t.Errorf("Submission = %v %v", r, ok)
	}
	if got := ReplyVirus.String(); got != "554 5.6.5 VC01 Virus Check Service found VIRUS in your email." {
		t.Errorf("reply %q", got)
	}
}

func TestCleanMessage(t *testing.T) {
	s := newTestScanner(t, Limits{})
	v := mustScan(t, s, mailWith("hello", att{name: "a.txt", data: []byte("just text")}))
	if len(v.Findings) != 0 || !v.Clean() {
		t.Fatalf("verdict:\n%s", v)
	}
	if len(v.Parts) != 3 { // preamble, body, attachment
		t.Errorf("parts = %+v", v.Parts)
	}
	if r, ok := v.Submission(""); !ok {
		t.Errorf("Submission rejected: %v", r)
	}
	if h := v.HeaderValue(); h != "clean; engines=builtin" {
		t.Errorf("header %q", h)
	}
}

func TestEICARAttachment(t *testing.T) {
	s := newTestScanner(t, Limits{})
	v := mustScan(t, s, mailWith("hello", att{name: "eicar.com", data: []byte(EICAR)}))
	f := wantFinding(t, v, Virus)
	if !f.Attachment || f.Part != "2" || f.FileName != "eicar.com" || f.Path != "eicar.com" {
		t.Errorf("finding = %+v", f)
	}
}

func TestEICARInZip(t *testing.T) {
	s := newTestScanner(t, Limits{})
	z := zipOf(t, att{name: "readme.txt", data: []byte("hi")}, att{name: "dir/eicar.com", data: []byte(EICAR)})
	v := mustScan(t, s, mailWith("hello", att{name: "invoice.zip", ctype: "application/zip", data: z}))
	f := wantFinding(t, v, Virus)
	if f.Path != "invoice.zip/dir/eicar.com" || f.Part != "2" || !f.Attachment {
		t.Errorf("finding = %+v", f)
	}
}

func TestEICARZipInTarGz(t *testing.T) {
	s := newTestScanner(t, Limits{})
	z := zipOf(t, att{name: "eicar.com", data: []byte(EICAR)})
	tgz := gzipOf(t, tarOf(t, att{name: "notes.txt", data: []byte("x")}, att{name: "inner.zip", data: z}))
	v := mustScan(t, s, mailWith("hello", att{name: "bundle.tar.gz", data: tgz}))
	f := wantFinding(t, v, Virus)
	if f.Path != "bundle.tar.gz/bundle.tar/inner.zip/eicar.com" {
		t.Errorf("path %q", f.Path)
	}
	// and the other way round: a tar.gz inside a zip
	z2 := zipOf(t, att{name: "inner.tar.gz", data: gzipOf(t, tarOf(t, att{name: "eicar.com", data: []byte(EICAR)}))})
	v = mustScan(t, s, mailWith("hello", att{name: "invoice.zip", data: z2}))
	if f := wantFinding(t, v, Virus); f.Path != "invoice.zip/inner.tar.gz/inner.tar/eicar.com" {
		t.Errorf("path %q", f.Path)
	}
}

// bzip2Hex is EICAR compressed by Python's bz2.compress(EICAR, 9): the
// standard library reads bzip2 but cannot write it.
const bzip2Hex = "425a68393141592653598652cbd300001f1e80267a06806f65df5d00022000488a69a030834f48c6a7a27a8453d4686464d184c234f4d4de28bf1c9088095087eb07410cfb939aa29bcce4c612e676c9b501a22eaa0cefb32803cf5a199010f7f8bb9229c2848432965e98"

func TestBzip2(t *testing.T) {
	bz, _ := hex.DecodeString(bzip2Hex)
	s := newTestScanner(t, Limits{})
	v := mustScan(t, s, mailWith("hi", att{name: "e.com.bz2", data: bz}))
	if f := wantFinding(t, v, Virus); f.Path != "e.com.bz2/e.com" {
		t.Errorf("path %q", f.Path)
	}
	// bzip2 inside a zip (method 12 is not written by archive/zip: use a
	// .bz2 member instead)
	v = mustScan(t, s, mailWith("hi", att{name: "a.zip", data: zipOf(t, att{name: "e.bz2", data: bz})}))
	if f := wantFinding(t, v, Virus); f.Path != "a.zip/e.bz2/e" {
		t.Errorf("path %q", f.Path)
	}
}

func TestEICARInHTMLBody(t *testing.T) {
	s := newTestScanner(t, Limits{})
	raw := "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n" +
		"--alt\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
		"--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		b64lines([]byte("<html><body><p>hi</p><pre>"+EICAR+"</pre></body></html>")) +
		"--alt--\r\n"
	v := mustScan(t, s, []byte(raw))
	f := wantFinding(t, v, Virus)
	if f.Attachment || f.Part != "2" {
		t.Errorf("finding = %+v", f)
	}
	if d := v.Inbound(Policy{}); d.Action != DiscardMessage || d.Reply != ReplyVirus {
		t.Errorf("inbound decision %+v", d)
	}
}

func TestEICARQuotedPrintable(t *testing.T) {
	s := newTestScanner(t, Limits{})
	// a soft line break in the middle of the signature, and '=' encoded
	qp := strings.Replace(EICAR[:30], "%", "=25", 1) + "=\r\n" + EICAR[30:]
	raw := "From: a@example.com\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + qp + "\r\n"
	v := mustScan(t, s, []byte(raw))
	wantFinding(t, v, Virus)
}

// nestedZip wraps data in n zips.
func nestedZip(t testing.TB, n int, data []byte) []byte {
	name := "eicar.com"
	for i := 0; i < n; i++ {
		data = zipOf(t, att{name: name, data: data})
		name = fmt.Sprintf("level%d.zip", n-i)
	}
	return data
}

func TestDepth(t *testing.T) {
	s := newTestScanner(t, Limits{})
	for _, n := range []int{9, 10, 11} {
		v := mustScan(t, s, mailWith("hello", att{name: "nested.zip", data: nestedZip(t, n, []byte("harmless"))}))
		if n < 10 {
			if !v.Clean() || len(v.Findings) != 0 {
				t.Errorf("depth %d: want clean, got\n%s", n, v)
			}
			continue
		}
		f := wantFinding(t, v, Depth)
		if r, ok := v.Submission(""); ok || r != ReplyDepth {
			t.Errorf("depth %d: reply %v", n, r)
		}
		t.Logf("depth %d: %s", n, f)
	}
	// the signature is found at depth 9
	v := mustScan(t, s, mailWith("hello", att{name: "nested.zip", data: nestedZip(t, 9, []byte(EICAR))}))
	if f := wantFinding(t, v, Virus); strings.Count(f.Path, "/") != 9 {
		t.Errorf("path %q", f.Path)
	}
	// gzip layers count as layers: 10 gzips
	data := []byte("x")
	for i := 0; i < 10; i++ {
		data = gzipOf(t, data)
	}
	v = mustScan(t, s, mailWith("hello", att{name: "x.gz", data: data}))
	wantFinding(t, v, Depth)
}

func heapDelta(t *testing.T, fn func()) (total uint64, peak uint64) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	done := make(chan struct{})
	exited := make(chan struct{})
	var maxInuse uint64
	go func() {
		defer close(exited)
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
				runtime.ReadMemStats(&m)
				if m.HeapInuse > maxInuse {
					maxInuse = m.HeapInuse
				}
			}
		}
	}()
	fn()
	close(done)
	<-exited
	runtime.ReadMemStats(&after)
	if after.HeapInuse > maxInuse {
		maxInuse = after.HeapInuse
	}
	peak = 0
	if maxInuse > before.HeapInuse {
		peak = maxInuse - before.HeapInuse
	}
	return after.TotalAlloc - before.TotalAlloc, peak
}

const hundredMiBPlus1 = 100<<20 + 1

func TestExtractSizeGzipStreamed(t *testing.T) {
	// 100 MiB + 1 zero bytes, gzipped on the fly (no 100 MiB buffer): the
	// gzip stream has no trustworthy size, so the count must stop it.
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	streamZeros(t, zw, hundredMiBPlus1)
	zw.Close()
	raw := mailWith("hello", att{name: "zeros.gz", data: gz.Bytes()})
	t.Logf("compressed %d bytes, message %d bytes", gz.Len(), len(raw))
	s := newTestScanner(t, Limits{})
	var v *Verdict
	start := time.Now()
	total, peak := heapDelta(t, func() { v = mustScan(t, s, raw) })
	el := time.Since(start)
	t.Logf("scan took %v, allocated %d KiB, peak heap in use +%d KiB", el, total>>10, peak>>10)
	f := wantFinding(t, v, ExtractSize)
	if f.Path != "zeros.gz/zeros" {
		t.Errorf("path %q", f.Path)
	}
	if r, ok := v.Submission(""); ok || r != ReplyExtractSize {
		t.Errorf("reply %v", r)
	}
	if total > 16<<20 || peak > 16<<20 {
		t.Errorf("memory not bounded: allocated %d, peak %d", total, peak)
	}
	if el > 10*time.Second {
		t.Errorf("too slow: %v", el)
	}
}

func TestExtractSizeZip(t *testing.T) {
	// A zip member of 100 MiB + 1 byte streamed into the zip writer. The
	// honest header is caught at once; then the same data under a header
	// that lies (says 1 byte) must be stopped by counting.
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	w, _ := zw.Create("big.bin")
	streamZeros(t, w, hundredMiBPlus1)
	zw.Close()
	s := newTestScanner(t, Limits{})
	start := time.Now()
	v := mustScan(t, s, mailWith("hi", att{name: "big.zip", data: zbuf.Bytes()}))
	t.Logf("honest header: %v", time.Since(start))
	if f := wantFinding(t, v, ExtractSize); f.Path != "big.zip/big.bin" {
		t.Errorf("path %q", f.Path)
	}

	// lying header: copy the deflate stream with CreateRaw
	zr, err := zip.NewReader(bytes.NewReader(zbuf.Bytes()), int64(zbuf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	rawData, _ := zr.File[0].OpenRaw()
	var lie bytes.Buffer
	lw := zip.NewWriter(&lie)
	fw, _ := lw.CreateRaw(&zip.FileHeader{Name: "liar.bin", Method: zip.Deflate, CRC32: crc32.ChecksumIEEE([]byte{0}),
		CompressedSize64: zr.File[0].CompressedSize64, UncompressedSize64: 1})
	io.Copy(fw, rawData)
	lw.Close()
	raw := mailWith("hi", att{name: "liar.zip", data: lie.Bytes()})
	var v2 *Verdict
	start = time.Now()
	total, peak := heapDelta(t, func() { v2 = mustScan(t, s, raw) })
	t.Logf("lying header: %v, allocated %d KiB, peak +%d KiB", time.Since(start), total>>10, peak>>10)
	if f := wantFinding(t, v2, ExtractSize); f.Path != "liar.zip/liar.bin" {
		t.Errorf("path %q", f.Path)
	}
	if total > 32<<20 || peak > 32<<20 {
		t.Errorf("memory not bounded: allocated %d, peak %d", total, peak)
	}
}

func TestExtractSizeLimitsExact(t *testing.T) {
	l := Limits{MaxFileSize: 1 << 20, MaxTotalSize: 3 << 20}
	s := newTestScanner(t, l)
	exact := make([]byte, 1<<20)
	v := mustScan(t, s, mailWith("hi", att{name: "a.gz", data: gzipOf(t, exact)}))
	if len(v.Findings) != 0 {
		t.Errorf("exactly the limit: %s", v)
	}
	v = mustScan(t, s, mailWith("hi", att{name: "a.gz", data: gzipOf(t, append(exact, 0))}))
	wantFinding(t, v, ExtractSize)
	// total: 4 members of 1 MiB
	z := zipOf(t, att{name: "1", data: exact}, att{name: "2", data: exact}, att{name: "3", data: exact}, att{name: "4", data: exact})
	v = mustScan(t, s, mailWith("hi", att{name: "four.zip", data: z}))
	if f := wantFinding(t, v, ExtractSize); !strings.Contains(f.Detail, "total") || f.Path != "four.zip/4" {
		t.Errorf("finding %+v", f)
	}
	// entries
	s = newTestScanner(t, Limits{MaxEntries: 3})
	v = mustScan(t, s, mailWith("hi", att{name: "four.zip", data: zipOf(t, att{name: "1"}, att{name: "2"}, att{name: "3"}, att{name: "4"})}))
	if f := wantFinding(t, v, ExtractSize); !strings.Contains(f.Detail, "members") {
		t.Errorf("finding %+v", f)
	}
}

func TestZipBomb42Style(t *testing.T) {
	// 42.zip-like: 16 members per level, 4 levels, leaves of 8 MiB of
	// zeros: 16^4 * 8 MiB = 512 GiB if fully inflated.
	leaf := func() []byte {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		for i := 0; i < 16; i++ {
			w, _ := zw.Create(fmt.Sprintf("%d.bin", i))
			streamZeros(t, w, 8<<20)
		}
		zw.Close()
		return b.Bytes()
	}()
	data := leaf
	for lvl := 0; lvl < 3; lvl++ {
		files := make([]att, 16)
		for i := range files {
			files[i] = att{name: fmt.Sprintf("l%d-%d.zip", lvl, i), data: data}
		}
		data = zipOf(t, files...)
	}
	raw := mailWith("hi", att{name: "42.zip", data: data})
	t.Logf("bomb message: %d bytes", len(raw))
	s := newTestScanner(t, Limits{})
	var v *Verdict
	start := time.Now()
	total, peak := heapDelta(t, func() { v = mustScan(t, s, raw) })
	el := time.Since(start)
	t.Logf("42-style bomb: %v, allocated %d KiB, peak +%d KiB", el, total>>10, peak>>10)
	f := wantFinding(t, v, ExtractSize)
	t.Logf("%s", f)
	if el > 10*time.Second || peak > 64<<20 {
		t.Errorf("not bounded: %v, peak %d", el, peak)
	}
}

func TestPartial(t *testing.T) {
	s := newTestScanner(t, Limits{})
	raw := "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: message/partial; id=\"abc@example.com\"; number=1; total=2\r\n\r\n" +
		"From: a@example.com\r\nSubject: part 1\r\n\r\nfirst half\r\n"
	v := mustScan(t, s, []byte(raw))
	wantFinding(t, v, Partial)
	if r, ok := v.Submission(""); ok || r.String() != "554 5.6.5 VC02 Partial message." {
		t.Errorf("reply %v", r)
	}
	if d := v.Inbound(Policy{}); d.Action != DiscardMessage || d.Reply != ReplyPartial {
		t.Errorf("decision %+v", d)
	}
	if d := v.Inbound(Policy{Partial: Accept}); d.Action != Deliver || d.Header != "unchecked; engines=builtin; reason=partial" {
		t.Errorf("decision %+v", d)
	}
}

func encryptedZip(t testing.TB, name string) []byte { return scantest.EncryptedZip(name) }

func TestEncryptedZip(t *testing.T) {
	s := newTestScanner(t, Limits{})
	v := mustScan(t, s, mailWith("hi", att{name: "secret.zip", data: encryptedZip(t, "plan.doc")}))
	f := wantFinding(t, v, Encrypted)
	if f.Path != "secret.zip/plan.doc" || v.Infected() {
		t.Errorf("finding %+v\n%s", f, v)
	}
	if !v.Clean() {
		t.Error("encrypted alone must not be blocking")
	}
	if _, ok := v.Submission(""); !ok {
		t.Error("encrypted=accept: submission must pass")
	}
	if r, ok := v.Submission(Reject); ok || r != ReplyEncrypted {
		t.Errorf("encrypted=reject: %v %v", r, ok)
	}
	d := v.Inbound(Policy{})
	if d.Action != Deliver || d.Header != `clean; engines=builtin; encrypted="secret.zip/plan.doc"` {
		t.Errorf("decision %+v", d)
	}
	if d := v.Inbound(Policy{Encrypted: Reject}); d.Action != DiscardMessage {
		t.Errorf("decision %+v", d)
	}
}

func TestOversize(t *testing.T) {
	s := newTestScanner(t, Limits{})
	big := bytes.Repeat([]byte("a"), DefaultMaxMessageSize+1)
	raw := append([]byte("Subject: big\r\n\r\n"), big...)
	v := mustScan(t, s, raw)
	if v.Scanned || len(v.Findings) != 1 || v.Findings[0].Condition != Oversize {
		t.Fatalf("verdict %s", v)
	}
	if r, ok := v.Submission(""); ok || r.String() != "552 5.2.3 Message exceeds maximum size." {
		t.Errorf("reply %v", r)
	}
	if !s.Limits().TooLarge(DefaultMaxMessageSize+1) || s.Limits().TooLarge(DefaultMaxMessageSize) {
		t.Error("TooLarge")
	}
	v2, err := s.ScanReader(context.Background(), bytes.NewReader(raw))
	if err != nil || v2.Findings[0].Condition != Oversize {
		t.Errorf("ScanReader: %v %v", v2, err)
	}
	if d := v.Inbound(Policy{Oversize: Accept}); d.Action != Deliver || d.Header != "unchecked; engines=builtin; reason=oversize" {
		t.Errorf("decision %+v", d)
	}
	if d := v.Inbound(Policy{}); d.Action != DiscardMessage || d.Reply != ReplyOversize {
		t.Errorf("decision %+v", d)
	}
}

func TestNestedRFC822(t *testing.T) {
	inner := mailWith("inner body", att{name: "eicar.com", data: []byte(EICAR)})
	raw := "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n" +
		"--outer\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
		"--outer\r\nContent-Type: message/rfc822\r\n\r\n" + string(inner) + "\r\n--outer--\r\n"
	s := newTestScanner(t, Limits{})
	v := mustScan(t, s, []byte(raw))
	f := wantFinding(t, v, Virus)
	if f.Part != "2.2" || !f.Attachment {
		t.Errorf("finding %+v", f)
	}
	d := v.Inbound(Policy{})
	if d.Action != DeliverStripped {
		t.Fatalf("decision %+v", d)
	}
	out, err := Strip([]byte(raw), d.Strip)
	if err != nil {
		t.Fatal(err)
	}
	v2 := mustScan(t, s, out)
	if v2.Infected() {
		t.Errorf("still infected:\n%s", out)
	}
	if !bytes.Contains(out, []byte("inner body")) || !bytes.Contains(out, []byte("see attached")) {
		t.Errorf("lost content:\n%s", out)
	}
}

func TestStripAttachment(t *testing.T) {
	raw := mailWith("hello there", att{name: "ok.txt", data: []byte("fine")}, att{name: "eicar.zip", data: zipOf(t, att{name: "eicar.com", data: []byte(EICAR)})})
	s := newTestScanner(t, Limits{})
	v := mustScan(t, s, raw)
	d := v.Inbound(Policy{})
	if d.Action != DeliverStripped || !d.Notify {
		t.Fatalf("decision %+v", d)
	}
	if d.Header != `stripped; engines=builtin; virus=Eicar-Test-Signature; file="eicar.zip/eicar.com"` {
		t.Errorf("header %q", d.Header)
	}
	out, err := Strip(raw, d.Strip)
	if err != nil {
		t.Fatal(err)
	}
	// everything before the removed part, and the closing boundary, unchanged
	i := bytes.Index(raw, []byte("Content-Type: application/octet-stream; name=\"eicar.zip\""))
	if !bytes.Equal(out[:i], raw[:i]) {
		t.Error("prefix changed")
	}
	if !bytes.HasSuffix(out, []byte("\r\n--BOUNDARY--\r\n")) {
		t.Errorf("suffix changed:\n%s", out)
	}
	if !bytes.Contains(out, []byte("eicar.zip")) || !bytes.Contains(out, []byte("Eicar-Test-Signature")) {
		t.Errorf("notice does not name file and virus:\n%s", out)
	}
	v2 := mustScan(t, s, out)
	if len(v2.Findings) != 0 || len(v2.Parts) != 4 {
		t.Errorf("after strip:\n%s\n%+v", v2, v2.Parts)
	}
	if v2.Parts[3].ContentType != "text/plain" {
		t.Errorf("notice part %+v", v2.Parts[3])
	}
}

func TestStripRoot(t *testing.T) {
	raw := "From: a@example.com\r\nSubject: x\r\nContent-Type: application/octet-stream; name=e.com\r\nContent-Transfer-Encoding: base64\r\nX-Other: kept\r\n\r\n" + b64lines([]byte(EICAR))
	s := newTestScanner(t, Limits{})
	v := mustScan(t, s, []byte(raw))
	if f := wantFinding(t, v, Virus); !f.Attachment || f.Part != "" {
		t.Errorf("finding %+v", f)
	}
	// the only part is infected: discard
	if d := v.Inbound(Policy{}); d.Action != DiscardMessage {
		t.Errorf("decision %+v", d)
	}
	out, err := Strip([]byte(raw), v.Findings)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, []byte("From: a@example.com\r\nSubject: x\r\nX-Other: kept\r\nContent-Type: text/plain")) {
		t.Errorf("out:\n%s", out)
	}
	if mustScan(t, s, out).Infected() {
		t.Error("still infected")
	}
}

func TestEveryPartInfected(t *testing.T) {
	raw := mailWith("", att{name: "a.com", data: []byte(EICAR)}, att{name: "b.zip", data: zipOf(t, att{name: "e", data: []byte(EICAR)})})
	s := newTestScanner(t, Limits{})
	v := mustScan(t, s, raw) // blank body, a preamble, two infected attachments
	if d := v.Inbound(Policy{}); d.Action != DiscardMessage || d.Reply != ReplyVirus {
		t.Errorf("decision %+v\n%+v", d, v.Parts)
	}
}

func TestInboundCombos(t *testing.T) {
	// virus in an attachment + depth exceeded elsewhere
	raw := mailWith("hi", att{name: "e.com", data: []byte(EICAR)}, att{name: "deep.zip", data: nestedZip(t, 11, []byte("x"))})
	s := newTestScanner(t, Limits{})
	v := mustScan(t, s, raw)
	if d := v.Inbound(Policy{}); d.Action != DiscardMessage || d.Reply != ReplyVirus {
		t.Errorf("default: %+v", d)
	}
	d := v.Inbound(Policy{Depth: Accept})
	if d.Action != DeliverStripped || len(d.Unchecked) != 1 || d.Header != `stripped; engines=builtin; reason=depth; virus=Eicar-Test-Signature; file=e.com` {
		t.Errorf("depth accepted: %+v", d)
	}
	if r, _ := v.Submission(""); r != ReplyVirus {
		t.Errorf("submission %v", r)
	}
}

type failEngine struct{ openErr bool }

func (failEngine) Name() string { return "broken" }
func (f failEngine) Open(ctx context.Context, name string) (Stream, error) {
	if f.openErr {
		return nil, errors.New("connection refused")
	}
	return failStream{}, nil
}

type failStream struct{}

func (failStream) Write(p []byte) (int, error) { return len(p), nil }
func (failStream) Close() (Result, error)      { return Result{}, errors.New("timeout") }

func TestEngineFailure(t *testing.T) {
	b, _ := NewBuiltin("", nil)
	for _, fe := range []failEngine{{true}, {false}} {
		s := newTestScanner(t, Limits{}, b, fe)
		v, err := s.Scan(context.Background(), mailWith("hi", att{name: "e.com", data: []byte(EICAR)}))
		if !errors.Is(err, ErrUnavailable) || v == nil {
			t.Errorf("err = %v", err)
		}
		var ee *EngineError
		if !errors.As(err, &ee) || ee.Engine != "broken" {
			t.Errorf("err = %#v", err)
		}
	}
	if ReplyTempFail.String() != "451 4.7.1 Virus check temporarily unavailable, try again later." || !ReplyTempFail.Temporary() {
		t.Error(ReplyTempFail)
	}
}

type readerEng struct{}

func (readerEng) Name() string { return "reader" }
func (readerEng) Scan(ctx context.Context, name string, r io.Reader) (Result, error) {
	b, err := io.ReadAll(r)
	if bytes.Contains(b, []byte("MAGIC")) {
		return Result{Virus: "Magic"}, err
	}
	return Result{}, err
}

func TestReaderEngine(t *testing.T) {
	s := newTestScanner(t, Limits{}, FromReaderEngine(readerEng{}))
	v := mustScan(t, s, mailWith("hi", att{name: "m.zip", data: zipOf(t, att{name: "m.txt", data: []byte("xx MAGIC yy")})}))
	if f := wantFinding(t, v, Virus); f.Engine != "reader" || f.Path != "m.zip/m.txt" {
		t.Errorf("%+v", f)
	}
}

func TestFileNames(t *testing.T) {
	raw := "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=iso-2022-jp''%1B%24B%3F9ED%1B%28B.com\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64lines([]byte(EICAR)) +
		"--b\r\nContent-Type: application/octet-stream; name=\"=?UTF-8?B?6KuL5rGC5pu4LmNvbQ==?=\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64lines([]byte(EICAR)) +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment;\r\n filename*0*=utf-8''%E5%A0%B1;\r\n filename*1=\"告.com\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64lines([]byte(EICAR)) +
		"--b--\r\n"
	s := newTestScanner(t, Limits{})
	v := mustScan(t, s, []byte(raw))
	var names []string
	for _, f := range v.Only(Virus) {
		names = append(names, f.FileName)
	}
	want := []string{"森田.com", "請求書.com", "報告.com"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("names %q, want %q", names, want)
	}
}

func TestHeaderValueEscaping(t *testing.T) {
	got := HeaderValue(StatusStripped, []string{"builtin", "clamd"}, [2]string{"virus", "Eicar"}, [2]string{"file", "請求\"書.zip"})
	want := `stripped; engines=builtin,clamd; virus=Eicar; file="%E8%AB%8B%E6%B1%82\"%E6%9B%B8.zip"`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestContextCanceled(t *testing.T) {
	s := newTestScanner(t, Limits{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	v, err := s.Scan(ctx, mailWith("hi", att{name: "a.zip", data: zipOf(t, att{name: "x", data: []byte("y")})}))
	if !errors.Is(err, context.Canceled) || v == nil {
		t.Errorf("err %v", err)
	}
}
