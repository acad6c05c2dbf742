package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// status is what "yubin status --json" prints, as a client reads it.
type status struct {
	Running       bool      `json:"running"`
	Version       string    `json:"version"`
	PID           int       `json:"pid"`
	Started       time.Time `json:"started"`
	UptimeSeconds int64     `json:"uptime_seconds"`
	Listeners     []struct {
		Name, Addr string
	} `json:"listeners"`
	Queue struct {
		Entries          int       `json:"entries"`
		Oldest           time.Time `json:"oldest"`
		OldestAgeSeconds int64     `json:"oldest_age_seconds"`
	} `json:"queue"`
	Store struct {
		Path  string `json:"path"`
		Bytes int64  `json:"bytes"`
	} `json:"store"`
	Certificates []struct {
		Name     string    `json:"name"`
		NotAfter time.Time `json:"not_after"`
		Source   string    `json:"source"`
	} `json:"certificates"`
	Clamd *struct {
		Address   string `json:"address"`
		Reachable bool   `json:"reachable"`
		Error     string `json:"error"`
	} `json:"clamd"`
	Reports []struct {
		Domain, To, Last string
	} `json:"reports"`
	LastBackup struct {
		Time time.Time `json:"time"`
		Size int64     `json:"size"`
		File string    `json:"file"`
	} `json:"last_backup"`
}

func statusJSON(t *testing.T, wantCode int, flags ...string) status {
	t.Helper()
	out, errs, code := cli(t, "", append([]string{"status", "--json"}, flags...)...)
	if code != wantCode {
		t.Fatalf("yubin status --json: exit %d, want %d\n%s%s", code, wantCode, out, errs)
	}
	var st status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("yubin status --json: %v\n%s", err, out)
	}
	return st
}

