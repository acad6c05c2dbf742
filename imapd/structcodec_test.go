package imapd

import (
	"bytes"
	"reflect"
	"testing"
)

// structHeader is what a delivery puts on top of a message.
const structHeader = "Received: from x by y; Mon, 30 Nov 2026 03:00:00 +0000\r\nX-Yubin-Spam: 0.01\r\nDelivered-To: a@example.com\r\n"

// checkStructCodec checks that msg's encoded structure, alone and under
// structHeader, decodes to what parsing gives; and that a cut encoding, or
// one for a message of another size, is refused.
func checkStructCodec(t *testing.T, msg []byte) {
	t.Helper()
	for _, hdr := range []string{"", structHeader} {
		stored := append([]byte(hdr), msg...)
		enc, err := EncodeStructure(bytes.NewReader(stored))
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeStructure(enc, int64(len(stored)))
		if err != nil {
			t.Fatalf("header %q: %v", hdr, err)
		}
		if want := parseStructureBytes(stored); !reflect.DeepEqual(got, want) {
			t.Fatalf("header %q: decoded %+v, parsed %+v", hdr, got, want)
		}
		if _, err := decodeStructure(enc, int64(len(stored))+1); err == nil {
			t.Fatalf("decoded for a message of another size")
		}
		for n := range enc {
			if _, err := decodeStructure(enc[:n], int64(len(stored))); err == nil {
				t.Fatalf("an encoding cut to %d bytes decodes", n)
			}
		}
	}
}

func TestStructCodec(t *testing.T) {
	for _, m := range []string{msg1, mime1, mimeMsg, rfc822Msg, rfc822x2Msg, digestMsg, b64Msg, qpMsg, "", "\r\n", "a: b\n\n--x\n"} {
		checkStructCodec(t, []byte(m))
	}
}

// FuzzStructCodec: any message's structure survives encoding, also under
// header fields added on top.
func FuzzStructCodec(f *testing.F) {
	for _, m := range []string{msg1, mime1, mimeMsg, rfc822Msg, rfc822x2Msg, digestMsg, b64Msg, qpMsg, "", "\r\n", "a: b\n\n--x\n"} {
		f.Add([]byte(m))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		checkStructCodec(t, msg)
	})
}
