package mailtext

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func render(raw string) View { return Render(strings.NewReader(raw)) }

// activeHTML matches what a browser would take for markup or script.
var activeHTML = regexp.MustCompile(`(?i)<\s*/?\s*(script|style|iframe|object|embed|img|a|b|p|div|html|body|head|svg|form|input|meta|link)\b|javascript:|on(click|load|error)\s*=`)

func TestHTMLBecomesText(t *testing.T) {
	raw := "From: =?UTF-8?B?5pel5pys?= <spam@spam.test>\r\n" +
		"Subject: =?ISO-8859-1?Q?Gr=FC=DFe?= from us\r\n" +
		"Content-Type: text/html; charset=utf-8\r\n" +
		"\r\n" +
		"<html><head><title>a title</title><style>body{color:red}</style>\r\n" +
		"<script>alert('head')</script></head>\r\n" +
		"<body onload=\"steal()\"><p>Hello <b>dear</b>   customer,</p>\r\n" +
		"<script type=\"text/javascript\">document.location='http://evil.test/'</script>\r\n" +
		"<div>Click <a href=\"http://phish.test/login\" onclick=\"x()\">here</a> &amp; win &lt;3</div>\r\n" +
		"<img src=\"http://track.test/p.gif\" alt=\"logo\" onerror=\"y()\">\r\n" +
		"<iframe src=\"http://evil.test/\">inner frame text</iframe><!-- a <script> in a comment -->\r\n" +
		"<ul><li>one</li><li>two</li></ul><pre>  kept   as is</pre></body></html>\r\n"
	v := render(raw)
	want := "Hello dear customer,\n\nClick here [http://phish.test/login] & win <3\n\n[image: logo]\n\n- one\n- two\n\n  kept   as is\n"
	if v.Text != want {
		t.Errorf("text:\n%q\nwant\n%q", v.Text, want)
	}
	if activeHTML.MatchString(v.String()) {
		t.Errorf("active HTML shown:\n%s", v)
	}
	for _, gone := range []string{"alert", "document.location", "color:red", "inner frame", "a title", "steal", "track.test"} {
		if strings.Contains(v.String(), gone) {
			t.Errorf("%q shown:\n%s", gone, v)
		}
	}
	if h := v.Header; len(h) != 3 || h[0].Value != "日本 <spam@spam.test>" || h[1].Value != "Grüße from us" {
		t.Errorf("header %q", h)
	}
	if len(v.Parts) != 1 || v.Parts[0].Type != "text/html" || !v.Parts[0].Shown {
		t.Errorf("parts %+v", v.Parts)
	}
}

func TestAlternativesAndAttachments(t *testing.T) {
	raw := "Subject: mixed\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=outer\r\n\r\n" +
		"--outer\r\n" +
		"Content-Type: multipart/alternative; boundary=alt\r\n\r\n" +
		"--alt\r\n" +
		"Content-Type: text/html\r\n\r\n" +
		"<p>the <script>x()</script>HTML version</p>\r\n" +
		"--alt\r\n" +
		"Content-Type: text/plain; charset=iso-2022-jp\r\n" +
		"Content-Transfer-Encoding: 7bit\r\n\r\n" +
		"\x1b$B$3$s$K$A$O\x1b(B plain\r\n" +
		"--alt--\r\n" +
		"--outer\r\n" +
		"Content-Type: application/pdf; name=\"invoice.pdf\"\r\n" +
		"Content-Disposition: attachment; filename=\"invoice.pdf\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" +
		"JVBERi0xLjQK\r\n" +
		"--outer\r\n" +
		"Content-Type: text/html\r\n" +
		"Content-Disposition: attachment; filename=\"page.html\"\r\n\r\n" +
		"<script>not shown</script>\r\n" +
		"--outer--\r\n"
	v := render(raw)
	if v.Text != "こんにちは plain\n" {
		t.Errorf("text %q", v.Text)
	}
	want := []Part{{Type: "text/html", Size: 43}, {Type: "text/plain", Size: 21, Shown: true},
		{Type: "application/pdf", Name: "invoice.pdf", Size: 9}, {Type: "text/html", Name: "page.html", Size: 26}}
	if len(v.Parts) != len(want) {
		t.Fatalf("parts %+v", v.Parts)
	}
	for i := range want {
		if v.Parts[i] != want[i] {
			t.Errorf("part %d: %+v, want %+v", i, v.Parts[i], want[i])
		}
	}
	if s := v.String(); !strings.Contains(s, `"invoice.pdf" application/pdf, 9 bytes`) || strings.Contains(s, "<script") {
		t.Errorf("String:\n%s", s)
	}
}

