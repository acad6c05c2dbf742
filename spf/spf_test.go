package spf

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"yubin/internal/testutil/dnstest"
)

func TestCheck(t *testing.T) {
	srv := dnstest.NewServerFromFiles(t, "testdata/spf.zone")
	r := srv.NewResolver()
	v4 := net.ParseIP("192.0.2.10")
	v6 := net.ParseIP("2001:db8::10")
	for _, c := range []struct {
		name     string
		ip       net.IP
		helo     string
		from     string
		want     Result
		wantHelo bool
	}{
		{"pass", v4, "x.test", "bob@pass.test", Pass, false},
		{"pass-v6", v6, "x.test", "bob@pass.test", Pass, false},
		{"fail", v4, "x.test", "bob@fail.test", Fail, false},
		{"softfail", v4, "x.test", "bob@softfail.test", SoftFail, false},
		{"neutral", v4, "x.test", "bob@neutral.test", Neutral, false},
		{"none-no-spf-txt", v4, "x.test", "bob@none.test", None, false},
		{"none-nxdomain", v4, "x.test", "bob@nx.test", None, false},
		{"a", v4, "x.test", "bob@a.test", Pass, false},
		{"a-other-ip", net.ParseIP("203.0.113.1"), "x.test", "bob@a.test", Fail, false},
		{"mx", v4, "x.test", "bob@mx.test", Pass, false},
		{"include", v4, "x.test", "bob@include.test", Pass, false},
		{"redirect", v4, "x.test", "bob@redirect.test", Pass, false},
		{"exists-macro", v4, "x.test", "bob@exists.test", Pass, false},
		{"exists-macro-other-user", v4, "x.test", "alice@exists.test", Fail, false},
		{"ptr", v4, "x.test", "bob@ptr.test", Pass, false},
		{"cidr", v4, "x.test", "bob@cidr.test", Fail, false},
		{"cidr-in", net.ParseIP("198.51.100.200"), "x.test", "bob@cidr.test", Pass, false},
		{"two-records", v4, "x.test", "bob@two.test", PermError, false},
		{"helo-null-sender", v4, "mail.helo.test", "", Pass, true},
		{"helo-null-sender-fail", net.ParseIP("203.0.113.1"), "mail.helo.test", "", Fail, true},
		{"helo-literal", v4, "[192.0.2.10]", "", None, true},
		{"permerror-syntax", v4, "x.test", "bob@badsyntax.test", PermError, false},
		{"permerror-unknown-mechanism", v4, "x.test", "bob@badmech.test", PermError, false},
		{"permerror-too-many-lookups", v4, "x.test", "bob@loop0.test", PermError, false},
		{"ten-lookups-ok", v4, "x.test", "bob@ten.test", Pass, false},
		{"permerror-void-lookups", v4, "x.test", "bob@void.test", PermError, false},
		{"two-void-lookups-ok", v4, "x.test", "bob@void2.test", Pass, false},
		{"temperror", v4, "x.test", "bob@temp.test", TempError, false},
		{"temperror-in-include", v4, "x.test", "bob@tempinc.test", TempError, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, id, err := Check(ctx, r, c.ip, c.helo, c.from)
			if got != c.want {
				t.Errorf("Check(%s, %q, %q) = %s (%v), want %s", c.ip, c.helo, c.from, got, err, c.want)
			}
			if id.Helo != c.wantHelo {
				t.Errorf("identity %+v", id)
			}
			if (got == TempError || got == PermError) && err == nil {
				t.Errorf("%s without an error", got)
			}
		})
	}
}

// A resolver that never answers: the context's deadline gives temperror,
// not a hang and not a verdict.
func TestCheckTimeout(t *testing.T) {
	ln, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := NewResolver(ln.LocalAddr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	got, _, err := Check(ctx, r, net.ParseIP("192.0.2.10"), "x.test", "bob@pass.test")
	if got != TempError {
		t.Fatalf("got %s (%v), want temperror", got, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %s", d)
	}
}

// A resolver that refuses (nothing listens): temperror too.
func TestCheckResolverDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, _, err := Check(ctx, NewResolver("127.0.0.1:1"), net.ParseIP("192.0.2.10"), "x.test", "bob@pass.test")
	if got != TempError {
		t.Fatalf("got %s (%v), want temperror", got, err)
	}
}

func TestRecord(t *testing.T) {
	for _, c := range []struct {
		s    Sender
		want string
	}{
		{Sender{Hostname: "mail.example.com"}, "v=spf1 a:mail.example.com -all"},
		{Sender{Hostname: "mail.example.com", IPv4: []string{"203.0.113.5"}, IPv6: []string{"2001:db8::5"}},
			"v=spf1 ip4:203.0.113.5 ip6:2001:db8::5 -all"},
		{Sender{Hostname: "mail.example.com", IPv4: []string{"203.0.113.5"}, SmartHost: "smtp.relay.example:587"},
			"v=spf1 a:smtp.relay.example -all"},
		{Sender{Hostname: "mail.example.com", SmartHost: "198.51.100.9:25"}, "v=spf1 ip4:198.51.100.9 -all"},
		{Sender{Hostname: "mail.example.com", SmartHost: "smtp.relay.example", Include: []string{"_spf.relay.example"}},
			"v=spf1 include:_spf.relay.example -all"},
		{Sender{Hostname: "mail.example.com", Include: []string{"_spf.other.example."}},
			"v=spf1 a:mail.example.com include:_spf.other.example -all"},
	} {
		if got := Record(c.s); got != c.want {
			t.Errorf("Record(%+v) = %q, want %q", c.s, got, c.want)
		}
		if !strings.HasSuffix(Record(c.s), " -all") {
			t.Errorf("no -all")
		}
	}
}

// The record we tell people to publish passes our own check.
func TestRecordPassesCheck(t *testing.T) {
	rec := Record(Sender{Hostname: "mail.example.com", IPv4: []string{"203.0.113.5"}, IPv6: []string{"2001:db8::5"}})
	zones, err := dnstest.Parse(strings.NewReader(`example.com. TXT "`+rec+`"`), "")
	if err != nil {
		t.Fatal(err)
	}
	r := dnstest.NewServer(t, zones).NewResolver()
	for ip, want := range map[string]Result{"203.0.113.5": Pass, "2001:db8::5": Pass, "203.0.113.6": Fail} {
		if got, _, err := Check(context.Background(), r, net.ParseIP(ip), "h.example", "x@example.com"); got != want {
			t.Errorf("%s: %s (%v), want %s", ip, got, err, want)
		}
	}
}

func TestValidDomain(t *testing.T) {
	for s, want := range map[string]bool{
		"example.com": true, "mail.example.com.": true, "_spf.example.com": true, "a-b.example": true,
		"localhost": false, "[192.0.2.1]": false, "192.0.2.1": false, "": false, "-a.example": false,
		"a..example": false, "exa mple.com": false,
	} {
		if got := ValidDomain(s); got != want {
			t.Errorf("ValidDomain(%q) = %v", s, got)
		}
	}
}
