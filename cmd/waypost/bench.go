package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/waypost/waypost/internal/bench"
)

// benchCmd is `waypost bench push [flags]`: it loads a running server's send
// API and prints throughput, latency and, with a local webhook sink,
// deliveries.
func benchCmd(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "push" {
		return fmt.Errorf("%w: did you mean `waypost bench push`?", errUsage)
	}
	fs := flag.NewFlagSet("bench push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	newClient := clientFlags(fs, environ, "; --setup needs an admin key")
	tmpl := fs.Int64("template", 0, "template id to send with (or --setup)")
	setup := fs.Bool("setup", false, "create a webhook account pointing at the sink and an approved template")
	concurrency := fs.Int("concurrency", 0, "closed loop: workers (default 8); with --rate: most requests in flight (default 256)")
	rate := fs.Float64("rate", 0, "open loop: requests per second (0 = closed loop)")
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	receivers := fs.Int("receivers-per-message", 1, "receivers in each message")
	batch := fs.Int("messages-per-request", 1, "messages in each request")
	sinkAddr := fs.String("sink", "127.0.0.1:0", "webhook sink listen address (started with --setup or when given)")
	sinkSecret := fs.String("sink-secret", "", "verify webhook signatures with this secret (--setup picks one when empty)")
	drain := fs.Duration("drain", 10*time.Second, "stop waiting for deliveries after this long without one")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	sinkGiven := *setup
	fs.Visit(func(f *flag.Flag) { sinkGiven = sinkGiven || f.Name == "sink" || f.Name == "sink-secret" })
	if !*setup && *tmpl <= 0 {
		return fmt.Errorf("%w: give --template ID or --setup", errUsage)
	}
	if *concurrency <= 0 && *rate <= 0 {
		*concurrency = 8
	}
	conns := *concurrency
	if conns <= 0 {
		conns = bench.DefaultOpenLoopWorkers
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// One idle connection per worker, so the run reuses connections instead
	// of dialing (and exhausting ephemeral ports) once past the default 2.
	tr.MaxIdleConnsPerHost = conns
	tr.MaxIdleConns = 2 * conns
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	c, err := newClient(hc)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}

	var sink *bench.Sink
	if sinkGiven {
		secret := *sinkSecret
		if secret == "" && *setup {
			secret = rand.Text()
		}
		sink = bench.NewSink(secret, nil)
		if err := sink.Start(*sinkAddr); err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = sink.Close(sctx)
		}()
		if *setup {
			id, err := bench.Setup(ctx, c, sink.URL(), secret)
			if err != nil {
				return err
			}
			*tmpl = id
		}
	}

	cfg := bench.Config{TemplateID: *tmpl, Concurrency: *concurrency, Rate: *rate, Duration: *duration,
		ReceiversPerMessage: *receivers, MessagesPerRequest: *batch}
	var opts []bench.Option
	if sink != nil {
		opts = append(opts, bench.WithAccepted(sink.Expect))
	}
	gen, err := bench.New(cfg, c, opts...)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	mode := "closed loop, concurrency " + strconv.Itoa(*concurrency)
	if *rate > 0 {
		mode = fmt.Sprintf("open loop, %g requests/s", *rate)
	}
	fmt.Fprintf(stdout, "bench push: template %d, %s, %s, %d message(s) × %d receiver(s) per request\n",
		*tmpl, mode, *duration, max(*batch, 1), max(*receivers, 1))
	// CPU time from here to the last delivery: the server's from its
	// /metrics, the generator's (with the sink) from the kernel.
	serverCPU := func() (time.Duration, error) {
		text, err := c.Metrics(ctx)
		if err != nil {
			return 0, err
		}
		return bench.ProcessCPU(text)
	}
	cpu := &bench.CPU{}
	serverBefore, serverErr := serverCPU()
	selfBefore := bench.SelfCPU()
	res, err := gen.Run(ctx)
	if err != nil {
		return fmt.Errorf("bench push: %w", err)
	}
	var d *bench.Delivery
	if sink != nil {
		sink.Wait(ctx, res.ReceiverMessages, *drain)
		d = sink.Report(res.Start, res.ReceiverMessages)
	}
	cpu.Generator = bench.SelfCPU() - selfBefore
	if serverErr == nil {
		var after time.Duration
		after, serverErr = serverCPU()
		cpu.Server = after - serverBefore
	}
	cpu.ServerErr = serverErr
	return bench.Print(stdout, res, d, cpu)
}
