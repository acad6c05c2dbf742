package spam

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
)

func has(t *testing.T, toks []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(toks, w) {
			t.Errorf("token %q missing from %q", w, toks)
		}
	}
}

func hasNot(t *testing.T, toks []string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if slices.Contains(toks, b) {
			t.Errorf("token %q should not be there: %q", b, toks)
		}
	}
}

func TestTokenizeHeaderAndText(t *testing.T) {
	msg := "Received: from evil.test by mx.example.com; Mon, 1 Jan 2024 00:00:00 +0000\r\n" +
		"X-Yubin-Spam: yes; score=0.99\r\n" +
		"Authentication-Results: mx.example.com; spf=softfail smtp.mailfrom=a@b.test; dkim=none\r\n" +
		"From: \"Cheap Pills\" <Sales@Pharma.TEST>\r\n" +
		"To: a@example.com, b@example.com\r\n" +
		"Subject: =?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte("FREE Viagra NOW!!")) + "?=\r\n" +
		"Message-ID: <123@pharma.test>\r\n" +
		"X-Mailer: BulkMailer 3.1\r\n" +
		"\r\n" +
		"Buy now at http://www.Shop.pharma.test/buy?x=1 and save $100.\r\n" +
		"Visit https://10.0.0.1/x too. " + strings.Repeat("a", 60) + "\r\n"
	toks := Tokenize([]byte(msg))
	has(t, toks, "subject:free", "subject:viagra", "subject:shape:!!", "from:addr:sales@pharma.test",
		"from:dom:pharma.test", "from:name:cheap", "from:name:pills", "to:n:2-5", "to:dom:example.com",
		"message-id:@pharma.test", "x-mailer:bulkmailer", "h:x-mailer", "auth:spf=softfail", "auth:dkim=none",
		"buy", "now", "save", "$100", "url:shop.pharma.test", "url:pharma.test", "url:ip", "skip:a60")
	hasNot(t, toks, "h:x-yubin-spam", "h:received", "yes", "evil.test", "mx.example.com")
	if !slices.IsSorted(toks) {
		t.Error("tokens are not sorted")
	}
}

func TestTokenizeMIME(t *testing.T) {
	html := "<html><head><style>p { color: red }</style><script>var secretword = 1;</script></head>" +
		"<body><!-- hidden comment --><p>Caf&eacute; <b>winner</b></p><a href=\"https://click.track.example.net/r\">here</a><img src=x></body></html>"
	msg := "From: a@b.test\r\nSubject: hi\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=XX\r\n\r\n" +
		"--XX\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"Gr=FC=DFe aus M=FCnchen\r\n" +
		"--XX\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte(html)) + "\r\n" +
		"--XX\r\nContent-Type: text/plain; charset=iso-2022-jp\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		// "迷惑メール" in ISO-2022-JP
		base64.StdEncoding.EncodeToString([]byte("\x1b$BLBOG%a!<%k\x1b(B")) + "\r\n" +
		"--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"invoice.EXE\"\r\n\r\nMZ\r\n" +
		"--XX--\r\n"
	toks := Tokenize([]byte(msg))
	has(t, toks, "grüße", "münchen", "café", "winner", "here", "url:click.track.example.net", "url:example.net",
		"html:img", "html:b", "mime:text/html", "charset:iso-8859-1", "mime:application/octet-stream", "file:.exe",
		"迷惑", "惑メ", "メー", "ール")
	hasNot(t, toks, "secretword", "color", "hidden", "comment", "red")
}

// maxTokenBytes bounds a token: a field's prefix and a clipped value.
const maxTokenBytes = MaxTokenLen + 16

func TestTokenizeBounded(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("Subject: many\r\n\r\n")
	for i := 0; b.Len() < 2<<20; i++ {
		b.WriteString("word")
		b.WriteString(strings.Repeat("x", i%30))
		b.WriteString(string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26)) + " ")
	}
	toks := Tokenize(b.Bytes())
	if len(toks) > MaxTokens {
		t.Errorf("%d tokens, more than %d", len(toks), MaxTokens)
	}
	for _, tok := range toks {
		if len(tok) > maxTokenBytes {
			t.Errorf("token of %d bytes", len(tok))
		}
	}
}

func TestTokenizeMalformed(t *testing.T) {
	for _, msg := range []string{
		"",
		"no header at all, just text with words",
		"Subject: x\r\nContent-Type: multipart/mixed; boundary=\"\r\n\r\n--\r\n",
		"Content-Type: multipart/mixed\r\n\r\nbody without boundary words",
		"Content-Type: text/plain; charset=nonsense-charset\r\n\r\nstill some words",
		"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64 ~~~",
		"From: <<<@@@>>>\r\nTo: ,,,\r\n\r\nwords",
		strings.Repeat("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n", 50),
	} {
		Tokenize([]byte(msg)) // must not panic
	}
	toks := Tokenize([]byte("Content-Type: text/plain; charset=nonsense-charset\r\n\r\nstill some words"))
	has(t, toks, "still", "some", "words")
}

func TestTokenizeHeaderFields(t *testing.T) {
	toks := TokenizeHeader([]byte("Authentication-Results: mx.example.com;\r\n\tspf=fail smtp.mailfrom=x@y.test;\r\n\tdkim=pass header.d=y.test;\r\n\tdmarc=fail header.from=y.test\r\nX-Yubin-Scan: clean\r\n"))
	has(t, toks, "auth:spf=fail", "auth:dkim=pass", "auth:dmarc=fail", "h:authentication-results")
	hasNot(t, toks, "h:x-yubin-scan")
}

