package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestValidateTrace(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Trace)
		want   string
	}{
		{"zone", func(tr *Trace) { tr.TimeZone = "Mars/Olympus" }, `trace.timezone: want an IANA zone`},
		{"empty zone", func(tr *Trace) { tr.TimeZone = "" }, `trace.timezone: want an IANA zone`},
		{"ttl", func(tr *Trace) { tr.MessageTTL = 0 }, "trace.message_ttl: must be positive"},
		{"retention", func(tr *Trace) { tr.Retention = -time.Hour }, "trace.retention: must be positive"},
		{"batch", func(tr *Trace) { tr.BatchSize = 0 }, "trace.batch_size: must be positive"},
		{"limit above the lists", func(tr *Trace) { tr.QueryLimit = 5000 }, "trace.query_limit: 5000 must be below"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			tc.mutate(&cfg.Trace)
			require.ErrorContains(t, cfg.Validate(), tc.want)
		})
	}
	cfg, err := Load("", []string{"WAYPOST_TRACE_TIMEZONE=Asia/Shanghai", "WAYPOST_TRACE_RETENTION=168h"})
	require.NoError(t, err)
	require.Equal(t, "Asia/Shanghai", cfg.Trace.TimeZone)
	require.Equal(t, 168*time.Hour, cfg.Trace.Retention)
	require.NoError(t, cfg.Validate())
}
