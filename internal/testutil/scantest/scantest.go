// Package scantest builds the scanning test corpus — messages, archives,
// nested archives, zip bombs made by streaming zeros, partial and encrypted
// cases — in memory, so no test ships a binary blob. EICAR is the industry
// test string, not malware.
package scantest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// EICAR is the EICAR anti-virus test file.
const EICAR = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`

// File is an attachment or archive member.
type File struct {
	Name string
	Type string // Content-Type for attachments; "" = application/octet-stream
	Data []byte
}

// B64Lines is data in base64, 76 characters a line, CRLF-terminated.
func B64Lines(data []byte) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.String()
}

// Mail builds a multipart/mixed message from sender@remote.test with a text
// body and base64 attachments; headers are extra header lines (no CRLF).
func Mail(body string, files []File, headers ...string) []byte {
	var b strings.Builder
	b.WriteString("From: sender@remote.test\r\nTo: info@example.com\r\nSubject: test\r\nMIME-Version: 1.0\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Content-Type: multipart/mixed; boundary=\"BOUNDARY\"\r\n\r\n")
	b.WriteString("This is a multi-part message in MIME format.\r\n")
	b.WriteString("--BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n")
	for _, a := range files {
		ct := a.Type
		if ct == "" {
			ct = "application/octet-stream"
		}
		fmt.Fprintf(&b, "--BOUNDARY\r\nContent-Type: %s; name=\"%s\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"%s\"\r\n\r\n", ct, a.Name, a.Name)
		b.WriteString(B64Lines(a.Data))
	}
	b.WriteString("--BOUNDARY--\r\n")
	return []byte(b.String())
}

// HTMLMail is a single-part text/html message (base64) with body inside.
func HTMLMail(body string) []byte {
	html := "<html><body><p>" + body + "</p></body></html>"
	return []byte("From: sender@remote.test\r\nTo: info@example.com\r\nSubject: html\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + B64Lines([]byte(html)))
}

// Plain is a single-part text/plain message.
func Plain(body string) []byte {
	return []byte("From: sender@remote.test\r\nTo: info@example.com\r\nSubject: plain\r\n\r\n" + body + "\r\n")
}

// Zip archives files.
func Zip(files ...File) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		w, err := zw.Create(f.Name)
		if err != nil {
			panic(err)
		}
		w.Write(f.Data)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Tar archives files.
func Tar(files ...File) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Name: f.Name, Mode: 0o644, Size: int64(len(f.Data)), Typeflag: tar.TypeReg})
		tw.Write(f.Data)
	}
	tw.Close()
	return buf.Bytes()
}

// Gzip compresses data.
func Gzip(data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	return buf.Bytes()
}

// NestedZip puts inner into depth zips, one inside the other: depth 1 is
// a zip holding inner.
func NestedZip(depth int, inner File) []byte {
	f := inner
	for i := 1; i <= depth; i++ {
		f = File{Name: fmt.Sprintf("level%d.zip", i), Data: Zip(f)}
	}
	return f.Data
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// ZipOfZeros is a zip with one member of n zero bytes, streamed into the
// compressor (no n-byte buffer): 100 MiB compresses to about 100 KiB.
func ZipOfZeros(name string, n int64) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err != nil {
		panic(err)
	}
	if _, err := io.CopyN(w, zeros{}, n); err != nil {
		panic(err)
	}
	zw.Close()
	return buf.Bytes()
}

// EncryptedZip is a zip whose member has the "encrypted" flag set, as a
// traditional PKWARE-encrypted member has (12-byte encryption header, then
// the stored data), next to a plain readme.
func EncryptedZip(name string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	payload := bytes.Repeat([]byte{0xA5}, 12)
	for _, c := range []byte(EICAR) {
		payload = append(payload, c^0x5A)
	}
	w, err := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Store, Flags: 0x1,
		CRC32: crc32.ChecksumIEEE([]byte(EICAR)), CompressedSize64: uint64(len(payload)), UncompressedSize64: uint64(len(EICAR))})
	if err != nil {
		panic(err)
	}
	w.Write(payload)
	w2, _ := zw.Create("readme.txt")
	w2.Write([]byte("the password is 1234"))
	zw.Close()
	return b.Bytes()
}

// Partial is one part of a message/partial (RFC 2046) split message.
func Partial() []byte {
	return []byte("From: sender@remote.test\r\nTo: info@example.com\r\nSubject: part 1\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: message/partial; id=\"abc@remote.test\"; number=1; total=2\r\n\r\n" +
		"Subject: the whole\r\n\r\nfirst half\r\n")
}

// Big is a plain message of at least n bytes.
func Big(n int) []byte {
	hdr := "From: sender@remote.test\r\nTo: info@example.com\r\nSubject: big\r\n\r\n"
	line := strings.Repeat("y", 998) + "\r\n"
	var b strings.Builder
	b.WriteString(hdr)
	for b.Len() < n {
		b.WriteString(line)
	}
	return []byte(b.String())
}
