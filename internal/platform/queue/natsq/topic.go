package natsq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/waypost/waypost/internal/platform/queue"
)

// Reserved headers that carry Message fields through JetStream.
const (
	hdrKey       = "waypost-key"
	hdrNotBefore = "waypost-not-before"
	// defaultRetention applies when a topic is provisioned without one.
	defaultRetention = 7 * 24 * time.Hour
	// dedupWindow bounds how long the mover's republish is deduplicated; it
	// must outlast the mover's AckWait so a crash between republish and ack
	// does not deliver twice.
	dedupWindow = 2 * time.Minute
)

// validName reports whether s is a topic or group name: letters, digits,
// '.', '_' and '-', with no empty dot-separated part (a subject token).
func validName(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func validPrefix(s string) bool {
	return validName(s) && !strings.Contains(s, ".")
}

// sanitise turns a name into one usable as a stream or consumer name, which
// may not contain dots. Different names that sanitise alike are caught when
// provisioning, by comparing the stored subject or description.
func sanitise(s string) string { return strings.ReplaceAll(s, ".", "_") }

func (q *Queue) streamName(topic string) string { return q.prefix + sanitise(topic) }
func (q *Queue) delayStream(topic string) string {
	return q.prefix + sanitise(topic) + "_DELAY"
}
func (q *Queue) subject(topic string) string      { return q.subj + ".t." + topic }
func (q *Queue) delaySubject(topic string) string { return q.subj + ".d." + topic }

// EnsureTopic creates the topic's streams if they do not exist. An existing
// stream keeps its configuration.
func (q *Queue) EnsureTopic(ctx context.Context, cfg queue.TopicConfig) error {
	if q.isClosed() {
		return fmt.Errorf("natsq: ensure topic %q: %w", cfg.Name, queue.ErrClosed)
	}
	if !validName(cfg.Name) || cfg.Partitions < 0 || cfg.Retention < 0 {
		return fmt.Errorf("natsq: ensure topic %q (partitions %d, retention %s): %w",
			cfg.Name, cfg.Partitions, cfg.Retention, queue.ErrInvalidArgument)
	}
	retention := cfg.Retention
	if retention == 0 {
		retention = defaultRetention
	}
	for _, s := range []struct{ name, subject string }{
		{q.streamName(cfg.Name), q.subject(cfg.Name)},
		{q.delayStream(cfg.Name), q.delaySubject(cfg.Name)},
	} {
		if err := q.ensureStream(ctx, s.name, s.subject, retention); err != nil {
			return fmt.Errorf("natsq: ensure topic %q: %w", cfg.Name, err)
		}
	}
	q.mu.Lock()
	q.topics[cfg.Name] = true
	q.mu.Unlock()
	return nil
}

func (q *Queue) ensureStream(ctx context.Context, name, subject string, retention time.Duration) error {
	_, err := q.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: "waypost queue " + subject,
		Subjects:    []string{subject},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      retention,
		Storage:     jetstream.FileStorage,
		Replicas:    q.replica,
		Duplicates:  dedupWindow,
	})
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("create stream %s: %w", name, brokerErr(err))
	}
	s, err := q.js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, brokerErr(err))
	}
	if got := s.CachedInfo().Config.Subjects; !slices.Equal(got, []string{subject}) {
		return fmt.Errorf("stream %s already serves %v, not %s: %w", name, got, subject, queue.ErrInvalidArgument)
	}
	return nil
}

// provision ensures a topic once per Queue with defaults.
func (q *Queue) provision(ctx context.Context, topic string) error {
	q.mu.Lock()
	known := q.topics[topic]
	q.mu.Unlock()
	if known {
		return nil
	}
	return q.EnsureTopic(ctx, queue.TopicConfig{Name: topic})
}

