package imapwire

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(bufio.NewWriter(&buf))
	w.Raw("* ").Num(3).Raw(" FETCH ").Open().Raw("X ").String(`a"b\c`).SP().String("two\r\nlines").SP().
		String("caf\xc3\xa9").SP().NString("", true).SP().LiteralFrom(3, strings.NewReader("\x00bc"), true).Close().CRLF()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "* 3 FETCH (X \"a\\\"b\\\\c\" {10}\r\ntwo\r\nlines {5}\r\ncaf\xc3\xa9 NIL ~{3}\r\n\x00bc)\r\n"
	if buf.String() != want {
		t.Errorf("got  %q\nwant %q", buf.String(), want)
	}
	buf.Reset()
	w.UTF8 = true
	w.String("caf\xc3\xa9").Flush()
	if buf.String() != "\"caf\xc3\xa9\"" {
		t.Errorf("UTF8: %q", buf.String())
	}
	// A short literal source is an error, not a wrong response.
	w.LiteralFrom(5, strings.NewReader("ab"), false)
	if w.Err() == nil {
		t.Error("short literal: no error")
	}
}
