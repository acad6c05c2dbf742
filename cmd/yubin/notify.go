package main

import (
	"fmt"
	"io"

	"yubin/admin"
)

const warningsUsage = "usage: yubin warnings on|off DOMAIN | warnings lang DOMAIN en|ja|both | warnings show DOMAIN"
const reportUsage = "usage: yubin report set DOMAIN ADDRESS | report clear DOMAIN | report send DOMAIN"

func cmdWarnings(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, warningsUsage)
		return 2
	}
	switch args[0] {
	case "on", "off":
		on := args[0] == "on"
		return settingsCmd(e, "warnings "+args[0], "yubin warnings "+args[0]+" DOMAIN", args[1:], 1,
			func(pos []string) admin.SettingsChange { return admin.SettingsChange{Warnings: &on} })
	case "lang", "language":
		return settingsCmd(e, "warnings lang", "yubin warnings lang DOMAIN en|ja|both", args[1:], 2,
			func(pos []string) admin.SettingsChange { return admin.SettingsChange{Language: &pos[1]} })
	case "show":
		return settingsCmd(e, "warnings show", "yubin warnings show DOMAIN", args[1:], 1, nil)
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(e.stdout, warningsUsage)
		return 0
	}
	fmt.Fprintf(e.stderr, "yubin: unknown warnings command %q\n%s\n", args[0], warningsUsage)
	return 2
}

func cmdReport(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, reportUsage)
		return 2
	}
	switch args[0] {
	case "set":
		return settingsCmd(e, "report set", "yubin report set DOMAIN ADDRESS", args[1:], 2,
			func(pos []string) admin.SettingsChange { return admin.SettingsChange{ReportTo: &pos[1]} })
	case "clear":
		none := ""
		return settingsCmd(e, "report clear", "yubin report clear DOMAIN", args[1:], 1,
			func(pos []string) admin.SettingsChange { return admin.SettingsChange{ReportTo: &none} })
	case "send":
		return reportSend(e, args[1:])
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(e.stdout, reportUsage)
		return 0
	}
	fmt.Fprintf(e.stderr, "yubin: unknown report command %q\n%s\n", args[0], reportUsage)
	return 2
}

// settingsCmd shows (change == nil) or changes a domain's warning settings.
func settingsCmd(e *env, name, synopsis string, args []string, npos int, change func(pos []string) admin.SettingsChange) int {
	a := newAdminCmd(e, name, synopsis)
	pos, code, ok := a.parse(args, npos, npos)
	if !ok {
		return code
	}
	var ds admin.DomainSettings
	var err error
	if change == nil {
		ds, err = call(a, admin.OpSettingsShow, pos[0])
	} else {
		ds, err = call(a, admin.OpSettingsUpdate, admin.SettingsUpdate{Domain: pos[0], Change: change(pos)})
	}
	if err != nil {
		return fail(e, "%v", err)
	}
	return a.out(ds, func(w io.Writer) {
		state := "on"
		if !ds.Warnings {
			state = "off"
		}
		report := ds.ReportTo
		if report == "" {
			report = "(none)"
		}
		table(w, [][]string{
			{"Domain:", ds.Domain},
			{"Warnings:", state},
			{"Language:", ds.Language},
			{"Daily report to:", report},
		})
	})
}

func reportSend(e *env, args []string) int {
	a := newAdminCmd(e, "report send", "yubin report send DOMAIN")
	pos, code, ok := a.parse(args, 1, 1)
	if !ok {
		return code
	}
	r, err := call(a, admin.OpReportSend, pos[0])
	if err != nil {
		return fail(e, "%v", err)
	}
	if !r.Sent {
		return fail(e, "report for %s not sent: %s", r.Domain, r.Why)
	}
	return a.out(r, func(w io.Writer) { fmt.Fprintf(w, "sent the report for %s to %s\n", r.Domain, r.To) })
}
