package pop3d

import (
	"bytes"
	"encoding/base64"
	"net"
	"os/exec"
	"strings"
	"testing"

	"yubin/internal/testutil"
)

// The message deliberately has a line that starts with a dot.
const clientMsg = "Subject: for real clients\r\nFrom: a@example.com\r\n\r\nhello\r\n.dot line\r\n..two dots\r\nbye\r\n"

func TestPythonPoplib(t *testing.T) {
	testutil.NeedCommand(t, "python3")
	for _, mode := range []string{"stls", "ssl"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, Config{})
			e.deliver(t, "info@example.com", clientMsg)
			e.deliver(t, "info@example.com", "Subject: second\r\n\r\nx\r\n")
			addr := e.plain
			if mode == "ssl" {
				addr = e.implicit
			}
			host, port, _ := net.SplitHostPort(addr)
			out, err := exec.Command("python3", "testdata/poplib_client.py", mode, host, port, "info@example.com", "pw-info").CombinedOutput()
			if err != nil {
				t.Fatalf("poplib: %v\n%s", err, out)
			}
			var body []byte
			for _, l := range strings.Split(string(out), "\n") {
				if b, ok := strings.CutPrefix(l, "retr1-body "); ok {
					body, _ = base64.StdEncoding.DecodeString(b)
				}
			}
			if !bytes.Equal(body, []byte(clientMsg)) {
				t.Fatalf("RETR through poplib: %q\n%s", body, out)
			}
			if !strings.Contains(string(out), "done") || !strings.Contains(string(out), "stat 2 ") {
				t.Fatalf("poplib output:\n%s", out)
			}
			msgs, _, _ := e.st.Messages(t.Context(), "info@example.com", "INBOX")
			if len(msgs) != 1 {
				t.Fatalf("DELE 2 + QUIT through poplib left %d messages", len(msgs))
			}
		})
	}
}

func TestCurl(t *testing.T) {
	testutil.NeedCommand(t, "curl")
	e := newEnv(t, Config{})
	e.deliver(t, "info@example.com", clientMsg)
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("curl", append([]string{"-sS", "-k", "--max-time", "20", "-u", "info@example.com:pw-info"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if got := run("pop3s://" + e.implicit + "/1"); got != clientMsg {
		t.Fatalf("curl pop3s RETR: %q", got)
	}
	if got := run("pop3s://" + e.implicit + "/"); !strings.HasPrefix(got, "1 ") {
		t.Fatalf("curl pop3s LIST: %q", got)
	}
	// STLS on the plain port, required.
	if got := run("--ssl-reqd", "pop3://"+e.plain+"/1"); got != clientMsg {
		t.Fatalf("curl pop3 + STLS RETR: %q", got)
	}
}
