package handler_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/dynconf"
	"github.com/waypost/waypost/internal/platform/fakeclock"
	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/platform/queue/natsq"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/handler"
	"github.com/waypost/waypost/internal/push/rules"
)

// live is one process's settings registry over a settings table that
// several registries (instances) may share.
type live struct {
	db  *sqldb.DB
	reg *dynconf.Registry
	s   *rules.Settings
}

// newLive creates a settings table and a registry over it with the push
// rules registered.
func newLive(t testing.TB) *live {
	t.Helper()
	return liveOn(t, sqltest.New(t, sqldb.SQLite, sqldb.PlatformMigrations()))
}

// liveOn is another instance's registry over the same table.
func liveOn(t testing.TB, db *sqldb.DB) *live {
	t.Helper()
	r, err := dynconf.NewRegistry(dynconf.NewStore(db, nil), dynconf.Config{}, nil, nil)
	require.NoError(t, err)
	return &live{db: db, reg: r, s: rules.Register(r, rules.Defaults{})}
}

// set stores a setting through the registry (as the settings API does),
// which applies it here at once.
func (l *live) set(t testing.TB, name, value string) {
	t.Helper()
	_, err := l.reg.Update(context.Background(), name, json.RawMessage(value), "test", 0)
	require.NoError(t, err)
}

// rulesEnv is a handler running with live rules.
type rulesEnv struct {
	*env
	live  *live
	clock *fakeclock.Clock
	prom  *prometheus.Registry
}

type rulesOpts struct {
	cfg     func(*handler.Config)
	q       *natsq.Queue
	ledger  kv.Store
	live    *live
	clock   *fakeclock.Clock
	options []handler.Option
}

// startRules runs a handler with rules on a fresh (or the given) queue,
// ledger and settings, its clock at now.
func startRules(t *testing.T, now time.Time, senders handler.SenderResolver, o rulesOpts) *rulesEnv {
	t.Helper()
	if o.q == nil {
		o.q = openQueue(t, t.TempDir())
	}
	if o.ledger == nil {
		o.ledger = newLedger(t)
	}
	if o.live == nil {
		o.live = newLive(t)
	}
	c := o.clock
	if c == nil {
		c = fakeclock.New(now)
	}
	cfg := testConfig()
	cfg.MsgTypes = append(cfg.MsgTypes, push.MsgAuthCode)
	cfg.Now = c.Now
	cfg.Jitter = func() float64 { return 0 }
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	prom := prometheus.NewRegistry()
	h, err := handler.New(cfg, o.q, o.ledger, senders, nil, prom, append([]handler.Option{handler.WithRules(o.live.s)}, o.options...)...)
	require.NoError(t, err)
	e := &env{q: o.q, ledger: o.ledger, h: h, trace: collectTrace(t, o.q), done: make(chan error, 1)}
	go func() { e.done <- h.Run(context.Background()) }()
	t.Cleanup(func() { e.stop(t) })
	return &rulesEnv{env: e, live: o.live, clock: c, prom: prom}
}

// metric sums the series of family name whose labels include want.
func metric(t testing.TB, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, w := range want {
				if got[k] != w {
					continue series
				}
			}
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return v
}

// states returns every state recorded for a message, by receiver.
func (s *traceSink) states(msgID string) map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	seen := map[string]bool{}
	for _, a := range s.anchors {
		if a.MessageID == msgID && !seen[a.EventID] {
			seen[a.EventID] = true
			out[a.Receiver] = append(out[a.Receiver], a.State)
		}
	}
	return out
}

// proxy forwards TCP connections to a server until Close, which cuts every
// connection and refuses new ones: a server gone away.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	closed bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_, _ = c.Close(), s.Close()
			return
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		for _, pair := range [][2]net.Conn{{c, s}, {s, c}} {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				_, _ = io.Copy(pair[0], pair[1])
				_ = pair[0].Close()
			}()
		}
	}
}

// Close cuts the proxy off; it is idempotent.
func (p *proxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
