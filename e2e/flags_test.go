package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestGlobalFlagsAnywhere: --config, --data and --json work before the
// command words (as with git or kubectl), between them and after them,
// with the store opened by the CLI and through a running server; a
// misspelled flag in either position is one clear line, exit 2, and
// changes nothing.
func TestGlobalFlagsAnywhere(t *testing.T) {
	data, cfg := newDataDir(t)
	domains := func(t *testing.T, args ...string) []string {
		t.Helper()
		var list []struct{ Name string }
		out := mustCLI(t, "", args...)
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("yubin %v: %v\n%s", args, err, out)
		}
		var names []string
		for _, d := range list {
			names = append(names, d.Name)
		}
		return names
	}
	has := func(list []string, name string) bool {
		for _, n := range list {
			if n == name {
				return true
			}
		}
		return false
	}
	run := func(t *testing.T, tag string) {
		a, b, c := "before-"+tag+".test", "between-"+tag+".test", "mixed-"+tag+".test"
		if out := mustCLI(t, "", "--config", cfg, "--data", data, "domain", "add", a); out != "added domain "+a+"\n" {
			t.Fatalf("flags before the command: %q", out)
		}
		mustCLI(t, "", "domain", "--data="+data, "-config", cfg, "add", b)
		mustCLI(t, "", "--data", data, "domain", "add", c, "--parent", a, "--config", cfg)
		for _, args := range [][]string{
			{"--json", "--config", cfg, "--data", data, "domain", "list"},
			{"domain", "--json", "list", "--config=" + cfg, "--data", data},
		} {
			got := domains(t, args...)
			for _, d := range []string{a, b, c} {
				if !has(got, d) {
					t.Errorf("yubin %v: %s not listed in %v", args, d, got)
				}
			}
		}
	}
	t.Run("stopped", func(t *testing.T) { run(t, "stopped") })
	srv := startServer(t, data, cfg)
	t.Run("serving", func(t *testing.T) {
		run(t, "serving")
		// A command with flags of its own.
		mustCLI(t, "pw-serving-123\n", "--config", cfg, "account", "--data", data, "add", "x@before-serving.test", "--password-stdin")
		if out := mustCLI(t, "", "--data", data, "--config", cfg, "account", "show", "x@before-serving.test", "--json"); !strings.Contains(out, `"address": "x@before-serving.test"`) {
			t.Errorf("account show: %q", out)
		}

		// Misspelled: before the command and after it.
		for _, m := range []struct {
			args []string
			want string
		}{
			{[]string{"--confg", cfg, "--data", data, "domain", "add", "typo1.test"}, `unknown flag --confg (did you mean --config?)`},
			{[]string{"--config", cfg, "--dta", data, "domain", "add", "typo2.test"}, `unknown flag --dta (did you mean --data?)`},
			{[]string{"domain", "add", "typo3.test", "--config", cfg, "--dat", data}, `flag provided but not defined: -dat (did you mean --data?)`},
			{[]string{"--jsn", "domain", "list", "--config", cfg, "--data", data}, `unknown flag --jsn (did you mean --json?)`},
			{[]string{"--config", cfg, "domain", "list", "--data"}, `flag needs an argument: --data`},
		} {
			out, errs, code := cli(t, "", m.args...)
			if code != 2 || out != "" || !strings.HasPrefix(errs, "yubin: ") || !strings.Contains(errs, m.want) {
				t.Errorf("yubin %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", m.args, code, out, errs, m.want)
			}
			if n := strings.Count(strings.TrimSpace(errs), "\n"); n > 1 {
				t.Errorf("yubin %v: %d lines on stderr:\n%s", m.args, n+1, errs)
			}
		}
		got := domains(t, "--json", "--config", cfg, "--data", data, "domain", "list")
		for _, d := range []string{"typo1.test", "typo2.test", "typo3.test"} {
			if has(got, d) {
				t.Errorf("%s added by a command with a misspelled flag", d)
			}
		}
	})
	srv.stop(t)
}
