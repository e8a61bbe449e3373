// Package natsq is the NATS JetStream backend of package queue, in two modes
// behind one type: embedded (an in-process nats-server with JetStream file
// storage, the default of `waypost up`) and external (a JetStream server or
// cluster reached by URL).
//
// Mapping: a topic is a pair of file-backed streams, the topic stream
// (<prefix><topic>, subject <prefix>.t.<topic>) and its delay stream
// (<prefix><topic>_DELAY, subject <prefix>.d.<topic>), with dots in the topic
// turned into underscores in stream names. A group is a durable pull consumer
// on the topic stream with explicit ack, AckWait = AckTimeout and unlimited
// redelivery. Messages with NotBefore in the future go to the delay stream,
// where a mover (one shared durable consumer per topic, run by every Queue
// that subscribes to the topic) holds each one with NakWithDelay until it is
// due and then republishes it to the topic stream, deduplicated by
// Nats-Msg-Id. Waiting is therefore durable, works on servers without message
// scheduling, and never shows up as a delivery attempt of any group.
//
// Per-key order holds within one member: it hands deliveries to per-key lanes,
// so different keys run concurrently up to MaxInFlight while one key stays
// sequential. Members of one group share a consumer, so with several members
// two messages of one key can be in two members' hands at once; run one
// member per group where cross-member key order matters.
package natsq

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypost/waypost/internal/platform/queue"
)

// Config selects and tunes the backend; set exactly one of URL and Embedded.
type Config struct {
	// URL of an external NATS server or cluster (comma-separated for several seeds).
	URL string
	// Embedded starts an in-process server instead.
	Embedded *EmbeddedConfig
	// StreamPrefix starts every stream name and subject; letters, digits, '_'
	// and '-' only. Default "WAYPOST_".
	StreamPrefix string
	// Replicas of each stream on a cluster; 0 means 1. Ignored when embedded.
	Replicas int
	// ClientName names the connection in server monitoring; default "waypost".
	ClientName string
	// ReconnectWait is the pause between reconnect attempts to an external
	// server (which go on forever); 0 means 2 s.
	ReconnectWait time.Duration
	// TLS, when set, connects to the external server over TLS with this
	// configuration (a tls:// URL alone uses the system's CAs).
	TLS *tls.Config
	// CredentialsFile, when set, authenticates with a NATS credentials file
	// (user JWT and NKey seed), as decentralised auth issues them. A user
	// and password or a token go in the URL instead.
	CredentialsFile string
}

// EmbeddedConfig configures the in-process server.
type EmbeddedConfig struct {
	// StoreDir holds JetStream's files; it is required.
	StoreDir string
	// Listen, as host:port, lets other processes connect over TCP; empty
	// means in-process clients only.
	Listen string
}

// Queue implements queue.Queue on JetStream.
type Queue struct {
	log     *slog.Logger
	metrics *metrics
	prefix  string
	subj    string
	replica int

	srv *server.Server // nil when external
	nc  *nats.Conn
	js  jetstream.JetStream

	mu      sync.Mutex
	closed  bool
	topics  map[string]bool
	members map[*member]struct{}
	movers  map[string]*mover
}

var _ queue.Queue = (*Queue)(nil)

