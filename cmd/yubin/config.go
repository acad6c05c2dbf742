package main

import (
	"errors"
	"flag"
	"fmt"

	"yubin/internal/config"
)

const configUsage = "usage: yubin config example"

func cmdConfig(e *env, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(e.stderr, configUsage)
		return 2
	}
	fs := flag.NewFlagSet("config "+args[0], flag.ContinueOnError)
	var c common
	c.register(fs, false)
	pos, err := parseArgs(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(e.stdout, configUsage)
		return 0
	}
	if err != nil || len(pos) > 0 {
		fmt.Fprintln(e.stderr, configUsage)
		return 2
	}
	switch args[0] {
	case "example":
		fmt.Fprint(e.stdout, config.Example)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(e.stdout, configUsage)
		return 0
	}
	fmt.Fprintf(e.stderr, "yubin: unknown config command %q\n%s\n", args[0], configUsage)
	return 2
}
