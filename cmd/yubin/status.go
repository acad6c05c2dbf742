package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"yubin/admin"
)

// exitNotRunning is status's exit code when no server runs on the data
// dir (as LSB's "program is not running" and systemctl status).
const exitNotRunning = 3

const statusHelp = `Usage: yubin status [--json] [--config FILE] [--data DIR]

The running server's listeners, version and uptime; the outbound queue; the
store's size on disk; the TLS certificates and when they expire; whether
clamd answers; the last daily report of each domain.

Exit status 0 when a server runs on the data dir. When none does, what can
be read from the data dir and the config is shown (queue, store, certificates
on disk, clamd, reports) and the exit status is 3. When the store is locked
and no server answers on the control socket, 1.
`

func cmdStatus(e *env, args []string) int {
	for _, a := range args {
		if a == "help" || a == "-h" || a == "-help" || a == "--help" {
			fmt.Fprint(e.stdout, statusHelp)
			return 0
		}
	}
	a := newAdminCmd(e, "status", "yubin status [--json]")
	if _, code, ok := a.parse(args, 0, 0); !ok {
		return code
	}
	st, err := call(a, admin.OpStatus, admin.None{})
	if err != nil {
		return fail(e, "%v", err)
	}
	if code := a.out(st, func(w io.Writer) { printStatus(w, st, time.Now()) }); code != 0 {
		return code
	}
	if !st.Running {
		return exitNotRunning
	}
	return 0
}

func printStatus(w io.Writer, st admin.Status, now time.Time) {
	var rows [][]string
	row := func(k, v string) { rows = append(rows, []string{k, v}) }
	if st.Running {
		row("Server:", fmt.Sprintf("running (pid %d), yubin %s, up %s (since %s)",
			st.PID, st.Version, span(time.Duration(st.UptimeSeconds)*time.Second), st.Started.Local().Format("2006-01-02 15:04:05")))
		for i, l := range st.Listeners {
			k := ""
			if i == 0 {
				k = "Listeners:"
			}
			row(k, fmt.Sprintf("%-12s %s", l.Name, l.Addr))
		}
	} else {
		row("Server:", "NOT RUNNING on this data dir (what follows is read from the data dir and the config)")
	}
	if st.Queue.Entries == 0 {
		row("Queue:", "empty")
	} else {
		entries := "1 entry"
		if st.Queue.Entries != 1 {
			entries = thousands(int64(st.Queue.Entries)) + " entries"
		}
		row("Queue:", fmt.Sprintf("%s, the oldest queued %s ago (%s)", entries,
			span(time.Duration(st.Queue.OldestAgeSeconds)*time.Second), st.Queue.Oldest.Local().Format("2006-01-02 15:04")))
	}
	row("Store:", fmt.Sprintf("%s, %s on disk", st.Store.Path, admin.FormatBytes(st.Store.Bytes)))
	switch {
	case st.CertificateError != "":
		row("Certificate:", "cannot be read: "+st.CertificateError)
	case len(st.Certificates) == 0:
		row("Certificate:", "none yet (ACME: requested on the first TLS connection; self-signed: made at the first start)")
	}
	for i, c := range st.Certificates {
		k := ""
		if i == 0 {
			k = "Certificate:"
		}
		left := c.NotAfter.Sub(now)
		when := fmt.Sprintf("in %d days", int(left.Hours()/24))
		if left < 0 {
			when = "EXPIRED"
		}
		row(k, fmt.Sprintf("%s (%s), expires %s (%s)", c.Name, c.Source, c.NotAfter.Local().Format("2006-01-02"), when))
	}
	switch {
	case st.Clamd == nil:
		row("Clamd:", "not configured (scan.clamd)")
	case st.Clamd.Reachable:
		row("Clamd:", st.Clamd.Address+" answers")
	default:
		row("Clamd:", st.Clamd.Address+" NOT REACHABLE: "+st.Clamd.Error)
	}
	if len(st.Reports) == 0 {
		row("Daily reports:", "no domains")
	}
	for i, r := range st.Reports {
		k := ""
		if i == 0 {
			k = "Daily reports:"
		}
		to := "no report set (yubin report set)"
		if r.To != "" {
			to = "to " + r.To
		}
		last := "never sent"
		if r.Last != "" {
			last = "last " + r.Last
		}
		row(k, fmt.Sprintf("%s %s, %s", r.Domain, to, last))
	}
	if b := st.LastBackup; b.Time.IsZero() {
		row("Last backup:", "never (yubin backup)")
	} else {
		row("Last backup:", fmt.Sprintf("%s, %d messages, %s, %s", b.Time.Local().Format("2006-01-02 15:04"), b.Messages, admin.FormatBytes(b.Size), b.File))
	}
	table(w, rows)
}

// span writes a duration in its two largest units: "3d 4h", "2h 15m",
// "45s".
func span(d time.Duration) string {
	d = d.Round(time.Second)
	days, d := d/(24*time.Hour), d%(24*time.Hour)
	h, d := d/time.Hour, d%time.Hour
	m, s := d/time.Minute, (d%time.Minute)/time.Second
	parts := []string{}
	for _, p := range []struct {
		n    time.Duration
		unit string
	}{{days, "d"}, {h, "h"}, {m, "m"}, {s, "s"}} {
		if p.n > 0 || len(parts) > 0 {
			parts = append(parts, fmt.Sprintf("%d%s", p.n, p.unit))
		}
	}
	if len(parts) == 0 {
		return "0s"
	}
	return strings.Join(parts[:min(2, len(parts))], " ")
}
