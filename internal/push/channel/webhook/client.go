package webhook

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/waypost/waypost/internal/platform/egress"
)

// Client is the HTTP/1.1 client the senders of one process share; every
// connection it opens, a redirect's included, is dialed through an egress
// guard.
//
// It is fasthttp's rather than net/http's: under sustained load net/http's
// client cost the server more than a quarter of its CPU per delivery (two
// goroutine hand-offs per request, a header map and a request copy each),
// fasthttp's about 2.5× less (docs/PERFORMANCE.md). What that gives up:
// HTTP/2 (every webhook receiver speaks HTTP/1.1) and cancelling a request
// in flight (an attempt's deadline still bounds it).
type Client struct {
	fc *fasthttp.Client
}

// ClientOption tunes a Client.
type ClientOption func(*fasthttp.Client)

// WithTLSConfig sets the TLS settings of https URLs, e.g. a private CA's
// pool as RootCAs; the default verifies against the system's roots.
func WithTLSConfig(cfg *tls.Config) ClientOption {
	return func(c *fasthttp.Client) { c.TLSConfig = cfg }
}

// NewClient returns a client dialing through guard; nil refuses every
// internal address.
func NewClient(guard *egress.Guard, opts ...ClientOption) *Client {
	if guard == nil {
		guard = egress.New(nil)
	}
	c := &Client{fc: &fasthttp.Client{
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			return guard.DialContext(ctx, "tcp", addr)
		},
		// Each Sender sets its own; the default would add a second.
		NoDefaultUserAgentHeader: true,
		MaxIdleConnDuration:      90 * time.Second,
		// A reply's body beyond this is not read (see attempt).
		MaxResponseBodySize: snippetBytes + drainBytes,
		// A POST is never resent by the client itself; Send decides.
		MaxIdemponentCallAttempts: 1,
		// Keep the URL's path as the account gave it.
		DisablePathNormalizing: true,
		// More senders than connections wait for one rather than fail.
		MaxConnWaitTimeout: DefaultTimeout,
	}}
	for _, o := range opts {
		o(c.fc)
	}
	return c
}

// CloseIdleConnections closes the connections no request is using.
func (c *Client) CloseIdleConnections() { c.fc.CloseIdleConnections() }
