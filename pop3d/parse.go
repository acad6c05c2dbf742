package pop3d

import (
	"errors"
	"strconv"
	"strings"
)

// Limits from RFC 2449 section 4: a command line is at most 255 octets and
// an argument 40; SASL responses (AUTH continuation lines) may be longer.
const (
	maxCommandLine = 255
	maxArgLen      = 40
	maxSASLLine    = 2048
)

var (
	errEmpty    = errors.New("empty command")
	errArgLen   = errors.New("argument too long")
	errKeyword  = errors.New("command must be 3 or 4 letters")
	errTooLong  = errors.New("line too long")
	errBadChars = errors.New("line contains control characters")
)

// command is one parsed command line.
type command struct {
	name string   // upper-case keyword
	args []string // space-separated arguments
}

// parseCommand splits a command line (without CRLF) into keyword and
// arguments. USER and PASS take the rest of the line as one argument, since
// passwords may contain spaces (RFC 1939 allows it for PASS).
func parseCommand(line string) (command, error) {
	if len(line) > maxCommandLine {
		return command{}, errTooLong
	}
	for i := 0; i < len(line); i++ {
		if line[i] < ' ' && line[i] != '\t' || line[i] == 0x7f {
			return command{}, errBadChars
		}
	}
	line = strings.TrimRight(line, " \t")
	if line == "" {
		return command{}, errEmpty
	}
	name, rest, _ := strings.Cut(line, " ")
	if len(name) < 3 || len(name) > 4 {
		return command{}, errKeyword
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return command{}, errKeyword
		}
	}
	cmd := command{name: strings.ToUpper(name)}
	if rest == "" {
		return cmd, nil
	}
	if cmd.name == "PASS" || cmd.name == "USER" {
		cmd.args = []string{rest}
		return cmd, nil
	}
	for _, a := range strings.Fields(rest) {
		if len(a) > maxArgLen && cmd.name != "AUTH" {
			return command{}, errArgLen
		}
		cmd.args = append(cmd.args, a)
	}
	return cmd, nil
}

// parseMsgNum parses a message number argument (1-based, decimal).
func parseMsgNum(s string) (int, bool) {
	if s == "" || len(s) > 10 || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0
}
