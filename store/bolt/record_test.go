package bolt

import (
	"reflect"
	"testing"
	"time"

	"yubin/store"
)

func TestRecordRoundTrip(t *testing.T) {
	m := record{MessageInfo: store.MessageInfo{UID: 7, Size: 12345, HeaderSize: 321, Date: time.Unix(1700000000, 123), Flags: []string{`\Seen`, "$Label1"}}, blob: 99}
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
}

func FuzzRecord(f *testing.F) {
	f.Add(encodeRecord(&record{MessageInfo: store.MessageInfo{Size: 10, HeaderSize: 2, Date: time.Unix(1, 0), Flags: []string{`\Seen`}}, blob: 1}))
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
		if m2.Size != m.Size || m2.HeaderSize != m.HeaderSize || !m2.Date.Equal(m.Date) || !reflect.DeepEqual(m2.Flags, m.Flags) || m2.blob != m.blob {
			t.Fatalf("round trip changed the record: %+v vs %+v", m, m2)
		}
	})
}
