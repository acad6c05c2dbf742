package main

import (
	"fmt"
	"io"

	"yubin/admin"
	"yubin/internal/dnsrecords"
)

const dnsUsage = "usage: yubin dns records [DOMAIN] | dns check [DOMAIN] [--resolver HOST:PORT]"

const dnsHelp = `Usage: yubin dns COMMAND [DOMAIN] [flags]

  records [DOMAIN]        print, as zone-file lines, every DNS record to publish for
                          DOMAIN and its child domains (all domains when omitted):
                          MX, SPF, DKIM, DMARC, the SRV records mail clients use and
                          the autoconfig./autodiscover. names of client autoconfiguration
  check [DOMAIN]          look each of them up and say which are ok, missing or
                          different; exit status 1 if any is not ok
      --resolver HOST:PORT  ask this DNS server (e.g. your provider's authoritative
                          server, to check before caches expire); default: dns.resolver
                          of the config, else the system's

The records come from the config ([dns]: ipv4, ipv6, mx_host, spf_include,
dmarc_policy, dmarc_report) and each domain's DKIM keys, generated on first use.
Flags of every command: --config FILE, --data DIR, --json.
`

func cmdDNS(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, dnsUsage)
		return 2
	}
	switch args[0] {
	case "records":
		return dnsRecords(e, args[1:])
	case "check":
		return dnsCheck(e, args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, dnsHelp)
		return 0
	}
	fmt.Fprintf(e.stderr, "yubin: unknown dns command %q\n%s\n", args[0], dnsUsage)
	return 2
}

func dnsRecords(e *env, args []string) int {
	a := newAdminCmd(e, "dns records", "yubin dns records [DOMAIN]")
	pos, code, ok := a.parse(args, 0, 1)
	if !ok {
		return code
	}
	recs, err := call(a, admin.OpDNSRecords, first(pos))
	if err != nil {
		return fail(e, "dns records: %v", err)
	}
	return a.out(recs.Records, func(w io.Writer) { printZone(w, recs.Host, recs.Records) })
}

func printZone(w io.Writer, host string, recs []dnsrecords.Record) {
	fmt.Fprintf(w, "; DNS records for Yubin on %s. Publish them at your DNS provider;\n", host)
	fmt.Fprintln(w, "; names are absolute (they end in a dot). Check with: yubin dns check")
	fmt.Fprintln(w)
	fmt.Fprint(w, dnsrecords.Zone(recs, host))
}

func first(pos []string) string {
	if len(pos) > 0 {
		return pos[0]
	}
	return ""
}

func dnsCheck(e *env, args []string) int {
	a := newAdminCmd(e, "dns check", "yubin dns check [DOMAIN] [--resolver HOST:PORT]")
	resolver := a.fs.String("resolver", "", "DNS server to ask, `HOST:PORT` (port 53 if omitted); default: dns.resolver, else the system's resolver")
	pos, code, ok := a.parse(args, 0, 1)
	if !ok {
		return code
	}
	checked, err := call(a, admin.OpDNSCheck, admin.DNSCheckRequest{Domain: first(pos), Resolver: *resolver})
	if err != nil {
		return fail(e, "dns check: %v", err)
	}
	if rc := a.out(checked, func(w io.Writer) { printChecked(w, checked) }); rc != 0 {
		return rc
	}
	if !dnsrecords.AllOK(checked) {
		return 1
	}
	return 0
}

func printChecked(w io.Writer, cs []dnsrecords.Checked) {
	bad := 0
	count := map[dnsrecords.Status]int{}
	for _, c := range cs {
		count[c.Status]++
		fmt.Fprintf(w, "%-9s  %s %s  (%s)\n", c.Status, c.Name, c.Type, c.Kind)
		if c.Status == dnsrecords.OK {
			if c.Note != "" {
				fmt.Fprintf(w, "           note:  %s\n", c.Note)
			}
			continue
		}
		bad++
		want := c.Value
		if c.Type == "TXT" {
			want = dnsrecords.QuoteTXT(want)
		}
		if want == "" {
			want = "<this server's address>"
		}
		fmt.Fprintf(w, "           want:  %s\n", want)
		for _, f := range c.Found {
			fmt.Fprintf(w, "           found: %s\n", f)
		}
		if c.Note != "" {
			fmt.Fprintf(w, "           note:  %s\n", c.Note)
		}
	}
	if bad == 0 {
		fmt.Fprintf(w, "\nAll %d records are published.\n", len(cs))
	} else {
		fmt.Fprintf(w, "\n%d of %d records need attention: %d missing, %d different, %d not looked up (DNS error).\n",
			bad, len(cs), count[dnsrecords.Missing], count[dnsrecords.Different], count[dnsrecords.Failed])
		fmt.Fprintln(w, "yubin dns records prints every record to publish.")
	}
}
