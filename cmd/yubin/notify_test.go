package main

import (
	"strings"
	"testing"

	"yubin/admin"
	"yubin/internal/testutil"
)

func TestCLIWarningsAndReport(t *testing.T) {
	dir := testutil.ShortDir(t)
	setupCLI(t, dir)
	ds := decode[admin.DomainSettings](t, mustCLI(t, dir, "", "warnings", "show", "example.com", "--json"))
	if !ds.Warnings || ds.Language != "both" || ds.ReportTo != "" {
		t.Fatalf("defaults %+v", ds)
	}
	if out := mustCLI(t, dir, "", "warnings", "off", "EXAMPLE.com"); !strings.Contains(out, "Warnings:         off") {
		t.Fatalf("warnings off: %s", out)
	}
	mustCLI(t, dir, "", "warnings", "lang", "example.com", "ja")
	mustCLI(t, dir, "", "report", "set", "example.com", "info@www.example.com")
	ds = decode[admin.DomainSettings](t, mustCLI(t, dir, "", "warnings", "show", "example.com", "--json"))
	if ds.Warnings || ds.Language != "ja" || ds.ReportTo != "info@www.example.com" {
		t.Fatalf("settings %+v", ds)
	}
	// Warnings off: no report.
	if r := cli(t, dir, "", "report", "send", "example.com"); r.code != 1 || !strings.Contains(r.err, "warnings are off") {
		t.Fatalf("report send with warnings off: %+v", r)
	}
	mustCLI(t, dir, "", "warnings", "on", "example.com")
	out := mustCLI(t, dir, "", "report", "send", "example.com")
	if out != "sent the report for example.com to info@www.example.com\n" {
		t.Fatalf("report send: %q", out)
	}
	detail := decode[admin.AccountDetail](t, mustCLI(t, dir, "", "account", "show", "info@example.com", "--json"))
	if detail.Mailboxes[0].Name != "INBOX" || detail.Mailboxes[0].Messages != 1 {
		t.Fatalf("the report did not arrive: %+v", detail.Mailboxes)
	}

	before := mustCLI(t, dir, "", "warnings", "show", "example.com", "--json")
	for _, bad := range [][]string{
		{"report", "set", "example.com", "carol@other.test"},     // not on the domain
		{"report", "set", "example.com", "nobody@example.com"},   // no such account
		{"report", "set", "example.com", "x@outside.test"},       // not ours at all
		{"report", "set", "www.example.com", "info@example.com"}, // a child domain has no settings
		{"warnings", "lang", "example.com", "fr"},
		{"warnings", "off", "unknown.test"},
		{"report", "send", "other.test"}, // no report address
	} {
		r := cli(t, dir, "", bad...)
		if r.code != 1 || strings.Count(r.err, "\n") != 1 || !strings.HasPrefix(r.err, "yubin: ") {
			t.Errorf("%v: exit %d, stderr %q", bad, r.code, r.err)
		}
	}
	if after := mustCLI(t, dir, "", "warnings", "show", "example.com", "--json"); after != before {
		t.Errorf("a refused command changed the settings:\n%s\n%s", before, after)
	}
	if r := cli(t, dir, "", "warnings", "maybe", "example.com"); r.code != 2 {
		t.Errorf("unknown subcommand: exit %d", r.code)
	}
}
