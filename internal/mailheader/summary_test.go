package mailheader_test

import (
	"bytes"
	"testing"

	"yubin/internal/mailheader"
	"yubin/internal/testutil/headertest"
)

func TestEncoding(t *testing.T) {
	for _, h := range headertest.Odd {
		b := mailheader.Encode(&h.Want)
		got, ok := mailheader.Decode(b)
		if !ok || !headertest.Same(got, h.Want) {
			t.Errorf("%s: round trip gave %+v, %v", h.Name, got, ok)
		}
		// Every truncation and every flipped byte is refused or decodes
		// to something, never a panic.
		for i := range b {
			if _, ok := mailheader.Decode(b[:i]); ok {
				t.Errorf("%s: truncated at %d decodes", h.Name, i)
			}
			c := bytes.Clone(b)
			c[i] ^= 0xff
			mailheader.Decode(c)
		}
	}
	// An entry of another version is a miss.
	b := mailheader.Encode(&headertest.Odd[0].Want)
	b[0]++ // another Version
	if _, ok := mailheader.Decode(b); ok {
		t.Error("other version decodes")
	}
}

// Leaving out the fields an envelope does not use changes nothing.
func TestFilterFields(t *testing.T) {
	extra := []string{
		"",
		"Received: from a\r\n\tby b\r\n",
		" leading space\r\nSubject: x\r\n",
		"X-Bad Key: v\r\nSubject: y\r\n",
		": empty key\r\nSubject: z\r\n",
		"Subject\r\n : continued key\r\n",
	}
	for _, x := range extra {
		for _, h := range headertest.Odd {
			msg := x + h.Msg
			hdr := []byte(msg[:mailheader.HeaderSize([]byte(msg))])
			want := mailheader.ParseAll(hdr)
			if got := mailheader.Parse(bytes.Clone(hdr)); !headertest.Same(got, want) {
				t.Errorf("%q + %s:\n got %+v\nwant %+v", x, h.Name, got, want)
			}
		}
	}
}

func TestHasSummaryFields(t *testing.T) {
	for hdr, want := range map[string]bool{
		"":                                     false,
		"X-Spam: yes\r\nDelivered-To: a@b\r\n": false,
		"X-Note: Subject: no\r\n":              false,
		"X-Fold: a\r\n From: no\r\n":           false,
		"Received: x\r\nsubject: yes\r\n":      true,
		"TO : a@b\r\n":                         true,
		"Message-ID: <x@y>\n":                  true,
	} {
		if got := mailheader.HasSummaryFields([]byte(hdr)); got != want {
			t.Errorf("%q: %v, want %v", hdr, got, want)
		}
	}
}
