// Package kafkaq implements queue.Queue on Apache Kafka through franz-go.
//
// Every Queue topic maps to one Kafka topic under Config.TopicPrefix. Each
// subscription is its own consumer-group client that never auto-commits: it
// commits, per partition, only the highest offset below which every record
// has been settled. Delayed delivery (Message.NotBefore and Nack delays) is
// built from a fixed ladder of delay-tier topics drained by a scheduler that
// runs in every subscribing process. docs/queue-kafka.md describes the
// layout, the commit strategy and the ordering caveats.
package kafkaq

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/waypost/waypost/internal/platform/queue"
)

// Config configures a Kafka-backed Queue; zero fields take the defaults
// listed on each.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// TLS, when set, makes every connection to the brokers a TLS one with
	// this configuration.
	TLS *tls.Config
	// SASL, when set, authenticates every connection with this mechanism,
	// e.g. plain.Auth{User: u, Pass: p}.AsMechanism() or
	// scram.Auth{User: u, Pass: p}.AsSha512Mechanism().
	SASL sasl.Mechanism
	// TopicPrefix is prepended to every Kafka topic and group name this queue
	// creates, so several deployments can share one cluster.
	TopicPrefix string
	// ClientID identifies the clients to the brokers; default "waypost".
	ClientID string
	// Partitions is the partition count of topics created without one
	// (including the delay tiers and retry topics); default 6.
	Partitions int
	// ReplicationFactor of created topics; default -1 (the broker's default).
	ReplicationFactor int
	// SessionTimeout is how long the group waits for a silent member before
	// handing its partitions to others; default 10 s.
	SessionTimeout time.Duration
	// HeartbeatInterval defaults to a third of SessionTimeout.
	HeartbeatInterval time.Duration
	// RebalanceTimeout bounds how long members take to rejoin; default 30 s.
	RebalanceTimeout time.Duration
	// FetchMaxWait bounds how long a fetch long-polls the broker; default
	// 1 s. It also bounds how late a delay tier partition resumed after a
	// pause is fetched again, since a fetch already waiting does not include it.
	FetchMaxWait time.Duration
	// CommitInterval is how often settled offsets are committed; default 1 s.
	// Revocation and Close always commit as well.
	CommitInterval time.Duration
	// DelayTiers is the ladder of fixed delays, ascending; default
	// 1s, 5s, 30s, 2m, 10m, 1h, 6h. Changing it on a live cluster strands
	// messages in tiers that are no longer drained.
	DelayTiers []time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = "waypost"
	}
	if c.Partitions <= 0 {
		c.Partitions = 6
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = c.SessionTimeout / 3
	}
	if c.RebalanceTimeout <= 0 {
		c.RebalanceTimeout = 30 * time.Second
	}
	if c.FetchMaxWait <= 0 {
		c.FetchMaxWait = time.Second
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = time.Second
	}
	if len(c.DelayTiers) == 0 {
		c.DelayTiers = DefaultDelayTiers()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// DefaultDelayTiers returns the default ladder of delay-tier durations.
func DefaultDelayTiers() []time.Duration {
	return []time.Duration{
		time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute,
		10 * time.Minute, time.Hour, 6 * time.Hour,
	}
}

const (
	defaultAckTimeout  = 30 * time.Second
	defaultMaxInFlight = 256
	defaultRetention   = 7 * 24 * time.Hour
	maxTopicLen        = 249
)

// Queue is a queue.Queue on Kafka; it is safe for concurrent use.
type Queue struct {
	cfg  Config
	log  *slog.Logger
	met  *metrics
	prod *kgo.Client
	adm  *kadm.Client

	mu        sync.Mutex
	closed    bool
	ensured   map[string]bool
	subs      map[*subscription]struct{}
	sched     *scheduler
	publishes sync.WaitGroup
}

var _ queue.Queue = (*Queue)(nil)

// New connects a producer to cfg.Brokers and returns the Queue. It does not
// wait for the brokers: use Ping for that.
func New(ctx context.Context, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Queue, error) {
	if len(cfg.Brokers) == 0 {
		return nil, fmt.Errorf("kafkaq: new: no brokers: %w", queue.ErrInvalidArgument)
	}
	cfg = cfg.withDefaults()
	if err := validateTiers(cfg.DelayTiers); err != nil {
		return nil, fmt.Errorf("kafkaq: new: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	met, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("kafkaq: new: %w", err)
	}
	prod, err := kgo.NewClient(append(cfg.connOpts(),
		kgo.ClientID(cfg.ClientID),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.WithContext(context.WithoutCancel(ctx)),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafkaq: new producer: %w", err)
	}
	logger = logger.With("component", "kafkaq")
	logger.Info("kafka queue configured", "brokers", cfg.Brokers, "topic_prefix", cfg.TopicPrefix,
		"client_id", cfg.ClientID, "partitions", cfg.Partitions, "replication_factor", cfg.ReplicationFactor,
		"session_timeout", cfg.SessionTimeout, "delay_tiers", cfg.DelayTiers, "tls", cfg.TLS != nil,
		"sasl", mechanismName(cfg.SASL))
	return &Queue{
		cfg:     cfg,
		log:     logger,
		met:     met,
		prod:    prod,
		adm:     kadm.NewClient(prod),
		ensured: map[string]bool{},
		subs:    map[*subscription]struct{}{},
	}, nil
}

// connOpts are the options every client of the queue connects with: the
// seed brokers, TLS and SASL.
func (cfg Config) connOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}
	if cfg.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(cfg.TLS.Clone()))
	}
	if cfg.SASL != nil {
		opts = append(opts, kgo.SASL(cfg.SASL))
	}
	return opts
}

