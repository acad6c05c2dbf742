// Package headertest holds header sections that real mailboxes hold, with
// the mailheader.Summary each must give: for the parser's tests and for a
// store's summary cache.
package headertest

import (
	"reflect"
	"time"

	"yubin/internal/mailheader"
)

// Case is a message and the summary of its header.
type Case struct {
	Name string
	Msg  string
	Want mailheader.Summary
}

// Odd are headers a real mailbox holds, with the summary each must give.
var Odd = []Case{
	{"plain",
		"From: Alice Example <alice@example.org>\r\nTo: info@example.com\r\nSubject: hello\r\n" +
			"Date: Mon, 02 Jan 2006 15:04:05 +0100\r\nMessage-ID: <1@example.org>\r\n\r\nbody\r\n",
		mailheader.Summary{Date: time.Date(2006, 1, 2, 15, 4, 5, 0, time.FixedZone("", 3600)), Subject: "hello",
			From: []mailheader.Address{addr("Alice Example", "alice", "example.org")}, To: []mailheader.Address{addr("", "info", "example.com")},
			MessageID: "1@example.org"}},
	{"encoded words",
		"From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <jm@example.de>\r\n" +
			"To: =?ISO-8859-1?Q?Fran=E7ois?= <f@example.fr>, \"Bob, Jr.\" <bob@example.com>\r\n" +
			"Subject: =?UTF-8?Q?caf=C3=A9_?= =?UTF-8?B?5pel5pys?= and more\r\n" +
			"Date: 2 Jan 2006 15:04:05 -0800 (PST)\r\n\r\n",
		mailheader.Summary{Date: time.Date(2006, 1, 2, 15, 4, 5, 0, time.FixedZone("", -8*3600)), Subject: "café 日本 and more",
			From: []mailheader.Address{addr("Jürgen Müller", "jm", "example.de")},
			To:   []mailheader.Address{addr("François", "f", "example.fr"), addr("Bob, Jr.", "bob", "example.com")}}},
	{"missing fields", "X-Nothing: here\r\n\r\nbody\r\n", mailheader.Summary{}},
	{"no header at all", "\r\njust a body\r\n", mailheader.Summary{}},
	{"no body", "Subject: only a header\r\nFrom: a@example.org", mailheader.Summary{Subject: "only a header",
		From: []mailheader.Address{addr("", "a", "example.org")}}},
	{"groups",
		"From: a@example.org\r\nTo: undisclosed-recipients:;\r\n" +
			"Cc: Team: b@example.org, Carol <c@example.org>;, d@example.org\r\n\r\n",
		mailheader.Summary{From: []mailheader.Address{addr("", "a", "example.org")},
			To: []mailheader.Address{{Mailbox: "undisclosed-recipients"}, {}},
			Cc: []mailheader.Address{{Mailbox: "Team"}, addr("", "b", "example.org"), addr("Carol", "c", "example.org"), {},
				addr("", "d", "example.org")}}},
	{"source route and comment name",
		"From: <@relay1.example, @relay2.example:a@example.org>\r\nSender: s@example.org (The Sender)\r\n" +
			"To: a@example.org, broken@, \"Quoted: name\" <q@example.org>, (only a comment)\r\n\r\n",
		mailheader.Summary{From: []mailheader.Address{{Route: "@relay1.example,@relay2.example", Mailbox: "a", Host: "example.org"}},
			Sender: []mailheader.Address{addr("The Sender", "s", "example.org")},
			To:     []mailheader.Address{addr("", "a", "example.org"), addr("Quoted: name", "q", "example.org")}}},
	{"folded, repeated and noisy",
		"Received: from x\r\n\tby y; Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
			"DKIM-Signature: v=1; a=rsa-sha256;\r\n b=AAAA\r\n" +
			"subject: a long\r\n subject line\r\n" +
			"FROM: a@example.org\r\n" +
			"Sender: s@example.org\r\nReply-To: r@example.org\r\nBcc: x@example.org\r\n" +
			"In-Reply-To: <a@x> <b@y>\r\nMessage-Id:   <m@z>  \r\n\r\n",
		mailheader.Summary{Subject: "a long subject line", From: []mailheader.Address{addr("", "a", "example.org")},
			Sender: []mailheader.Address{addr("", "s", "example.org")}, ReplyTo: []mailheader.Address{addr("", "r", "example.org")},
			Bcc: []mailheader.Address{addr("", "x", "example.org")}, InReplyTo: []string{"a@x", "b@y"}, MessageID: "m@z"}},
	{"malformed line stops the header",
		"From: a@example.org\r\nthis is not a field\r\nSubject: lost\r\n\r\n",
		mailheader.Summary{From: []mailheader.Address{addr("", "a", "example.org")}}},
	{"bad values",
		"From: not an address\r\nTo: <@>\r\nDate: yesterday\r\nSubject: =?x-unknown?Q?abc?=\r\n\r\n",
		mailheader.Summary{Subject: "=?x-unknown?Q?abc?="}},
	{"bare LF", "Subject: lf\nFrom: a@example.org\n\nbody\n",
		mailheader.Summary{Subject: "lf", From: []mailheader.Address{addr("", "a", "example.org")}}},
}

// Same compares summaries, dates by instant and offset.
func Same(a, b mailheader.Summary) bool {
	_, oa := a.Date.Zone()
	_, ob := b.Date.Zone()
	if !a.Date.Equal(b.Date) || oa != ob {
		return false
	}
	a.Date, b.Date = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func addr(name, mailbox, host string) mailheader.Address {
	return mailheader.Address{Name: name, Mailbox: mailbox, Host: host}
}