// yubin status through the real binary: with the server running (through
// the control socket) it names every listener with its address, the
// version, pid and uptime, the queue with its oldest entry, the store's
// size, the certificate, clamd (down here) and each domain's last daily
// report; the metrics answer where it says. Without a server it says so
// with exit status 3 and still reads the data dir.
func TestStatus(t *testing.T) {
	data, cfg := newDataDir(t)
	flags := []string{"--config", cfg, "--data", data}
	mustCLI(t, "", append([]string{"report", "set", "example.com", "info@example.com"}, flags...)...)
	appendConfig(t, cfg, `
[scan]
clamd = "tcp:127.0.0.1:1"   # nothing listens: clamd is down
[outbound]
smart_host = "127.0.0.1:1"  # refuses: what is submitted stays queued
smart_host_tls = "none"
`)
	srv := startServer(t, data, cfg)
	srv.log.WaitFor(t, "daily report sent", 20*time.Second) // the report of the last report time, sent at start

	st := statusJSON(t, 0, flags...)
	if !st.Running || st.PID != srv.cmd.Process.Pid || st.Version == "" || st.Started.IsZero() || st.UptimeSeconds < 0 || st.UptimeSeconds > 120 {
		t.Errorf("server: running %v pid %d (want %d) version %q started %v up %ds", st.Running, st.PID, srv.cmd.Process.Pid, st.Version, st.Started, st.UptimeSeconds)
	}
	got := map[string]string{}
	for _, l := range st.Listeners {
		got[l.Name] = l.Addr
	}
	if len(got) != len(srv.addrs) {
		t.Errorf("listeners %v, the server logged %v", got, srv.addrs)
	}
	for name, addr := range srv.addrs {
		if got[name] != addr {
			t.Errorf("listener %s at %q, the server logged %q", name, got[name], addr)
		}
	}
	if _, ok := got["metrics"]; ok {
		t.Error("a metrics listener without listen.metrics")
	}
	if st.Queue.Entries != 0 || !st.Queue.Oldest.IsZero() {
		t.Errorf("queue %+v, want empty", st.Queue)
	}
	if st.Store.Path != data+"/yubin.db" || st.Store.Bytes < 4096 {
		t.Errorf("store %+v", st.Store)
	}
	if len(st.Certificates) != 1 || st.Certificates[0].Name != "mx.example.com" || st.Certificates[0].Source != "self-signed" ||
		time.Until(st.Certificates[0].NotAfter) < 9*365*24*time.Hour {
		t.Errorf("certificates %+v", st.Certificates)
	}
	if st.Clamd == nil || st.Clamd.Address != "tcp:127.0.0.1:1" || st.Clamd.Reachable || st.Clamd.Error == "" {
		t.Errorf("clamd %+v, want not reachable", st.Clamd)
	}
	today, yesterday := time.Now().Format("2006-01-02"), time.Now().AddDate(0, 0, -1).Format("2006-01-02")
	if len(st.Reports) != 1 || st.Reports[0].Domain != "example.com" || st.Reports[0].To != "info@example.com" ||
		(st.Reports[0].Last != today && st.Reports[0].Last != yesterday) {
		t.Errorf("reports %+v, want example.com's sent at start (for %s or %s)", st.Reports, today, yesterday)
	}

	// The text says the same in lines.
	out := mustCLI(t, "", append([]string{"status"}, flags...)...)
	for _, re := range []string{
		`(?m)^Server: +running \(pid \d+\), yubin \S+, up \S+`,
		`(?m)^Listeners: +smtp +127\.0\.0\.1:\d+$`,
		`(?m)^ +imaps +127\.0\.0\.1:\d+$`,
		`(?m)^Queue: +empty$`,
		`(?m)^Store: +\S+/yubin\.db, [\d.]+ [KMG]iB on disk$`,
		`(?m)^Certificate: +mx\.example\.com \(self-signed\), expires \d{4}-\d\d-\d\d \(in 365\d days\)$`,
		`(?m)^Clamd: +tcp:127\.0\.0\.1:1 NOT REACHABLE: `,
		`(?m)^Daily reports: +example\.com to info@example\.com, last \d{4}-\d\d-\d\d$`,
		`(?m)^Last backup: +never \(yubin backup\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("yubin status does not match %s:\n%s", re, out)
		}
	}
	srv.stop(t)

	// Stopped: exit 3, "not running", and what the data dir tells.
	st = statusJSON(t, 3, flags...)
	if st.Running || st.PID != 0 || len(st.Listeners) != 0 || st.Store.Bytes < 4096 || len(st.Certificates) != 1 || len(st.Reports) != 1 || st.Reports[0].Last == "" {
		t.Errorf("status of a stopped server: %+v", st)
	}
	out, _, code := cli(t, "", append([]string{"status"}, flags...)...)
	if code != 3 || !strings.HasPrefix(out, "Server:         NOT RUNNING on this data dir") {
		t.Errorf("yubin status of a stopped server: exit %d\n%s", code, out)
	}
	// A backup made shows as the last one.
	backupFile := filepath.Join(t.TempDir(), "b.ybk")
	mustCLI(t, "", append([]string{"backup", backupFile}, flags...)...)
	if st := statusJSON(t, 3, flags...); st.LastBackup.Time.IsZero() || st.LastBackup.Size <= 0 || st.LastBackup.File != backupFile {
		t.Errorf("last backup %+v, want %s", st.LastBackup, backupFile)
	}

	// With listen.metrics: the listener is listed, and it answers.
	mustRewrite(t, cfg, "[listen]\n", "[listen]\nmetrics = \"127.0.0.1:0\"\n")
	mustRewrite(t, cfg, "clamd = \"tcp:127.0.0.1:1\"", "") // mail would wait for it (451)
	srv = startServer(t, data, cfg)
	submitMail(t, srv.addrs["submission"], "info@example.com", "secret-pw", "far@remote.test",
		"From: info@example.com\r\nTo: far@remote.test\r\nSubject: queued\r\n\r\nstays in the queue\r\n")
	st = statusJSON(t, 0, flags...)
	i := slices.IndexFunc(st.Listeners, func(l struct{ Name, Addr string }) bool { return l.Name == "metrics" })
	if i < 0 || st.Listeners[i].Addr != srv.addrs["metrics"] {
		t.Fatalf("listeners %+v, the server logged metrics at %q", st.Listeners, srv.addrs["metrics"])
	}
	if st.Queue.Entries != 1 || st.Queue.Oldest.IsZero() || st.Queue.OldestAgeSeconds < 0 || st.Queue.OldestAgeSeconds > 60 || st.Clamd != nil {
		t.Errorf("queue %+v (want the submitted message), clamd %+v (want none)", st.Queue, st.Clamd)
	}
	resp, err := http.Get("http://" + st.Listeners[i].Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`yubin_build_info{version="` + st.Version + `"} 1`, "\nyubin_outbound_queue_entries 1\n",
		`yubin_smtp_transactions_total{class="2xx",listener="submission"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	srv.stop(t)
}

// mustRewrite replaces old (which must be there) with new in a file.
func mustRewrite(t *testing.T, file, old, new string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q", file, old)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}
