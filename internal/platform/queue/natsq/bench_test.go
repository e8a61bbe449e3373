package natsq_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/queue/natsq"
	"github.com/waypost/waypost/internal/platform/testenv"
)

// Benchmarks measure 1 KiB durable (file storage) messages through our
// interface and, side by side on the same server, through the raw nats.go
// jetstream client. b.N counts messages; run with a fixed -benchtime such as
// 100000x so the consume benchmarks pre-publish a bounded amount.

const benchPayload = 1024

type benchEnv struct {
	name string
	cfg  func(b *testing.B) natsq.Config
}

func benchEnvs() []benchEnv {
	return []benchEnv{
		{"embedded", func(b *testing.B) natsq.Config {
			return natsq.Config{Embedded: &natsq.EmbeddedConfig{StoreDir: b.TempDir()}}
		}},
		{"external", func(b *testing.B) natsq.Config {
			checkExternal(b)
			return natsq.Config{URL: testenv.NATSURL(), StreamPrefix: externalPrefix(b)}
		}},
	}
}

func openBench(b *testing.B, cfg natsq.Config) *natsq.Queue {
	b.Helper()
	q, err := natsq.New(context.Background(), cfg, nil, nil)
	require.NoError(b, err)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = q.Close(ctx)
	})
	return q
}

// rawSetup gives the plain nats.go client a stream configured like ours:
// on the external server, or on an embedded server started the way natsq
// starts its own, reached in process.
func rawSetup(b *testing.B, env string) (jetstream.JetStream, string, string) {
	b.Helper()
	var nc *nats.Conn
	var err error
	prefix := "RAW_"
	if env == "external" {
		checkExternal(b)
		prefix = externalPrefix(b)
		nc, err = nats.Connect(testenv.NATSURL())
	} else {
		srv, serr := server.NewServer(&server.Options{JetStream: true, StoreDir: b.TempDir(), DontListen: true, NoSigs: true, NoLog: true})
		require.NoError(b, serr)
		srv.Start()
		require.True(b, srv.ReadyForConnections(30*time.Second))
		b.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
		nc, err = nats.Connect("", nats.InProcessServer(srv))
	}
	require.NoError(b, err)
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	require.NoError(b, err)
	stream := prefix + "BENCH"
	subject := prefix + ".bench"
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: stream, Subjects: []string{subject}, Storage: jetstream.FileStorage,
		MaxAge: 7 * 24 * time.Hour, Duplicates: 2 * time.Minute,
	})
	require.NoError(b, err)
	return js, stream, subject
}

// rawPublish sends n 1 KiB messages in batches, awaiting each batch's acks.
func rawPublish(b *testing.B, js jetstream.JetStream, subject string, n, batch int) {
	payload := make([]byte, benchPayload)
	futs := make([]jetstream.PubAckFuture, 0, batch)
	for sent := 0; sent < n; sent += batch {
		futs = futs[:0]
		for i := 0; i < min(batch, n-sent); i++ {
			h := nats.Header{"waypost-key": []string{"key-" + strconv.Itoa(i%1000)}}
			f, err := js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: payload, Header: h})
			require.NoError(b, err)
			futs = append(futs, f)
		}
		for _, f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			}
		}
	}
}

func makeMsgs(topic string, n int) []queue.Message {
	payload := make([]byte, benchPayload)
	msgs := make([]queue.Message, n)
	for i := range msgs {
		msgs[i] = queue.Message{Topic: topic, Key: "key-" + strconv.Itoa(i%1000), Value: payload}
	}
	return msgs
}

func BenchmarkPublish(b *testing.B) {
	for _, env := range benchEnvs() {
		for _, batch := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/ours/batch=%d", env.name, batch), func(b *testing.B) {
				q := openBench(b, env.cfg(b))
				topic := testenv.UniqueName("bench")
				require.NoError(b, q.EnsureTopic(context.Background(), queue.TopicConfig{Name: topic}))
				msgs := makeMsgs(topic, batch)
				ctx := context.Background()
				b.SetBytes(benchPayload)
				b.ResetTimer()
				for sent := 0; sent < b.N; sent += batch {
					require.NoError(b, q.Publish(ctx, msgs[:min(batch, b.N-sent)]...))
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
			b.Run(fmt.Sprintf("%s/raw/batch=%d", env.name, batch), func(b *testing.B) {
				js, _, subject := rawSetup(b, env.name)
				b.SetBytes(benchPayload)
				b.ResetTimer()
				rawPublish(b, js, subject, b.N, batch)
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

func BenchmarkConsume(b *testing.B) {
	for _, env := range benchEnvs() {
		b.Run(env.name+"/ours", func(b *testing.B) {
			q := openBench(b, env.cfg(b))
			topic := testenv.UniqueName("bench")
			prefill(b, q, topic, b.N)
			var n, redelivered atomic.Int64
			done := make(chan struct{})
			b.SetBytes(benchPayload)
			b.ResetTimer()
			sub, err := q.Subscribe(context.Background(), queue.SubscribeConfig{Topic: topic, Group: "bench", MaxInFlight: 1024},
				func(ctx context.Context, d *queue.Delivery) {
					if d.Attempt > 1 {
						redelivered.Add(1)
					}
					_ = d.Ack(ctx)
					if n.Add(1) == int64(b.N) {
						close(done)
					}
				})
			require.NoError(b, err)
			<-done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(redelivered.Load()), "redelivered")
			require.NoError(b, sub.Close(context.Background()))
		})
		b.Run(env.name+"/raw", func(b *testing.B) {
			js, stream, subject := rawSetup(b, env.name)
			rawPublish(b, js, subject, b.N, 1000)
			cons, err := js.CreateOrUpdateConsumer(context.Background(), stream, jetstream.ConsumerConfig{
				Durable: "rawbench", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 8192, MaxDeliver: -1,
			})
			require.NoError(b, err)
			var n atomic.Int64
			done := make(chan struct{})
			b.SetBytes(benchPayload)
			b.ResetTimer()
			cc, err := cons.Consume(func(m jetstream.Msg) {
				_ = m.Ack()
				if n.Add(1) == int64(b.N) {
					close(done)
				}
			}, jetstream.PullMaxMessages(1024))
			require.NoError(b, err)
			<-done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			cc.Stop()
		})
	}
}

func prefill(b *testing.B, q *natsq.Queue, topic string, n int) {
	b.Helper()
	msgs := makeMsgs(topic, 1000)
	for sent := 0; sent < n; sent += len(msgs) {
		require.NoError(b, q.Publish(context.Background(), msgs[:min(len(msgs), n-sent)]...))
	}
}
