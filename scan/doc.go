// Package scan is Yubin's virus scanner (SPEC section 4): it walks a
// message's MIME tree, decodes every part, expands archives recursively
// under hard limits, and hands every file to the configured engines.
//
// # Scanning
//
//	b, err := scan.NewBuiltin("/var/lib/yubin/signatures", log) // EICAR + .hdb/.hsb/.pat/.ndb
//	stop := b.Watch(5 * time.Second)                           // reload on change; b.Reload() on SIGHUP
//	c, err := scan.NewClamd(scan.ClamdConfig{Address: "unix:/run/clamav/clamd.ctl"})
//	s, err := scan.New(scan.Config{Engines: []scan.Engine{b, c}})
//	v, err := s.Scan(ctx, raw)
//
// Every MIME leaf part (after base64/quoted-printable decoding; text and
// HTML bodies included; parts of nested message/rfc822 too), every archive
// found in one (zip, gzip, bzip2, tar, tar.gz, recognized by content), and
// every archive member is read once and written to all engines at the same
// time. Archives are streamed: only a zip that is itself an archive member
// is spooled (in memory up to Limits.SpoolMemory, then a temp file), and
// every decompressed byte is counted as it is produced, so a zip bomb ends
// at the first limit with bounded memory. 7z is not expanded (no pure-Go
// reader with bounded memory: LZMA dictionaries are sized by the header);
// a 7z file is still passed whole to the engines (clamd unpacks it).
//
// Malformed input never fails a scan: a missing boundary, a broken header
// or bad base64 gives a Malformed finding (informational) and the raw
// bytes are scanned as well.
//
// # Using a Verdict (for the SMTP integration)
//
// Before DATA, and while reading it: Limits.TooLarge(size) (5 MiB).
// Scan gives the Oversize verdict for a bigger message without reading it.
//
// If Scan returns an error, answer ReplyTempFail (451 4.7.1) on both
// submission and inbound, whatever the verdict: errors.Is(err,
// ErrUnavailable) tells that an engine (clamd) was down. Never deliver.
//
// Submission (587/465): reply, ok := v.Submission(encryptedPolicy); if
// !ok, reject the whole message with reply (VC01..VC04, 552 5.2.3); else
// accept and add the header HeaderName: v.HeaderValue().
//
// Inbound (25): for each recipient, d := v.Inbound(policyOfAccount):
//
//   - Deliver: deliver raw with the header HeaderName: d.Header (clean, or
//     unchecked with the reasons the account accepted).
//   - DeliverStripped: out, _ := Strip(raw, d.Strip); deliver out with
//     HeaderName: d.Header; send the recipient a warning mail (d.Strip
//     names the viruses and files).
//   - DiscardMessage: deliver nothing; send the recipient a report mail
//     with the original headers (d.Reasons: conditions, viruses, files;
//     Condition.ReasonJA gives the report's 判断理由 lines).
//
// If every recipient's action is DiscardMessage, refuse the transaction
// with d.Reply instead of 250 (all recipients' Replies are the same
// message's worst condition except when policies differ: use any). Record
// every stopped message (v.Findings: condition, virus, file path).
//
// # Header
//
// HeaderName is X-Yubin-Scan. Its value is a status word and parameters:
//
//	X-Yubin-Scan: clean; engines=builtin,clamd
//	X-Yubin-Scan: clean; engines=builtin; encrypted="secret.zip/plan.docx"
//	X-Yubin-Scan: stripped; engines=builtin; virus=Eicar-Test-Signature; file="invoice.zip/eicar.com"
//	X-Yubin-Scan: unchecked; engines=builtin; reason=oversize
//
// The integrator should remove any X-Yubin-Scan header already in an
// incoming message before adding its own.
//
// # Engines
//
// An Engine opens a Stream per file; a Stream is an io.Writer whose Close
// returns the Result. ReaderEngine adapts engines that want an io.Reader.
// See Builtin for the signature file formats and Clamd for clamd.
package scan
