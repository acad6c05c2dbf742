package main

import (
	"errors"
	"flag"
	"fmt"

	"yubin/internal/config"
	"yubin/internal/server"
)

const configUsage = "usage: yubin config example | config check [--config FILE] [--data DIR]"

const configHelp = `Usage: yubin config COMMAND [flags]

  example   print a complete, commented configuration file (the defaults)
  check     load the configuration (--config FILE, or the embedded defaults)
            and the files it names as the server would; exit status 1 if the
            server could not start with it. Also warns, without failing,
            about files holding secrets (TLS key, smart host password, the
            store) that every user of the machine may read: the server
            starts with them too, and logs the same warning.
`

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
		fmt.Fprint(e.stdout, configHelp)
		return 0
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "yubin: %v\n%s\n", err, configUsage)
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintln(e.stderr, configUsage)
		return 2
	}
	switch args[0] {
	case "example":
		fmt.Fprint(e.stdout, config.Example)
		return 0
	case "check":
		return configCheck(e, c)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, configHelp)
		return 0
	}
	fmt.Fprintf(e.stderr, "yubin: unknown config command %q\n%s\n", args[0], configUsage)
	return 2
}

func configCheck(e *env, c common) int {
	cfg, embedded, err := c.load()
	if err != nil {
		return fail(e, "%v", err)
	}
	name := "config " + c.configPath
	if embedded {
		name = "the embedded defaults"
	}
	if errs := server.CheckFiles(cfg); len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintf(e.stderr, "yubin: %s: %v\n", name, err)
		}
		return 1
	}
	exposed := server.ExposedSecrets(cfg)
	for _, x := range exposed {
		fmt.Fprintf(e.stdout, "warning: %s\n", x)
	}
	switch len(exposed) {
	case 0:
		fmt.Fprintf(e.stdout, "%s: ok\n", name)
	case 1:
		fmt.Fprintf(e.stdout, "%s: ok, with 1 warning\n", name)
	default:
		fmt.Fprintf(e.stdout, "%s: ok, with %d warnings\n", name, len(exposed))
	}
	return 0
}
