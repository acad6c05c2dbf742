package dnsbl

import (
	"slices"
	"testing"
)

// Whatever a message holds, URLHosts returns at most max distinct host
// names, each one a name hostName accepts as it is, and queryNames at
// most its max names.
func FuzzURLHosts(f *testing.F) {
	f.Add([]byte(`<a href="https://www.Spam.test/x">x</a> http://u@evil.test:80/ HTTPS://10.0.0.1/`), 3)
	f.Add([]byte("http://a..b/ https://-a.test http://xn--bcher-kva.example./ http://"), 0)
	f.Fuzz(func(t *testing.T, text []byte, max int) {
		max %= 50
		hosts := URLHosts(text, max)
		if max > 0 && len(hosts) > max {
			t.Fatalf("%d hosts, max %d", len(hosts), max)
		}
		for i, h := range hosts {
			if got, ok := hostName(h); !ok || got != h {
				t.Fatalf("host %q is not a clean host name", h)
			}
			if slices.Contains(hosts[:i], h) {
				t.Fatalf("host %q twice", h)
			}
		}
		if n := len(queryNames(hosts, 20)); n > 20 {
			t.Fatalf("%d names", n)
		}
	})
}
