package scan

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func scanOne(t *testing.T, e Engine, data []byte) string {
	t.Helper()
	r, err := ScanReader(context.Background(), e, "x", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return r.Virus
}

func TestBuiltinSignatures(t *testing.T) {
	dir := t.TempDir()
	a := []byte("yubin test payload A\n")
	b := []byte("yubin test payload B\n")
	c := []byte("yubin test payload C\n")
	m := md5.Sum(a)
	s2 := sha256.Sum256(b)
	s1 := sha1.Sum(c)
	writeFile(t, filepath.Join(dir, "test.hdb"), fmt.Sprintf("# comment\n%s:%d:Yubin.Test.MD5\nnot-a-line\nzz:1:Bad.Hex\n", hex.EncodeToString(m[:]), len(a)))
	writeFile(t, filepath.Join(dir, "test.hsb"), fmt.Sprintf("%s:*:Yubin.Test.SHA256:73\n%s:%d:Yubin.Test.SHA1\n%s:12:Wrong.Size\n", hex.EncodeToString(s2[:]), hex.EncodeToString(s1[:]), len(c), hex.EncodeToString(m[:])))
	writeFile(t, filepath.Join(dir, "body.pat"), "Yubin.Test.Pattern:"+hex.EncodeToString([]byte("EVIL-MARKER-1234"))+"\nShort:0102\nBad:xyz0\n")
	writeFile(t, filepath.Join(dir, "body.ndb"), "Yubin.Test.NDB:0:*:"+hex.EncodeToString([]byte("ndb-marker-5678"))+"\nWild:0:*:41??42\nOffset:0:0:41424344\n")
	writeFile(t, filepath.Join(dir, "ignored.cvd"), "garbage")
	var logs bytes.Buffer
	eng, err := NewBuiltin(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	st := eng.Stats()
	if st.Hashes != 4 || st.Patterns != 3 || st.Skipped != 6 {
		t.Errorf("stats %+v\n%s", st, logs.String())
	}
	if !strings.Contains(logs.String(), "pattern shorter than 4 bytes") || !strings.Contains(logs.String(), "wildcards") {
		t.Errorf("logs:\n%s", logs.String())
	}
	cases := []struct {
		data []byte
		want string
	}{
		{a, "Yubin.Test.MD5"},
		{append(a, 'x'), ""}, // size/hash differ
		{b, "Yubin.Test.SHA256"},
		{c, "Yubin.Test.SHA1"},
		{[]byte("prefix EVIL-MARKER-1234 suffix"), "Yubin.Test.Pattern"},
		{[]byte("xx ndb-marker-5678"), "Yubin.Test.NDB"},
		{[]byte(EICAR), EICARName},
		{[]byte("clean"), ""},
	}
	for _, c := range cases {
		if got := scanOne(t, eng, c.data); got != c.want {
			t.Errorf("%q: got %q want %q", c.data, got, c.want)
		}
	}
	// a pattern split across writes
	s, _ := eng.Open(context.Background(), "x")
	for _, p := range []string{"aaaEVIL-MA", "RKER", "-12", "34zzz"} {
		s.Write([]byte(p))
	}
	if r, _ := s.Close(); r.Virus != "Yubin.Test.Pattern" {
		t.Errorf("split pattern: %q", r.Virus)
	}
	// the hash matches a zip member too
	sc := newTestScanner(t, Limits{}, eng)
	v := mustScan(t, sc, mailWith("hi", att{name: "p.zip", data: zipOf(t, att{name: "a.txt", data: a})}))
	if f := wantFinding(t, v, Virus); f.Virus != "Yubin.Test.MD5" || f.Path != "p.zip/a.txt" {
		t.Errorf("%+v", f)
	}
}

func TestBuiltinReloadAndWatch(t *testing.T) {
	dir := t.TempDir()
	eng, err := NewBuiltin(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("new threat of the day\n")
	if got := scanOne(t, eng, payload); got != "" {
		t.Fatalf("before: %q", got)
	}
	sum := md5.Sum(payload)
	writeFile(t, filepath.Join(dir, "daily.hdb"), fmt.Sprintf("%x:%d:Yubin.Daily\n", sum, len(payload)))
	if err := eng.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := scanOne(t, eng, payload); got != "Yubin.Daily" {
		t.Fatalf("after Reload: %q", got)
	}
	// watcher: change the file, wait for the poll to pick it up
	stop := eng.Watch(20 * time.Millisecond)
	defer stop()
	writeFile(t, filepath.Join(dir, "daily.hdb"), fmt.Sprintf("%x:%d:Yubin.Daily.v2\n", sum, len(payload)))
	future := time.Now().Add(2 * time.Second)
	os.Chtimes(filepath.Join(dir, "daily.hdb"), future, future) // mtime granularity
	deadline := time.Now().Add(5 * time.Second)
	for scanOne(t, eng, payload) != "Yubin.Daily.v2" {
		if time.Now().After(deadline) {
			t.Fatal("watcher did not reload")
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.Remove(filepath.Join(dir, "daily.hdb"))
	deadline = time.Now().Add(5 * time.Second)
	for scanOne(t, eng, payload) != "" {
		if time.Now().After(deadline) {
			t.Fatal("watcher did not notice the removal")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	stop() // idempotent
	// a missing directory: Reload fails, old signatures stay
	os.RemoveAll(dir)
	if err := eng.Reload(); err == nil {
		t.Error("Reload of a missing dir succeeded")
	}
	if got := scanOne(t, eng, []byte(EICAR)); got != EICARName {
		t.Errorf("after failed reload: %q", got)
	}
	if _, err := NewBuiltin(dir, nil); err == nil {
		t.Error("NewBuiltin of a missing dir succeeded")
	}
}

func TestAhoCorasick(t *testing.T) {
	pats := [][]byte{[]byte("he"), []byte("she"), []byte("his"), []byte("hers"), []byte("ushers!")}
	m := buildAC(pats)
	for _, c := range []struct {
		in   string
		want int32
	}{{"xxushe", 1}, {"ahisb", 2}, {"h e", -1}, {"usher", 1}, {"", -1}, {"hhhhe", 0}} {
		_, got := m.scan(0, []byte(c.in))
		if got != c.want {
			t.Errorf("%q: got %d want %d", c.in, got, c.want)
		}
	}
	// byte-at-a-time equals one-shot
	s := int32(0)
	id := int32(-1)
	for _, ch := range []byte("xxxhisyy") {
		if s, id = m.scan(s, []byte{ch}); id >= 0 {
			break
		}
	}
	if id != 2 {
		t.Errorf("streamed: %d", id)
	}
}
