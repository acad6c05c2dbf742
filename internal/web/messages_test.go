package web

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// keyUse finds the message keys templates and Go files use: .T "key"
// in templates, t("key", c.t("key" and "done." notices in Go.
var (
	templateKey = regexp.MustCompile(`\.T "([a-z0-9.\-]+)"`)
	goKey       = regexp.MustCompile(`\bt\("([a-z0-9.\-]+)"|Key: "([a-z0-9.\-]+)"|text\(lang, "([a-z0-9.\-]+)"`)
	noticeKey   = regexp.MustCompile(`redirect\("[^"]*", "([a-z0-9\-]+)"\)`)
)

// TestCatalogue: every key a page uses has an English and a Japanese
// text, and every text's format verbs agree between the two.
func TestCatalogue(t *testing.T) {
	c := newCatalogue()
	used := map[string]bool{}
	files, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil || len(files) == 0 {
		t.Fatal(err, files)
	}
	for _, f := range files {
		b, _ := fs.ReadFile(templateFiles, f)
		for _, m := range templateKey.FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = true
		}
	}
	goFiles, _ := filepathGlob("*.go")
	for _, f := range goFiles {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b := readFile(t, f)
		for _, m := range goKey.FindAllStringSubmatch(b, -1) {
			for _, k := range m[1:] {
				if k != "" && !strings.HasSuffix(k, ".") { // a prefix: "done."+k
					used[k] = true
				}
			}
		}
		for _, m := range noticeKey.FindAllStringSubmatch(b, -1) {
			used["done."+m[1]] = true
		}
	}
	if len(used) < 50 {
		t.Fatalf("found only %d keys in use: the patterns are wrong", len(used))
	}
	for k := range used {
		m, ok := c[k]
		if !ok {
			t.Errorf("key %q is used but not in the catalogue", k)
			continue
		}
		if m.en == "" || m.ja == "" {
			t.Errorf("key %q lacks a language: %+v", k, m)
		}
	}
	verbs := regexp.MustCompile(`%[a-z]`)
	for k, m := range c {
		if strings.Join(verbs.FindAllString(m.en, -1), "") != strings.Join(verbs.FindAllString(m.ja, -1), "") {
			t.Errorf("key %q: format verbs differ: %q / %q", k, m.en, m.ja)
		}
	}
}

func filepathGlob(p string) ([]string, error) { return filepath.Glob(p) }

func readFile(t *testing.T, name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
