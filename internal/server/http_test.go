package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"yubin/admin"
	"yubin/internal/autoconfig"
	"yubin/internal/config"
	"yubin/internal/testutil/teststore"
)

// listen.http: autoconfig paths to autoconfig, the rest to ACME's
// handler when there is one, else 404.
func TestHTTPHandler(t *testing.T) {
	st := teststore.New(t, teststore.Options{NoSync: true, Domains: []teststore.Domain{{Name: "example.com"}}})
	cfg := config.Default()
	cfg.Hostname = "mail.example.com"
	cfg.Listen.IMAPS = "0.0.0.0:0"
	cfg = boundConfig(cfg, []admin.Listener{{Name: "imaps", Addr: "[::]:12993"}, {Name: "smtp", Addr: "127.0.0.1:1"}})
	if cfg.Listen.IMAPS != "[::]:12993" || cfg.Listen.SMTP != "0.0.0.0:25" {
		t.Fatalf("bound config: %+v", cfg.Listen)
	}
	ac := autoconfig.New(autoconfig.FromConfig(cfg), st, nil)
	acme := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "acme") })
	for _, tc := range []struct {
		acme       http.Handler
		method     string
		path, want string
		code       int
	}{
		{acme, "GET", "/mail/config-v1.1.xml?emailaddress=a@example.com", "<port>12993</port>", 200},
		{nil, "GET", "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a@example.com", "<port>12993</port>", 200},
		{nil, "POST", "/AutoDiscover/AutoDiscover.xml", "bad request", 400},
		{acme, "GET", "/.well-known/acme-challenge/x", "acme", 200},
		{acme, "GET", "/", "acme", 200},
		{nil, "GET", "/", "not found", 404},
	} {
		w := httptest.NewRecorder()
		httpHandler(ac, tc.acme).ServeHTTP(w, httptest.NewRequest(tc.method, "http://mail.example.com"+tc.path, strings.NewReader("x")))
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s %s (acme %v): %d %s", tc.method, tc.path, tc.acme != nil, w.Code, w.Body.String())
		}
	}
}
