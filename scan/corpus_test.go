package scan

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.expected from the current results")

// TestCorpus scans every testdata/NN-name.eml and compares with
// NN-name.expected: one line per finding, then the submission reply and
// the default inbound action. A new case is a new pair of files; run
// `go test ./scan -run TestCorpus -update` to write its .expected, and
// review it.
func TestCorpus(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.eml")
	if len(files) == 0 {
		t.Fatal("no corpus")
	}
	s := newTestScanner(t, Limits{})
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".eml")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			v := mustScan(t, s, raw)
			got := corpusResult(v)
			exp := strings.TrimSuffix(f, ".eml") + ".expected"
			if *update {
				os.WriteFile(exp, []byte(got), 0o644)
				return
			}
			want, err := os.ReadFile(exp)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			// whatever was found, stripping the infected parts leaves a
			// message without them
			if d := v.Inbound(Policy{}); d.Action == DeliverStripped {
				out, err := Strip(raw, d.Strip)
				if err != nil {
					t.Fatal(err)
				}
				if v2 := mustScan(t, s, out); v2.Infected() {
					t.Errorf("still infected after strip:\n%s", out)
				}
			}
		})
	}
}

func corpusResult(v *Verdict) string {
	var b strings.Builder
	b.WriteString(v.String() + "\n")
	if r, ok := v.Submission(""); ok {
		b.WriteString("submission: 250\n")
	} else {
		b.WriteString("submission: " + r.String() + "\n")
	}
	d := v.Inbound(Policy{})
	b.WriteString("inbound: " + string(d.Action) + "\n")
	b.WriteString("header: " + d.Header + "\n")
	return b.String()
}
