package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/waypost/waypost/internal/push/access"
	"github.com/waypost/waypost/internal/push/client"
)

// clientFlags adds --server and --key, defaulting to WAYPOST_SERVER and
// WAYPOST_API_KEY, and returns a constructor to call after parsing (a nil
// http.Client takes the client's default).
func clientFlags(fs *flag.FlagSet, environ []string, keyHelp string) func(hc *http.Client) (*client.Client, error) {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	server := fs.String("server", env["WAYPOST_SERVER"], "server URL (env WAYPOST_SERVER)")
	key := fs.String("key", env["WAYPOST_API_KEY"], "API key (env WAYPOST_API_KEY)"+keyHelp)
	return func(hc *http.Client) (*client.Client, error) { return client.New(*server, *key, hc) }
}

// varsFlag collects repeated --var k=v into a map; a value that parses as
// JSON (a number, true, an object…) is kept typed, anything else is a string.
type varsFlag map[string]any

func (v varsFlag) String() string { return fmt.Sprint(map[string]any(v)) }

func (v varsFlag) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want k=v, got %q", s)
	}
	var typed any
	if json.Unmarshal([]byte(val), &typed) == nil {
		v[k] = typed
	} else {
		v[k] = val
	}
	return nil
}

// send is `waypost send --template ID --to R[,R…] [--var k=v …]`: it sends one
// message and prints its id, or the API's error code.
func send(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	newClient := clientFlags(fs, environ, "")
	tmpl := fs.String("template", "", "template id")
	to := fs.String("to", "", "receivers, comma-separated")
	bizID := fs.String("biz-id", "", "your own id of this message, echoed in traces")
	idem := fs.String("idempotency-key", "", "Idempotency-Key header")
	vars := varsFlag{}
	fs.Var(vars, "var", "template variable k=v (repeatable)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	id, err := strconv.ParseInt(*tmpl, 10, 64)
	if err != nil || id <= 0 {
		return fmt.Errorf("%w: --template wants a template id, got %q", errUsage, *tmpl)
	}
	var receivers []string
	for r := range strings.SplitSeq(*to, ",") {
		if r = strings.TrimSpace(r); r != "" {
			receivers = append(receivers, r)
		}
	}
	if len(receivers) == 0 {
		return fmt.Errorf("%w: --to wants at least one receiver", errUsage)
	}
	c, err := newClient(nil)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	out, err := c.Send(ctx, access.SendRequest{TemplateID: id, Messages: []access.MessageRequest{{
		Receivers: receivers, Variables: vars, BizID: *bizID,
	}}}, *idem)
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		return fmt.Errorf("%s: %s", apiErr.Code, apiErr.Message)
	}
	if err != nil {
		return err
	}
	for _, m := range out.Messages {
		fmt.Fprintf(stdout, "%s\t%s\t%s\n", m.MessageID, m.BusinessID, strings.Join(m.Receivers, ","))
		for _, inv := range m.Invalid {
			fmt.Fprintf(stderr, "invalid receiver %s: %s\n", inv.Receiver, inv.Reason)
		}
	}
	return nil
}