func TestHTMLSentAsPlainText(t *testing.T) {
	v := render("Subject: x\r\n\r\n  <html><body><script>alert(1)</script>Hi there</body></html>\r\n")
	if v.Text != "Hi there\n" {
		t.Errorf("text %q", v.Text)
	}
	// Plain text that merely mentions a tag stays as written.
	v = render("Subject: x\r\n\r\nuse <b> for bold\r\n")
	if v.Text != "use <b> for bold\n" {
		t.Errorf("text %q", v.Text)
	}
}

func TestTerminalControlsRemoved(t *testing.T) {
	v := render("Subject: \x1b[2J\x1b]0;owned\x07 clear =?UTF-8?Q?=E2=80=AEevil?=\r\n\r\nline\x1b[31m red\r\nnext\x00\x08\u009b\x9b line\r\n")
	if v.Header[0].Value != "[2J]0;owned clear evil" {
		t.Errorf("subject %q", v.Header[0].Value)
	}
	if v.Text != "line[31m red\nnext\uFFFD line\n" { // a byte that is not UTF-8 is U+FFFD
		t.Errorf("text %q", v.Text)
	}
	for _, r := range v.String() {
		if unsafe(r) && r != '\n' {
			t.Errorf("control %U shown", r)
		}
	}
}

func TestBounds(t *testing.T) {
	big := strings.Repeat("word ", MaxText) // 5 × MaxText bytes
	v := render("Subject: big\r\n\r\n" + big)
	if !v.Truncated || len(v.Text) > MaxText+1 {
		t.Errorf("truncated %v, %d bytes of text", v.Truncated, len(v.Text))
	}
	var parts strings.Builder
	parts.WriteString("Content-Type: multipart/mixed; boundary=b\r\n\r\n")
	for range MaxParts + 50 {
		parts.WriteString("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n")
	}
	parts.WriteString("--b--\r\n")
	if v := render(parts.String()); len(v.Parts) != MaxParts || !v.Truncated {
		t.Errorf("%d parts, truncated %v", len(v.Parts), v.Truncated)
	}
	// Nesting deeper than MaxDepth.
	var nest strings.Builder
	for i := range MaxDepth + 5 {
		nest.WriteString("Content-Type: multipart/mixed; boundary=b" + strings.Repeat("x", i) + "\r\n\r\n--b" + strings.Repeat("x", i) + "\r\n")
	}
	nest.WriteString("Content-Type: text/plain\r\n\r\ndeep\r\n")
	if v := render(nest.String()); !v.Truncated || strings.Contains(v.Text, "deep") {
		t.Errorf("deep nesting: %+v", v)
	}
}

func TestUnparsable(t *testing.T) {
	v := render("no header at all, just \x1b[1mtext\r\n")
	if v.Text == "" && v.Problem == "" {
		t.Fatalf("nothing shown: %+v", v)
	}
	if strings.ContainsRune(v.String(), 0x1b) {
		t.Errorf("escape shown: %q", v.String())
	}
}

func FuzzRender(f *testing.F) {
	f.Add("Subject: a\r\nContent-Type: text/html\r\n\r\n<p>x<script>y</script>")
	f.Add("Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<a href=x>y</a>\r\n--b--")
	f.Add("\x1b[0m: x\r\n\r\n\x00")
	f.Fuzz(func(t *testing.T, raw string) {
		v := render(raw)
		if len(v.Text) > MaxText+1 || len(v.Parts) > MaxParts || len(v.Header) > MaxFields {
			t.Fatalf("unbounded: %d bytes of text, %d parts, %d fields", len(v.Text), len(v.Parts), len(v.Header))
		}
		s := v.String()
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8: %q", s)
		}
		for _, r := range s {
			if unsafe(r) {
				t.Fatalf("control %U in %q", r, s)
			}
		}
	})
}