// mechanismName names m for the log; "" when there is none.
func mechanismName(m sasl.Mechanism) string {
	if m == nil {
		return ""
	}
	return m.Name()
}

// validName matches the topic and group names the queue contract allows,
// which are also Kafka's legal topic characters.
var validName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// checkName rejects empty or malformed names and the "__" prefix, which the
// backend reserves for its delay-tier and retry topics.
func checkName(kind, name string) error {
	if name == "" || !validName.MatchString(name) || strings.HasPrefix(name, "__") {
		return fmt.Errorf("%s %q: %w", kind, name, queue.ErrInvalidArgument)
	}
	return nil
}

func (q *Queue) topicName(topic string) string { return q.cfg.TopicPrefix + topic }

func (q *Queue) groupName(group string) string { return q.cfg.TopicPrefix + group }

// retryTopicName is the per-group topic that receives nacked copies, so a
// Nack redelivers to the group that nacked and not to every group.
func (q *Queue) retryTopicName(topic, group string) string {
	return q.cfg.TopicPrefix + "__retry." + group + "." + topic
}

func (q *Queue) tierTopicName(d time.Duration) string {
	return q.cfg.TopicPrefix + "__delay." + strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

func checkLen(name string) error {
	if len(name) > maxTopicLen {
		return fmt.Errorf("kafka topic %q longer than %d: %w", name, maxTopicLen, queue.ErrInvalidArgument)
	}
	return nil
}

// EnsureTopic creates the topic if it does not exist.
func (q *Queue) EnsureTopic(ctx context.Context, cfg queue.TopicConfig) error {
	if err := checkName("topic", cfg.Name); err != nil {
		return fmt.Errorf("kafkaq: ensure topic: %w", err)
	}
	if cfg.Partitions < 0 || cfg.Retention < 0 {
		return fmt.Errorf("kafkaq: ensure topic %q: negative partitions or retention: %w", cfg.Name, queue.ErrInvalidArgument)
	}
	if q.isClosed() {
		return fmt.Errorf("kafkaq: ensure topic %q: %w", cfg.Name, queue.ErrClosed)
	}
	if err := q.ensure(ctx, q.topicName(cfg.Name), cfg.Partitions, cfg.Retention); err != nil {
		return fmt.Errorf("kafkaq: ensure topic %q: %w", cfg.Name, err)
	}
	return nil
}

// ensure creates a Kafka topic once per process; an existing topic is left
// as it is (partitions and retention are not altered).
func (q *Queue) ensure(ctx context.Context, name string, partitions int, retention time.Duration) error {
	if err := checkLen(name); err != nil {
		return err
	}
	q.mu.Lock()
	done := q.ensured[name]
	q.mu.Unlock()
	if done {
		return nil
	}
	if partitions == 0 {
		partitions = q.cfg.Partitions
	}
	if retention == 0 {
		retention = defaultRetention
	}
	ms := strconv.FormatInt(retention.Milliseconds(), 10)
	resp, err := q.adm.CreateTopic(ctx, int32(partitions), int16(q.cfg.ReplicationFactor),
		map[string]*string{"retention.ms": &ms}, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create %q: %w: %w", name, queue.ErrUnavailable, err)
	}
	q.mu.Lock()
	q.ensured[name] = true
	q.mu.Unlock()
	return nil
}

// Publish stores msgs with one produce call and waits for every in-sync
// replica to acknowledge them. Messages with a future NotBefore go to a delay
// tier instead of their topic.
func (q *Queue) Publish(ctx context.Context, msgs ...queue.Message) error {
	if err := q.beginPublish(); err != nil {
		return err
	}
	defer q.publishes.Done()
	if len(msgs) == 0 {
		return nil
	}
	for i := range msgs {
		if err := checkMessage(&msgs[i]); err != nil {
			return fmt.Errorf("kafkaq: publish message %d: %w", i, err)
		}
	}
	now := q.cfg.Now()
	recs := make([]*kgo.Record, 0, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		target := q.topicName(m.Topic)
		if err := q.ensure(ctx, target, 0, 0); err != nil {
			return fmt.Errorf("kafkaq: publish to %q: %w", m.Topic, err)
		}
		rec := newRecord(target, m.Key, m.Value, m.Headers)
		if !m.NotBefore.IsZero() {
			setTimeHeader(rec, hdrNotBefore, m.NotBefore)
		}
		if m.NotBefore.After(now) {
			var err error
			if rec, err = q.delayRecord(ctx, rec, m.NotBefore, now); err != nil {
				return fmt.Errorf("kafkaq: publish to %q: %w", m.Topic, err)
			}
		}
		recs = append(recs, rec)
	}
	if err := q.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("kafkaq: publish: %w: %w", queue.ErrUnavailable, err)
	}
	for i := range msgs {
		q.met.published.WithLabelValues(msgs[i].Topic).Inc()
	}
	return nil
}

