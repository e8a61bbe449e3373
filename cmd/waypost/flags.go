package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/waypost/waypost/internal/platform/config"
)

// cliConfig is the effective configuration plus flags that are not config.
type cliConfig struct {
	config.Config
	printConfig bool
}

// parseConfig applies, in order, defaults, --config FILE, WAYPOST_* and the
// flags given on the command line, then validates the result.
func parseConfig(name string, args, environ []string, stderr io.Writer, extra func(*flag.FlagSet, *config.Config)) (cliConfig, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		path     = fs.String("config", "", "YAML config file")
		data     = fs.String("data", "", "directory of the embedded engines")
		httpAddr = fs.String("http-addr", "", "HTTP listen address")
		grpcAddr = fs.String("grpc-addr", "", "gRPC listen address")
		logLevel = fs.String("log-level", "", "debug, info, warn or error")
		print    = fs.Bool("print-config", false, "print the effective config (secrets masked) and exit")
	)
	// Flags that map onto config are applied after env, and only when given,
	// so an unset flag never overrides the file or the environment.
	var flagged config.Config
	if extra != nil {
		extra(fs, &flagged)
	}
	if err := fs.Parse(args); err != nil {
		return cliConfig{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return cliConfig{}, fmt.Errorf("%w: unexpected arguments %q", errUsage, strings.Join(fs.Args(), " "))
	}
	cfg, err := config.Load(*path, environ)
	if err != nil {
		return cliConfig{}, err
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "data":
			cfg.Data = *data
		case "http-addr":
			cfg.HTTP.Addr = *httpAddr
		case "grpc-addr":
			cfg.GRPC.Addr = *grpcAddr
		case "log-level":
			cfg.Log.Level = *logLevel
		case "roles":
			cfg.Push.Roles = flagged.Push.Roles
		case "sandbox-latency":
			cfg.Sandbox.Latency = flagged.Sandbox.Latency
		}
	})
	if err := cfg.Validate(); err != nil {
		return cliConfig{}, fmt.Errorf("invalid config:\n%w", err)
	}
	return cliConfig{Config: cfg, printConfig: *print}, nil
}

// rolesFlag adds --roles for `push serve`.
func rolesFlag(fs *flag.FlagSet, into *config.Config) {
	fs.Func("roles", "comma-separated push roles: api,handler,trace,cron,admin", func(s string) error {
		into.Push.Roles = nil
		for r := range strings.SplitSeq(s, ",") {
			if r = strings.TrimSpace(r); r != "" {
				into.Push.Roles = append(into.Push.Roles, r)
			}
		}
		return nil
	})
}

// sandboxLatencyFlag adds --sandbox-latency for `up` and `sandbox serve`.
func sandboxLatencyFlag(fs *flag.FlagSet, into *config.Config) {
	fs.StringVar(&into.Sandbox.Latency, "sandbox-latency", "", "downstream latency: none, seed or SPEC (docs/sandbox.md)")
}