// Publish stores msgs; several are sent asynchronously and awaited together,
// so a batch costs about one round trip.
func (q *Queue) Publish(ctx context.Context, msgs ...queue.Message) error {
	if q.isClosed() {
		return fmt.Errorf("natsq: publish: %w", queue.ErrClosed)
	}
	now := time.Now()
	out := make([]*nats.Msg, len(msgs))
	for i, m := range msgs {
		nm, err := q.encode(m, now)
		if err != nil {
			return fmt.Errorf("natsq: publish message %d: %w", i, err)
		}
		out[i] = nm
	}
	for i, m := range msgs {
		if i > 0 && m.Topic == msgs[i-1].Topic {
			continue
		}
		if err := q.provision(ctx, m.Topic); err != nil {
			return fmt.Errorf("natsq: publish: %w", err)
		}
	}
	if len(out) == 1 {
		if _, err := q.js.PublishMsg(ctx, out[0]); err != nil {
			return fmt.Errorf("natsq: publish to %q: %w", msgs[0].Topic, brokerErr(err))
		}
		q.metrics.topic(msgs[0].Topic).published.Inc()
		return nil
	}
	return q.publishAsync(ctx, msgs, out)
}

func (q *Queue) publishAsync(ctx context.Context, msgs []queue.Message, out []*nats.Msg) error {
	futs := make([]jetstream.PubAckFuture, 0, len(out))
	var first error
	for i, nm := range out {
		f, err := q.js.PublishMsgAsync(nm)
		if err != nil {
			first = fmt.Errorf("natsq: publish to %q: %w", msgs[i].Topic, brokerErr(err))
			break
		}
		futs = append(futs, f)
	}
	// Wait for every ack sent so far, even after an error, so that the
	// published metric counts what the broker actually stored.
	var tm *topicMetrics
	for i, f := range futs {
		select {
		case <-f.Ok():
			if tm == nil || i > 0 && msgs[i].Topic != msgs[i-1].Topic {
				tm = q.metrics.topic(msgs[i].Topic)
			}
			tm.published.Inc()
		case err := <-f.Err():
			if first == nil {
				first = fmt.Errorf("natsq: publish to %q: %w", msgs[i].Topic, brokerErr(err))
			}
		case <-ctx.Done():
			return fmt.Errorf("natsq: publish: awaiting acks: %w: %w", queue.ErrUnavailable, ctx.Err())
		}
	}
	return first
}

// encode validates m and builds the NATS message, routing a message not yet
// due to the delay stream.
func (q *Queue) encode(m queue.Message, now time.Time) (*nats.Msg, error) {
	if !validName(m.Topic) {
		return nil, fmt.Errorf("topic %q: %w", m.Topic, queue.ErrInvalidArgument)
	}
	h := make(nats.Header, len(m.Headers)+2)
	for k, v := range m.Headers {
		if reservedHeader(k) || k == "" {
			return nil, fmt.Errorf("header %q is reserved: %w", k, queue.ErrInvalidArgument)
		}
		h[k] = []string{v}
	}
	if m.Key != "" {
		h[hdrKey] = []string{m.Key}
	}
	subject := q.subject(m.Topic)
	if !m.NotBefore.IsZero() {
		h[hdrNotBefore] = []string{m.NotBefore.UTC().Format(time.RFC3339Nano)}
		if m.NotBefore.After(now) {
			subject = q.delaySubject(m.Topic)
		}
	}
	return &nats.Msg{Subject: subject, Data: m.Value, Header: h}, nil
}

// reservedHeader reports names the queue or JetStream itself uses.
func reservedHeader(k string) bool {
	l := strings.ToLower(k)
	return strings.HasPrefix(l, "waypost-") || strings.HasPrefix(l, "nats-")
}

// decode rebuilds the Message of a stored NATS message.
func decode(topic string, data []byte, h nats.Header) queue.Message {
	m := queue.Message{Topic: topic, Value: data}
	for k, vs := range h {
		if len(vs) == 0 {
			continue
		}
		switch {
		case k == hdrKey:
			m.Key = vs[0]
		case k == hdrNotBefore:
			if t, err := time.Parse(time.RFC3339Nano, vs[0]); err == nil {
				m.NotBefore = t
			}
		case reservedHeader(k):
		default:
			if m.Headers == nil {
				m.Headers = make(map[string]string, len(h))
			}
			m.Headers[k] = vs[0]
		}
	}
	return m
}
