package main

import (
	"fmt"
	"strings"
)

// globalFlags are the flags every command takes (--json: the admin
// commands), and whether each takes a value. They may come anywhere: before
// the command words ("yubin --config F domain add X", as with git or
// kubectl), between them ("yubin domain --config F add X") or after them.
var globalFlags = map[string]bool{"config": true, "data": true, "json": false}

const globalFlagsHelp = "--config FILE, --data DIR, --json"

// hoistGlobalFlags moves the global flags (with their values) found before
// a "--" to just before it, or to the end: there every command's own flag
// parsing reads them, as it reads flags after the command words. Other
// words keep their order. A flag before the command word that is not a
// global one is an error (a misspelling, most likely), and so is a global
// flag without its value.
//
// A flag is written -name or --name, and a value either as the next
// argument or after "=" (--config=F), as the flag package reads them.
func hoistGlobalFlags(args []string) ([]string, error) {
	var rest, moved []string
	sawWord := false // a command word came before
	end := len(args)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			end = i
			break
		}
		name, hasValue, ok := flagName(a)
		if !ok {
			rest = append(rest, a)
			sawWord = true
			continue
		}
		takesValue, global := globalFlags[name]
		if !global {
			if !sawWord && !isHelp(a) {
				return nil, unknownFlagError(a, name)
			}
			rest = append(rest, a)
			continue
		}
		moved = append(moved, a)
		if takesValue && !hasValue {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("flag needs an argument: %s", a)
			}
			i++
			moved = append(moved, args[i])
		}
	}
	out := make([]string, 0, len(args))
	out = append(out, rest...)
	out = append(out, moved...)
	return append(out, args[end:]...), nil
}

// flagName returns the name of a flag argument ("--config=F" → "config",
// true) as the flag package sees one: one or two dashes and a name not
// starting with "-" or "=". ok is false for anything else ("-", "--", words,
// negative numbers are flags to the flag package too, but "-1" names no
// global flag).
func flagName(a string) (name string, hasValue, ok bool) {
	if len(a) < 2 || a[0] != '-' {
		return "", false, false
	}
	n := a[1:]
	if n[0] == '-' {
		n = n[1:]
	}
	if n == "" || n[0] == '-' || n[0] == '=' {
		return "", false, false
	}
	if k := strings.IndexByte(n, '='); k >= 0 {
		return n[:k], true, true
	}
	return n, false, true
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// unknownFlagError says which flag is unknown, suggests the global flag it
// is closest to, and lists them.
func unknownFlagError(arg, name string) error {
	names := make([]string, 0, len(globalFlags))
	for n := range globalFlags {
		names = append(names, n)
	}
	if s := closest(name, names); s != "" {
		return fmt.Errorf("unknown flag %s (did you mean --%s?); before the command, only the flags every command takes: %s", arg, s, globalFlagsHelp)
	}
	return fmt.Errorf("unknown flag %s; before the command, only the flags every command takes: %s", arg, globalFlagsHelp)
}

// closest returns the name among names within edit distance 2 of name
// (the nearest; "" if none).
func closest(name string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(name, n); d < bestD || d == bestD && n < best {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
