package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// errUsage marks a command-line mistake (exit status 2).
var errUsage = errors.New("usage")

const usage = `waypost — multi-channel message platform (push) and sorting-hub operations (hub).

Usage:
  waypost up [flags]                 everything in one process on embedded engines
  waypost push serve [flags]         push roles (--roles api,handler,trace,cron,admin)
  waypost hub serve [flags]          hub HTTP and gRPC APIs
  waypost sandbox serve [flags]      the simulated downstream services
  waypost migrate [flags]            apply database migrations and print their status
  waypost send --template ID --to R[,R…] [--var k=v …] [--server URL] [--key KEY]
                                     send one message (env WAYPOST_SERVER, WAYPOST_API_KEY)
  waypost trace message ID | receiver R [--date D] | template ID [--date D] [--server URL] [--key KEY]
                                     where a message went; a receiver's day; a template's day
  waypost bench push [--setup | --template ID] [--concurrency N | --rate R] [--duration D]
                                     load a running server's send API (docs/bench.md)
  waypost version                    print the version
  waypost help                       this text

Common flags:
  --config FILE        YAML config (see waypost.example.yaml)
  --data DIR           directory of the embedded engines (default ./data)
  --http-addr ADDR     HTTP listen address (default :8080)
  --grpc-addr ADDR     gRPC listen address (default :9090)
  --print-config       print the effective config, secrets masked, and exit

Every config key can also be set as WAYPOST_<PATH>, e.g. WAYPOST_KV_BACKEND=redis.
`

// run dispatches a subcommand. args excludes the program name.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "up":
		return serve(ctx, modeUp, rest, environ, stdout, stderr)
	case "push", "hub", "sandbox":
		if len(rest) == 0 || rest[0] != "serve" {
			return fmt.Errorf("%w: did you mean `waypost %s serve`?", errUsage, cmd)
		}
		return serve(ctx, mode(cmd), rest[1:], environ, stdout, stderr)
	case "migrate":
		return migrate(ctx, rest, environ, stdout, stderr)
	case "send":
		return send(ctx, rest, environ, stdout, stderr)
	case "trace":
		return traceCmd(ctx, rest, environ, stdout, stderr)
	case "bench":
		return benchCmd(ctx, rest, environ, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

// versionString names the version, the VCS revision when the build recorded
// one, and the Go version.
func versionString() string {
	var b strings.Builder
	b.WriteString("waypost " + version)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				b.WriteString(" (" + s.Value[:12] + ")")
			}
		}
		b.WriteString(" " + bi.GoVersion)
	}
	return b.String()
}