// New connects to (or starts) the server described by cfg. logger and reg may
// be nil.
func New(ctx context.Context, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Queue, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if (cfg.URL == "") == (cfg.Embedded == nil) {
		return nil, fmt.Errorf("natsq: set exactly one of URL and Embedded: %w", queue.ErrInvalidArgument)
	}
	if cfg.StreamPrefix == "" {
		cfg.StreamPrefix = "WAYPOST_"
	}
	if !validPrefix(cfg.StreamPrefix) {
		return nil, fmt.Errorf("natsq: stream prefix %q: %w", cfg.StreamPrefix, queue.ErrInvalidArgument)
	}
	if cfg.Replicas <= 0 || cfg.Embedded != nil {
		cfg.Replicas = 1
	}
	if cfg.ClientName == "" {
		cfg.ClientName = "waypost"
	}
	if cfg.ReconnectWait <= 0 {
		cfg.ReconnectWait = 2 * time.Second
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("natsq: metrics: %w", err)
	}
	q := &Queue{
		log:     logger.With("component", "natsq"),
		metrics: m,
		prefix:  cfg.StreamPrefix,
		subj:    cfg.StreamPrefix,
		replica: cfg.Replicas,
		topics:  map[string]bool{},
		members: map[*member]struct{}{},
		movers:  map[string]*mover{},
	}
	opts := []nats.Option{
		nats.Name(cfg.ClientName),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			q.log.Warn("nats async error", "subject", subjectOf(sub), "err", err)
		}),
	}
	url := cfg.URL
	if cfg.Embedded != nil {
		srv, err := startEmbedded(*cfg.Embedded)
		if err != nil {
			return nil, err
		}
		q.srv = srv
		url = ""
		opts = append(opts, nats.InProcessServer(srv))
	} else {
		if cfg.TLS != nil {
			opts = append(opts, nats.Secure(cfg.TLS.Clone()))
		}
		if cfg.CredentialsFile != "" {
			opts = append(opts, nats.UserCredentials(cfg.CredentialsFile))
		}
		opts = append(opts,
			nats.MaxReconnects(-1),
			nats.ReconnectWait(cfg.ReconnectWait),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil { // nil on a deliberate Close
					q.log.Warn("nats disconnected", "err", err)
				}
			}),
			nats.ReconnectHandler(func(c *nats.Conn) { q.log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		q.shutdownServer()
		return nil, fmt.Errorf("natsq: connect: %w: %w", queue.ErrUnavailable, err)
	}
	q.nc = nc
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		nc.Close()
		q.shutdownServer()
		return nil, fmt.Errorf("natsq: jetstream: %w", err)
	}
	q.js = js
	if err := q.Ping(ctx); err != nil {
		nc.Close()
		q.shutdownServer()
		return nil, err
	}
	q.log.Info("natsq ready", "embedded", q.srv != nil, "prefix", q.prefix, "replicas", q.replica)
	return q, nil
}

func startEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, fmt.Errorf("natsq: embedded store dir is required: %w", queue.ErrInvalidArgument)
	}
	opts := &server.Options{
		ServerName: "waypost-embedded",
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		DontListen: cfg.Listen == "",
		NoSigs:     true,
		NoLog:      true,
	}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("natsq: embedded listen %q: %w: %w", cfg.Listen, queue.ErrInvalidArgument, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("natsq: embedded listen port %q: %w: %w", port, queue.ErrInvalidArgument, err)
		}
		if p == 0 {
			p = server.RANDOM_PORT // nats-server reads 0 as its default port, 4222
		}
		opts.Host, opts.Port = host, p
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsq: embedded server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("natsq: embedded server not ready: %w", queue.ErrUnavailable)
	}
	return srv, nil
}

func (q *Queue) shutdownServer() {
	if q.srv != nil {
		q.srv.Shutdown()
		q.srv.WaitForShutdown()
	}
}

// Ping reports whether the connection is up and JetStream answers.
func (q *Queue) Ping(ctx context.Context) error {
	if q.isClosed() {
		return fmt.Errorf("natsq: ping: %w", queue.ErrClosed)
	}
	if !q.nc.IsConnected() {
		return fmt.Errorf("natsq: ping: %w: %s", queue.ErrUnavailable, q.nc.Status())
	}
	if _, err := q.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("natsq: ping: %w: %w", queue.ErrUnavailable, err)
	}
	return nil
}

// Close stops every member and mover, closes the connection and, when
// embedded, shuts the server down. Closing twice is harmless.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	members := make([]*member, 0, len(q.members))
	for m := range q.members {
		members = append(members, m)
	}
	movers := make([]*mover, 0, len(q.movers))
	for _, mv := range q.movers {
		movers = append(movers, mv)
	}
	q.mu.Unlock()

	var errs []error
	for _, m := range members {
		if err := m.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, mv := range movers {
		mv.stop()
	}
	q.nc.Close()
	q.shutdownServer()
	return errors.Join(errs...)
}

func (q *Queue) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

func (q *Queue) forget(m *member) {
	q.mu.Lock()
	delete(q.members, m)
	q.mu.Unlock()
}

func subjectOf(sub *nats.Subscription) string {
	if sub == nil {
		return ""
	}
	return sub.Subject
}

// brokerErr translates a client error: a closed connection means the queue
// was closed; anything else is the broker being unavailable.
func brokerErr(err error) error {
	if errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("%w: %w", queue.ErrClosed, err)
	}
	return fmt.Errorf("%w: %w", queue.ErrUnavailable, err)
}
