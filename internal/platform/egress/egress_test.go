package egress_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/platform/egress"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCheck(t *testing.T) {
	tests := []struct {
		addr      string
		allow     string
		forbidden bool
	}{
		{addr: "127.0.0.1", forbidden: true},
		{addr: "127.1.2.3", forbidden: true},
		{addr: "::1", forbidden: true},
		{addr: "10.1.2.3", forbidden: true},
		{addr: "172.16.0.1", forbidden: true},
		{addr: "172.31.255.255", forbidden: true},
		{addr: "172.32.0.1", forbidden: false},
		{addr: "192.168.1.1", forbidden: true},
		{addr: "169.254.169.254", forbidden: true},
		{addr: "fe80::1", forbidden: true},
		{addr: "fe80::1%eth0", forbidden: true},
		{addr: "fd12:3456::1", forbidden: true},
		{addr: "fc00::1", forbidden: true},
		{addr: "100.64.0.1", forbidden: true},
		{addr: "100.127.255.255", forbidden: true},
		{addr: "100.128.0.1", forbidden: false},
		{addr: "0.0.0.0", forbidden: true},
		{addr: "::", forbidden: true},
		{addr: "224.0.0.1", forbidden: true},
		{addr: "239.255.255.250", forbidden: true},
		{addr: "ff02::1", forbidden: true},
		{addr: "255.255.255.255", forbidden: true},
		{addr: "::ffff:127.0.0.1", forbidden: true},
		{addr: "::ffff:10.0.0.1", forbidden: true},
		{addr: "::ffff:192.168.0.1", forbidden: true},
		{addr: "::ffff:8.8.8.8", forbidden: false},
		{addr: "8.8.8.8", forbidden: false},
		{addr: "2001:4860:4860::8888", forbidden: false},
		{addr: "127.0.0.1", allow: "127.0.0.1/32", forbidden: false},
		{addr: "127.0.0.2", allow: "127.0.0.1/32", forbidden: true},
		{addr: "10.9.8.7", allow: "10.0.0.0/8,127.0.0.1/32", forbidden: false},
		{addr: "::ffff:10.9.8.7", allow: "10.0.0.0/8", forbidden: false},
		{addr: "10.9.8.7", allow: "::ffff:10.0.0.0/104", forbidden: false},
		{addr: "::1", allow: "::1", forbidden: false},
		{addr: "fd00::5", allow: "fd00::/8", forbidden: false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s allow=%q", tc.addr, tc.allow), func(t *testing.T) {
			allow, err := egress.ParseAllow(tc.allow)
			require.NoError(t, err)
			err = egress.New(allow).Check(netip.MustParseAddr(tc.addr))
			if tc.forbidden {
				require.ErrorIs(t, err, egress.ErrForbidden)
				require.Contains(t, err.Error(), tc.addr)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestNilGuardRefusesInternal(t *testing.T) {
	var g *egress.Guard
	require.ErrorIs(t, g.Check(netip.MustParseAddr("127.0.0.1")), egress.ErrForbidden)
	require.NoError(t, g.Check(netip.MustParseAddr("1.1.1.1")))
}

func TestParseAllow(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "", want: []string{}},
		{in: "10.0.0.0/8,127.0.0.1/32", want: []string{"10.0.0.0/8", "127.0.0.1/32"}},
		{in: " 10.0.0.0/8 , 192.168.1.5 ", want: []string{"10.0.0.0/8", "192.168.1.5/32"}},
		{in: "::1", want: []string{"::1/128"}},
		{in: "10.0.0.0/33", wantErr: true},
		{in: "not-an-ip", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := egress.ParseAllow(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			strs := make([]string, 0, len(got))
			for _, p := range got {
				strs = append(strs, p.String())
			}
			require.Equal(t, tc.want, strs)
		})
	}
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return l
}

func TestDialContext(t *testing.T) {
	l := listen(t, "127.0.0.1:0")
	_, port, err := net.SplitHostPort(l.Addr().String())
	require.NoError(t, err)
	ctx := context.Background()

	t.Run("loopback literal refused", func(t *testing.T) {
		_, err := egress.New(nil).DialContext(ctx, "tcp", l.Addr().String())
		require.ErrorIs(t, err, egress.ErrForbidden)
		require.Contains(t, err.Error(), "127.0.0.1")
	})
	t.Run("localhost name refused after resolution", func(t *testing.T) {
		_, err := egress.New(nil).DialContext(ctx, "tcp", net.JoinHostPort("localhost", port))
		require.ErrorIs(t, err, egress.ErrForbidden)
	})
	t.Run("allowed prefix connects", func(t *testing.T) {
		g := egress.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
		c, err := g.DialContext(ctx, "tcp", l.Addr().String())
		require.NoError(t, err)
		require.NoError(t, c.Close())
	})
	t.Run("unix refused", func(t *testing.T) {
		_, err := egress.New(nil).DialContext(ctx, "unix", "/nonexistent.sock")
		require.ErrorIs(t, err, egress.ErrForbidden)
	})
	t.Run("control refuses via plain dialer", func(t *testing.T) {
		d := egress.New(nil).Dialer()
		_, err := d.DialContext(ctx, "tcp", l.Addr().String())
		require.ErrorIs(t, err, egress.ErrForbidden)
	})
}

func TestHTTPClientRedirect(t *testing.T) {
	var forbiddenHits atomic.Int32
	forbidden := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		forbiddenHits.Add(1)
		_, _ = w.Write([]byte("secret"))
	}))
	// 127.0.0.2 is loopback too, but outside the allowed 127.0.0.1/32, so the
	// two servers differ by address the way an internal host would.
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	forbidden.Listener = l
	forbidden.Start()
	defer forbidden.Close()

	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			_, _ = w.Write([]byte("ok"))
			return
		}
		http.Redirect(w, r, forbidden.URL+"/internal", http.StatusFound)
	}))
	defer allowed.Close()

	g := egress.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	client := g.HTTPClient(5 * time.Second)
	defer client.CloseIdleConnections()

	resp, err := client.Get(allowed.URL + "/ok")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)

	resp, err = client.Get(allowed.URL + "/redirect")
	if resp != nil {
		_ = resp.Body.Close()
	}
	require.Error(t, err)
	require.True(t, errors.Is(err, egress.ErrForbidden), "got %v", err)
	require.Contains(t, err.Error(), "127.0.0.2")
	require.Zero(t, forbiddenHits.Load())

	// Without the allow entry even the first hop is refused.
	strict := egress.New(nil).HTTPClient(5 * time.Second)
	defer strict.CloseIdleConnections()
	_, err = strict.Get(allowed.URL + "/ok")
	require.ErrorIs(t, err, egress.ErrForbidden)
}
