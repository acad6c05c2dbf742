package web

import (
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseForm: any body is either refused or gives a form within the
// limits (values, bytes, valid UTF-8 without NUL), and the forwarding
// form's split never yields an empty or separator-holding target.
func FuzzParseForm(f *testing.F) {
	f.Add("csrf=abc&targets=a%40b.test%0D%0Ac%40d.test&keep_copy=on")
	f.Add("a=1&a=2&b=%ff")
	f.Add("x=%00")
	f.Add(strings.Repeat("a=b&", 70))
	f.Add("targets=,,; \t\n")
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/x", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		form, err := parseForm(httptest.NewRecorder(), r)
		if err != nil {
			return
		}
		n := 0
		for k, vs := range form {
			if !utf8.ValidString(k) {
				t.Fatalf("field name %q", k)
			}
			for _, v := range vs {
				n++
				if len(v) > maxFieldBytes || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
					t.Fatalf("value %q of %s passed", v, k)
				}
			}
		}
		if n > maxFields || len(body) > maxBody {
			t.Fatalf("%d values, %d bytes passed", n, len(body))
		}
		for _, tg := range splitTargets(form.Get("targets")) {
			if tg == "" || strings.ContainsAny(tg, "\r\n,; \t") {
				t.Fatalf("target %q", tg)
			}
		}
	})
}

// FuzzLanguage: any Accept-Language gives en or ja.
func FuzzLanguage(f *testing.F) {
	f.Add("ja-JP,ja;q=0.9")
	f.Add("")
	s := &Server{}
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Language", h)
		if l := s.language(r); l != "en" && l != "ja" {
			t.Fatalf("language %q for %q", l, h)
		}
	})
}
