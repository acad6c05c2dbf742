package bolt

import (
	"reflect"
	"testing"
	"time"

	"yubin/store"
)

func TestRecordRoundTrip(t *testing.T) {
	m := record{MessageInfo: store.MessageInfo{UID: 7, Size: 12345, HeaderSize: 321, Date: time.Unix(1700000000, 123), Flags: []string{`\Seen`, "$Label1"}, ModSeq: 1 << 40}, blob: 99}
	got, err := decodeRecord(7, encodeRecord(&m))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Date.Equal(m.Date) {
		t.Fatalf("date %v != %v", got.Date, m.Date)
	}
	got.Date = m.Date
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("got %+v want %+v", got, m)
	}
	if _, err := decodeRecord(1, []byte{recordVersion, 1}); err == nil {
		t.Fatal("truncated record decoded without error")
	}
	// A record without its ModSeq, or with 0, is corrupt.
	b := encodeRecord(&m)
	if _, err := decodeRecord(7, b[:len(b)-6]); err == nil {
		t.Fatal("record without its modseq decoded")
	}
	m.ModSeq = 0
	if _, err := decodeRecord(7, encodeRecord(&m)); err == nil {
		t.Fatal("record of modseq 0 decoded")
	}
}

// A record of version 1, written before mod-sequences, reads as ModSeq 1.
func TestRecordVersion1(t *testing.T) {
	m := record{MessageInfo: store.MessageInfo{UID: 3, Size: 100, HeaderSize: 20, Date: time.Unix(1600000000, 0), Flags: []string{`\Seen`}, ModSeq: 1}, blob: 5}
	got, err := decodeRecord(3, encodeRecordV1(&m))
	if err != nil {
		t.Fatal(err)
	}
	got.Date = m.Date
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("version 1 record read as %+v, want %+v", got, m)
	}
}

// encodeRecordV1 is encodeRecord as schema version 1 wrote it.
func encodeRecordV1(m *record) []byte {
	b := encodeRecord(&record{MessageInfo: store.MessageInfo{Size: m.Size, HeaderSize: m.HeaderSize, Date: m.Date, Flags: m.Flags, ModSeq: 1}, blob: m.blob})
	b[0] = recordVersion1
	return b[:len(b)-1] // the ModSeq 1 is one byte
}

func FuzzRecord(f *testing.F) {
	f.Add(encodeRecord(&record{MessageInfo: store.MessageInfo{Size: 10, HeaderSize: 2, Date: time.Unix(1, 0), Flags: []string{`\Seen`}, ModSeq: 300}, blob: 1}))
	f.Add(encodeRecordV1(&record{MessageInfo: store.MessageInfo{Size: 10, HeaderSize: 2, Date: time.Unix(1, 0), Flags: []string{`\Seen`}}, blob: 1}))
	f.Add([]byte{})
	f.Add([]byte{1, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeRecord(1, b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to something that decodes the same.
		m2, err := decodeRecord(1, encodeRecord(&m))
		if err != nil {
			t.Fatalf("re-encode failed: %v", err)
		}
		if m2.Size != m.Size || m2.HeaderSize != m.HeaderSize || !m2.Date.Equal(m.Date) || !reflect.DeepEqual(m2.Flags, m.Flags) || m2.blob != m.blob || m2.ModSeq != m.ModSeq || m.ModSeq == 0 {
			t.Fatalf("round trip changed the record: %+v vs %+v", m, m2)
		}
	})
}
