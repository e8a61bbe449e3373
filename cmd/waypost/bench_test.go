package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBenchPushSetup runs `waypost bench push --setup` against `up`: it
// creates a webhook account pointing at its own sink and an approved
// template, sends for 2s, and prints a table with accepted and delivered
// messages.
func TestBenchPushSetup(t *testing.T) {
	cmd, base, _ := startUp(t, t.TempDir(), "WAYPOST_BOOTSTRAP_API_KEY="+testKey, "WAYPOST_PUSH_EGRESS_ALLOW=127.0.0.0/8")
	defer stop(t, cmd)

	var out bytes.Buffer
	env := []string{"WAYPOST_SERVER=" + base, "WAYPOST_API_KEY=" + testKey}
	err := run(context.Background(), []string{"bench", "push", "--setup", "--duration", "2s", "--concurrency", "4", "--drain", "15s"}, env, &out, io.Discard)
	require.NoError(t, err, out.String())
	table := out.String()
	for _, row := range []string{"accepted/s", "latency p50", "latency p99", "delivered/s", "end-to-end p99"} {
		require.Contains(t, table, row)
	}
	require.Positive(t, number(t, table, `requests accepted\s+(\d+)`), table)
	require.Positive(t, number(t, table, `delivered\s+(\d+) of`), table)
	require.NotContains(t, table, "bad signatures")
	// CPU per delivery, the server's read from its /metrics.
	for _, re := range []string{`server CPU\s+(\S+) \(\S+ per delivery\)`, `generator CPU\s+(\S+) \(\S+ per delivery\)`} {
		m := regexp.MustCompile(re).FindStringSubmatch(table)
		require.Len(t, m, 2, "%q in:\n%s", re, table)
		d, err := time.ParseDuration(m[1])
		require.NoError(t, err)
		require.Positive(t, d, table)
	}
}

func number(t *testing.T, s, re string) int {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	require.Len(t, m, 2, "%q in:\n%s", re, s)
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

func TestBenchUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", []string{"bench"}, "waypost bench push"},
		{"no template", []string{"bench", "push", "--server", "http://127.0.0.1:1", "--key", "k"}, "--template"},
		{"no server", []string{"bench", "push", "--template", "1", "--key", "k"}, "--server"},
		{"bad flag", []string{"bench", "push", "--nope"}, "-nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, nil, io.Discard, io.Discard)
			require.ErrorIs(t, err, errUsage)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
