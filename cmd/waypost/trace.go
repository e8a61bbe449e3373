package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/waypost/waypost/internal/push/client"
	"github.com/waypost/waypost/internal/push/trace"
)

const traceUsage = `usage: waypost trace [--server URL] [--key KEY] [--json] message ID
       waypost trace [--server URL] [--key KEY] [--json] receiver R [--date yyyyMMdd]
       waypost trace [--server URL] [--key KEY] [--json] template ID [--date yyyyMMdd]`

// traceCmd is `waypost trace message|receiver|template …`: it asks the trace
// API and prints a table, or the API's error code. Flags may come before or
// after the arguments.
func traceCmd(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, traceUsage); fs.PrintDefaults() }
	newClient := clientFlags(fs, environ, "")
	date := fs.String("date", "", "day yyyyMMdd of a receiver or template query (default: today on the server)")
	asJSON := fs.Bool("json", false, "print the API's answer as JSON")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 2 {
		return fmt.Errorf("%w: want a query and its argument\n%s", errUsage, traceUsage)
	}
	if *date != "" {
		if _, err := time.Parse("20060102", *date); err != nil {
			return fmt.Errorf("%w: --date wants yyyyMMdd, got %q", errUsage, *date)
		}
	}
	kind, arg := pos[0], pos[1]
	var templateID int64
	switch kind {
	case "message":
		if *date != "" {
			return fmt.Errorf("%w: --date does not apply to a message", errUsage)
		}
	case "receiver":
	case "template":
		id, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("%w: template wants a template id, got %q", errUsage, arg)
		}
		templateID = id
	default:
		return fmt.Errorf("%w: unknown trace query %q (message, receiver or template)", errUsage, kind)
	}
	c, err := newClient(nil)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	var out any
	switch kind {
	case "message":
		out, err = c.TraceMessage(ctx, arg)
	case "receiver":
		out, err = c.TraceReceiver(ctx, arg, *date)
	default:
		out, err = c.TraceTemplate(ctx, templateID, *date)
	}
	if apiErr, ok := errors.AsType[*client.APIError](err); ok {
		return fmt.Errorf("%s: %s", apiErr.Code, apiErr.Message)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	switch v := out.(type) {
	case trace.EventsResponse:
		title := "message " + arg
		if kind == "receiver" {
			title = "receiver " + arg + " on " + orToday(*date)
		}
		return printEvents(stdout, title, kind, v)
	case trace.TemplateDay:
		return printTemplate(stdout, templateID, *date, v)
	}
	return nil
}

func orToday(date string) string {
	if date == "" {
		return "today"
	}
	return date
}

// printEvents prints events oldest first; a message's table names the
// receiver, a receiver's the message.
func printEvents(w io.Writer, title, kind string, r trace.EventsResponse) error {
	fmt.Fprintf(w, "%s: %d events (%s)\n", title, len(r.Events), r.Source)
	if len(r.Events) == 0 {
		return nil
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	who := "RECEIVER"
	if kind == "receiver" {
		who = "MESSAGE"
	}
	fmt.Fprintf(tw, "AT\t%s\tSTATE\tBUSINESS ID\tDETAIL\n", who)
	for _, e := range r.Events {
		id := e.Receiver
		if kind == "receiver" {
			id = e.MessageID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format("2006-01-02T15:04:05.000Z"), id, e.State, e.BusinessID, oneLine(e.Detail))
	}
	return flushTable(w, tw, &buf)
}

// printTemplate prints the counts of every state, then the funnel.
func printTemplate(w io.Writer, id int64, date string, d trace.TemplateDay) error {
	fmt.Fprintf(w, "template %d on %s: businessId %s (%s)\n\n", id, orToday(date), d.BusinessID, d.Source)
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tCOUNT")
	for _, s := range trace.States() {
		fmt.Fprintf(tw, "%s\t%d\n", s, d.Counts[s])
	}
	f := d.Funnel
	fmt.Fprintln(tw, "\t")
	fmt.Fprintln(tw, "FUNNEL\tDROPPED\tREMAINING")
	fmt.Fprintf(tw, "requested\t\t%d\n", f.Requested)
	for _, s := range f.Steps {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", s.Stage, s.Dropped, s.Remaining)
	}
	fmt.Fprintf(tw, "to send\t\t%d\n", f.ToSend)
	fmt.Fprintln(tw, "\t")
	fmt.Fprintln(tw, "OUTCOME\tCOUNT")
	for _, row := range []struct {
		name string
		n    int64
	}{{"sent", f.Sent}, {"send_failed", f.SendFailed}, {"in flight", f.InFlight},
		{"quiet_delayed (not a loss)", f.QuietDelayed}, {"delivered", f.Delivered}, {"undelivered", f.Undelivered}} {
		fmt.Fprintf(tw, "%s\t%d\n", row.name, row.n)
	}
	return flushTable(w, tw, &buf)
}

// flushTable writes the table tw rendered into buf without the padding
// tabwriter leaves at the end of lines.
func flushTable(w io.Writer, tw *tabwriter.Writer, buf *bytes.Buffer) error {
	if err := tw.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(buf.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// oneLine keeps a provider's multi-line detail on its row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