func (q *Queue) beginPublish() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return fmt.Errorf("kafkaq: publish: %w", queue.ErrClosed)
	}
	q.publishes.Add(1)
	return nil
}

func checkMessage(m *queue.Message) error {
	if err := checkName("topic", m.Topic); err != nil {
		return err
	}
	for k := range m.Headers {
		if strings.HasPrefix(strings.ToLower(k), reservedPrefix) {
			return fmt.Errorf("header %q is reserved: %w", k, queue.ErrInvalidArgument)
		}
	}
	return nil
}

// Ping sends a metadata request to any reachable broker.
func (q *Queue) Ping(ctx context.Context) error {
	if q.isClosed() {
		return fmt.Errorf("kafkaq: ping: %w", queue.ErrClosed)
	}
	if err := q.prod.Ping(ctx); err != nil {
		return fmt.Errorf("kafkaq: ping: %w: %w", queue.ErrUnavailable, err)
	}
	return nil
}

func (q *Queue) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// Close closes every subscription (draining within ctx), stops the delay
// scheduler, waits for running publishes and closes the producer. Closing
// twice returns nil.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	subs := make([]*subscription, 0, len(q.subs))
	for s := range q.subs {
		subs = append(subs, s)
	}
	sched := q.sched
	q.mu.Unlock()

	var errs []error
	for _, s := range subs {
		if err := s.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if sched != nil {
		sched.close()
	}
	q.publishes.Wait()
	if err := q.prod.Flush(ctx); err != nil {
		errs = append(errs, fmt.Errorf("kafkaq: close: flush: %w", err))
	}
	q.prod.Close()
	return errors.Join(errs...)
}

func (q *Queue) forget(s *subscription) {
	q.mu.Lock()
	delete(q.subs, s)
	q.mu.Unlock()
}