// Received fields give the registered domains of the hosts they name and
// the networks of IPv4 addresses, never their ids or dates; only the first
// MaxReceived fields count.
func TestTokenizeReceived(t *testing.T) {
	msg := "Received: from mail.Shop.example.co.uk (relay7.bulk.test [192.0.2.77])\r\n" +
		"\tby mx.example.com with ESMTP id 4F2A; Mon, 1 Jan 2024 00:00:00 +0000\r\n" +
		"Received: from [2001:db8::1] by 10.1.2.3 with SMTP\r\n" +
		strings.Repeat("Received: from far.away.test by x.test\r\n", MaxReceived) +
		"Received: from beyond.test\r\n" +
		"Subject: hi\r\n\r\nbody\r\n"
	toks := Tokenize([]byte(msg))
	has(t, toks, "received:example.co.uk", "received:bulk.test", "received:example.com",
		"received:ip:192.0.2", "received:ip:192.0", "received:ip:10.1.2", "received:away.test", "received:x.test")
	hasNot(t, toks, "received:4f2a", "received:beyond.test", "received:mail.shop.example.co.uk", "received:co.uk", "h:received")
}

// From's registered domain is a token of its own when it differs from
// the domain (news.shop.example.co.uk → shop.example.co.uk).
func TestTokenizeFromOrg(t *testing.T) {
	toks := Tokenize([]byte("From: News <n@mail3.news.Shop.example.co.uk>\r\nTo: a@b.example\r\n\r\nx\r\n"))
	has(t, toks, "from:dom:mail3.news.shop.example.co.uk", "from:org:example.co.uk")
	toks = Tokenize([]byte("From: n@example.org\r\n\r\nx\r\n"))
	hasNot(t, toks, "from:org:example.org")
}

func FuzzTokenize(f *testing.F) {
	f.Add([]byte("Subject: hi\r\n\r\nhello http://a.b/c"))
	f.Add([]byte("Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<a href=http://x.y>z</a><script>\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body"))
	f.Add([]byte("Subject: x\r\n\r\n3.\xe3\x81\x82 a@\xff b/"))
	f.Add([]byte("Subject: =?iso-2022-jp?B?GyRCJEgbKEI=?=\r\nFrom: =?utf-8?q?=E3=81=82?= <a@b>\r\n\r\n日本語のテキスト"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		toks := Tokenize(raw)
		if len(toks) > MaxTokens {
			t.Fatalf("%d tokens", len(toks))
		}
		if !slices.IsSorted(toks) {
			t.Fatal("not sorted")
		}
		for i, tok := range toks {
			if tok == "" || i > 0 && toks[i-1] == tok || len(tok) > maxTokenBytes {
				t.Fatalf("empty, repeated or long token %q", tok)
			}
		}
		TokenizeHeader(raw)
	})
}

// Fields a mail reader or local delivery agent wrote tell where a message
// was kept, not who sent it: none of them gives a token.
func TestTokenizeSkipsLocalFields(t *testing.T) {
	msg := "Return-Path: <bounce-42@lists.example.net>\r\nStatus: RO\r\nX-Status: A\r\nX-Keywords: $Junk\r\nX-UID: 42\r\nDelivery-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n" +
		"Content-Length: 12\r\nLines: 1\r\nX-Mozilla-Status: 0001\r\nX-Spam-Status: No, score=-2.0\r\nX-Spam-Flag: NO\r\n" +
		"From: someone@example.org\r\nSubject: hello\r\n\r\nhello there\r\n"
	toks := Tokenize([]byte(msg))
	has(t, toks, "h:from", "subject:hello", "hello")
	for _, tok := range toks {
		for _, bad := range []string{"return-path", "bounce", "lists.example.net", "status", "keywords", "x-uid", "delivery-date", "content-length", "h:lines", "mozilla", "x-spam", "junk", "score"} {
			if strings.Contains(tok, bad) {
				t.Errorf("token %q comes from a local field", tok)
			}
		}
	}
}

// The fields a list manager writes on every message count as one piece of
// evidence, List-Id's tokens: their names give no tokens of their own.
func TestTokenizeListFields(t *testing.T) {
	msg := "From: someone@example.org\r\nSubject: hi\r\nList-Id: Friends of Rohit <fork.xent.com>\r\n" +
		"List-Unsubscribe: <mailto:fork-request@xent.com?subject=unsubscribe>\r\nList-Post: <mailto:fork@xent.com>\r\n" +
		"List-Help: <mailto:fork-request@xent.com?subject=help>\r\nList-Subscribe: <mailto:fork-request@xent.com>\r\n" +
		"List-Archive: <http://xent.com/pipermail/fork/>\r\nX-Mailman-Version: 2.0.11\r\nX-BeenThere: fork@xent.com\r\n" +
		"Errors-To: fork-admin@xent.com\r\nPrecedence: bulk\r\n\r\nhello there\r\n"
	toks := Tokenize([]byte(msg))
	has(t, toks, "h:list-id", "list-id:fork.xent.com", "h:precedence", "precedence:bulk", "hello")
	hasNot(t, toks, "h:list-unsubscribe", "h:list-post", "h:list-help", "h:list-subscribe", "h:list-archive",
		"h:x-mailman-version", "h:x-beenthere", "h:errors-to")
}
