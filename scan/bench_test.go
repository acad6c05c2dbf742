package scan

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchMessage is a ~4 MiB message: a text body and a zip attachment
// holding a 1 MiB text file (compressible) and 1.9 MiB of random bytes.
func benchMessage(b *testing.B) []byte {
	rng := rand.New(rand.NewSource(1))
	words := strings.Fields("the quick brown fox jumps over the lazy dog invoice payment meeting tomorrow")
	var text strings.Builder
	for text.Len() < 1<<20 {
		text.WriteString(words[rng.Intn(len(words))])
		text.WriteByte(' ')
	}
	random := make([]byte, 1900<<10)
	rng.Read(random)
	z := zipOf(b, att{name: "report.txt", data: []byte(text.String())}, att{name: "data.bin", data: random})
	raw := mailWith(strings.Repeat("Hello, please find the report attached.\r\n", 2000), att{name: "report.zip", ctype: "application/zip", data: z})
	if len(raw) > DefaultMaxMessageSize {
		b.Fatalf("bench message %d bytes > limit", len(raw))
	}
	return raw
}

func benchScan(b *testing.B, engines ...Engine) {
	raw := benchMessage(b)
	s := newTestScanner(b, Limits{}, engines...)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v, err := s.Scan(context.Background(), raw)
		if err != nil || !v.Clean() {
			b.Fatalf("%v %v", v, err)
		}
	}
}

// BenchmarkScan: throughput of scanning a 4 MiB message with a zip
// attachment (bytes/s are of the raw message).
func BenchmarkScan(b *testing.B) {
	b.Run("builtin-eicar", func(b *testing.B) {
		e, _ := NewBuiltin("", nil)
		benchScan(b, e)
	})
	b.Run("builtin-10k-sigs", func(b *testing.B) {
		// 5,000 MD5 + 5,000 SHA256 hashes and 1,000 body patterns: every
		// file is hashed twice and matched against all patterns.
		dir := b.TempDir()
		var hdb, hsb, pat strings.Builder
		for i := 0; i < 5000; i++ {
			m := md5.Sum([]byte(fmt.Sprint("md5-", i)))
			fmt.Fprintf(&hdb, "%x:%d:Bench.MD5.%d\n", m, 100+i, i)
			s := sha256.Sum256([]byte(fmt.Sprint("sha-", i)))
			fmt.Fprintf(&hsb, "%x:*:Bench.SHA.%d\n", s, i)
		}
		for i := 0; i < 1000; i++ {
			fmt.Fprintf(&pat, "Bench.Pat.%d:%x\n", i, fmt.Sprintf("zq%06dxj-evil-marker", i))
		}
		os.WriteFile(filepath.Join(dir, "b.hdb"), []byte(hdb.String()), 0o644)
		os.WriteFile(filepath.Join(dir, "b.hsb"), []byte(hsb.String()), 0o644)
		os.WriteFile(filepath.Join(dir, "b.pat"), []byte(pat.String()), 0o644)
		e, err := NewBuiltin(dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		benchScan(b, e)
	})
	b.Run("builtin+clamd", func(b *testing.B) {
		p := startClamd(b, []byte("bench"))
		e, _ := NewBuiltin("", nil)
		c, _ := NewClamd(ClamdConfig{Address: p.sock})
		benchScan(b, e, c)
	})
}
