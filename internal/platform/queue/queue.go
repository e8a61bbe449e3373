// Package queue is the message-queue interface between push's access layer,
// its handlers and trace aggregators, and hub's tracking outbox.
//
// Backends live below it: natsq (JetStream, in-process for the embedded
// default or an external cluster) and kafkaq (Kafka through franz-go). All pass
// the conformance suite in queuetest.
//
// Semantics every backend keeps:
//
//   - Delivery is at least once. A delivery not acked within the subscription's
//     AckTimeout, or nacked, or held by a consumer that died, is delivered
//     again (possibly to another member of the group).
//   - Messages with the same Key in one topic reach a group's handler in
//     publish order, one at a time, except after a redelivery.
//   - Each group receives every message of the topic once (fan-out across
//     groups); members of one group share the messages (load sharing). A
//     group created by its first Subscribe starts from the oldest message the
//     topic still retains, so nothing published before it joined is missed.
//   - A message with NotBefore in the future is not delivered before then, and
//     the wait is durable: a restart in between loses nothing.
//   - Publish returns only when the broker has stored the messages durably.
package queue

import (
	"context"
	"errors"
	"time"
)

// Errors returned by every backend.
var (
	// ErrClosed: the queue or subscription has been closed.
	ErrClosed = errors.New("queue: closed")
	// ErrUnavailable: the broker could not be reached or refused the operation;
	// the caller may retry. Publish wraps broker errors with it.
	ErrUnavailable = errors.New("queue: unavailable")
	// ErrInvalidArgument: an empty topic or group, a malformed name, …
	ErrInvalidArgument = errors.New("queue: invalid argument")
)

// Message is what a producer publishes.
type Message struct {
	// Topic names the destination; letters, digits, '.', '_' and '-' only.
	Topic string
	// Key orders messages: the same key in one topic keeps publish order.
	Key string
	// Value is the payload.
	Value []byte
	// Headers carries metadata; names starting with "waypost-" are reserved.
	Headers map[string]string
	// NotBefore delays delivery until that instant; zero means now.
	NotBefore time.Time
}

// Delivery is a message handed to a Handler.
type Delivery struct {
	Message
	// ID identifies the stored message within its topic (stable across redeliveries).
	ID string
	// Attempt counts deliveries of this message to this group, from 1.
	Attempt int

	acker Acker
}

// Acker settles a delivery; backends implement it.
type Acker interface {
	Ack(ctx context.Context) error
	Nack(ctx context.Context, delay time.Duration) error
}

// NewDelivery builds a Delivery for backends.
func NewDelivery(m Message, id string, attempt int, a Acker) *Delivery {
	return &Delivery{Message: m, ID: id, Attempt: attempt, acker: a}
}

// Ack marks the delivery done; it will not be delivered again to this group.
func (d *Delivery) Ack(ctx context.Context) error { return d.acker.Ack(ctx) }

// Nack gives the delivery back for redelivery no sooner than delay from now.
func (d *Delivery) Nack(ctx context.Context, delay time.Duration) error {
	return d.acker.Nack(ctx, delay)
}

// Handler processes one delivery and must Ack or Nack it; a handler that does
// neither gets it redelivered after the AckTimeout. ctx is cancelled when the
// subscription is closed past its drain bound.
type Handler func(ctx context.Context, d *Delivery)

// TopicConfig describes a topic to provision.
type TopicConfig struct {
	Name string
	// Partitions bounds parallelism across group members (Kafka partitions;
	// JetStream subject shards). 0 picks the backend default.
	Partitions int
	// Retention is how long messages are kept; 0 picks the backend default (7 days).
	Retention time.Duration
}

// SubscribeConfig describes one member of a consumer group.
type SubscribeConfig struct {
	Topic string
	Group string
	// AckTimeout is how long a delivery may stay unsettled before it is
	// redelivered; 0 picks 30 s.
	AckTimeout time.Duration
	// MaxInFlight bounds deliveries handed out and not yet settled by this
	// member; 0 picks 256. Different keys may be handled concurrently up to
	// this bound.
	MaxInFlight int
}

// Queue is the interface producers and consumers use. Implementations are
// safe for concurrent use.
type Queue interface {
	// EnsureTopic creates the topic if it does not exist; it is idempotent.
	EnsureTopic(ctx context.Context, cfg TopicConfig) error
	// Publish stores msgs durably (as one batch where the backend can) and
	// returns an error wrapping ErrUnavailable when the broker cannot take them.
	// Publishing to a topic that was not provisioned provisions it with defaults.
	Publish(ctx context.Context, msgs ...Message) error
	// Subscribe joins cfg.Group on cfg.Topic and calls h for each delivery
	// until the subscription is closed.
	Subscribe(ctx context.Context, cfg SubscribeConfig, h Handler) (Subscription, error)
	// Ping reports whether the broker is reachable.
	Ping(ctx context.Context) error
	// Close stops every subscription (as Subscription.Close) and releases
	// resources. Afterwards Publish, Subscribe and EnsureTopic return ErrClosed.
	Close(ctx context.Context) error
}

// Subscription is one member of a consumer group.
type Subscription interface {
	// Close stops taking new deliveries, waits for running handlers until ctx
	// is done, then cancels them; unsettled deliveries are redelivered later.
	Close(ctx context.Context) error
}
