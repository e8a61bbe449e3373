// Package egress guards outbound connections made on behalf of users (webhook
// URLs, SMTP hosts) so they cannot reach loopback, private, link-local or other
// internal addresses unless an operator allowed a prefix explicitly.
//
// The check runs inside the dialer, on the address the socket is about to
// connect to, after name resolution. A hostname that resolves to 127.0.0.1, a
// DNS answer that changes between check and use, or an HTTP redirect to an
// internal address therefore cannot slip past it: every connection is checked.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrForbidden is wrapped by every error the guard returns for a refused address.
var ErrForbidden = errors.New("egress to internal address forbidden")

// EnvAllow names the environment variable holding the allowed CIDR list.
const EnvAllow = "WAYPOST_PUSH_EGRESS_ALLOW"

// blocked lists the ranges refused unless allowed. IPv4-mapped IPv6 addresses
// are unmapped before matching, so ::ffff:127.0.0.1 is caught by 127.0.0.0/8.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network", includes unspecified
	netip.MustParsePrefix("10.0.0.0/8"),         // RFC 1918
	netip.MustParsePrefix("100.64.0.0/10"),      // carrier-grade NAT
	netip.MustParsePrefix("127.0.0.0/8"),        // loopback
	netip.MustParsePrefix("169.254.0.0/16"),     // link-local, cloud metadata
	netip.MustParsePrefix("172.16.0.0/12"),      // RFC 1918
	netip.MustParsePrefix("192.168.0.0/16"),     // RFC 1918
	netip.MustParsePrefix("224.0.0.0/4"),        // multicast
	netip.MustParsePrefix("255.255.255.255/32"), // broadcast
	netip.MustParsePrefix("::/128"),             // unspecified
	netip.MustParsePrefix("::1/128"),            // loopback
	netip.MustParsePrefix("fc00::/7"),           // unique local
	netip.MustParsePrefix("fe80::/10"),          // link-local
	netip.MustParsePrefix("ff00::/8"),           // multicast
}

// Guard decides which remote addresses outbound connections may reach.
// A nil *Guard behaves like New(nil): every internal range is refused.
type Guard struct {
	allow []netip.Prefix
}

// New returns a guard refusing internal addresses except those inside allow.
func New(allow []netip.Prefix) *Guard {
	g := &Guard{allow: make([]netip.Prefix, 0, len(allow))}
	for _, p := range allow {
		g.allow = append(g.allow, normalize(p))
	}
	return g
}

// normalize unmaps IPv4-mapped prefixes (::ffff:10.0.0.0/104) so they match
// the unmapped addresses the guard compares against.
func normalize(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

// ParseAllow parses a comma- or space-separated list of CIDR prefixes or bare
// IP addresses (taken as a single host), as used in config and EnvAllow.
// An empty string yields an empty list.
func ParseAllow(s string) ([]netip.Prefix, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n'
	})
	out := make([]netip.Prefix, 0, len(fields))
	for _, f := range fields {
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("egress: parse allow entry %q: %w", f, err)
			}
			out = append(out, p)
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("egress: parse allow entry %q: %w", f, err)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Check returns an error wrapping ErrForbidden when ip is internal and not
// inside an allowed prefix.
func (g *Guard) Check(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("egress: invalid address: %w", ErrForbidden)
	}
	a := ip.WithZone("").Unmap()
	if g != nil {
		for _, p := range g.allow {
			if p.Contains(a) {
				return nil
			}
		}
	}
	for _, p := range blocked {
		if p.Contains(a) {
			return fmt.Errorf("egress: address %s is in %s: %w", ip, p, ErrForbidden)
		}
	}
	return nil
}

// Control is a net.Dialer Control function: it checks the resolved address a
// socket is about to connect to, so it sees exactly what the kernel dials.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Fail closed: anything that is not ip:port is not something we vetted.
		return fmt.Errorf("egress: %s address %q: %w", network, address, ErrForbidden)
	}
	return g.Check(ap.Addr())
}

// Dialer returns a fresh net.Dialer whose Control runs the guard, for callers
// that wrap it (for example in a tls.Dialer).
func (g *Guard) Dialer() *net.Dialer {
	return &net.Dialer{
		Timeout:   30 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   g.Control,
	}
}

// DialContext dials addr like net.Dialer.DialContext, refusing internal
// addresses. Only TCP and UDP networks are accepted.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return nil, fmt.Errorf("egress: dial %s %s: network not allowed: %w", network, addr, ErrForbidden)
	}
	// A literal IP is refused before any work, with the same error Control
	// would give; hostnames are checked by Control once resolved.
	if host, _, err := net.SplitHostPort(addr); err == nil {
		if ip, perr := netip.ParseAddr(host); perr == nil {
			if cerr := g.Check(ip); cerr != nil {
				return nil, fmt.Errorf("egress: dial %s %s: %w", network, addr, cerr)
			}
		}
	}
	conn, err := g.Dialer().DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("egress: dial %s %s: %w", network, addr, err)
	}
	return conn, nil
}

// HTTPClient returns an HTTP client whose every connection, including each
// redirect hop, goes through the guard. timeout bounds a whole request
// including redirects; zero means no overall limit.
func (g *Guard) HTTPClient(timeout time.Duration) *http.Client {
	t := &http.Transport{
		// No proxy: a proxy would make the guard check the proxy's address
		// instead of the real destination.
		Proxy:                 nil,
		DialContext:           g.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: t, Timeout: timeout}
}
