package email_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/testenv"
)

// received is one mail the test SMTP server accepted.
type received struct {
	From     string
	To       []string
	Data     []byte
	AuthUser string
	TLS      bool
}

// backend is an in-test SMTP server backend that records mails and can be
// told to reject chosen recipients.
type backend struct {
	user, pass string // when set, MAIL requires AUTH PLAIN with these

	mu       sync.Mutex
	mails    []received
	rcptErrs map[string]*smtp.SMTPError
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{be: b, conn: c}, nil
}

func (b *backend) received() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.mails...)
}

type session struct {
	be       *backend
	conn     *smtp.Conn
	authUser string
	from     string
	to       []string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != s.be.user || password != s.be.pass {
			return smtp.ErrAuthFailed
		}
		s.authUser = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.be.user != "" && s.authUser == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.be.mu.Lock()
	e := s.be.rcptErrs[to]
	s.be.mu.Unlock()
	if e != nil {
		return e
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.be.mu.Lock()
	defer s.be.mu.Unlock()
	s.be.mails = append(s.be.mails, received{From: s.from, To: s.to, Data: data, AuthUser: s.authUser, TLS: isTLS})
	return nil
}

func (s *session) Reset() { s.from, s.to = "", nil }

func (s *session) Logout() error { return nil }

// serverMode picks how the test server speaks TLS.
type serverMode int

const (
	modePlain serverMode = iota
	modeStartTLS
	modeImplicitTLS
)

// startServer runs a real SMTP server on 127.0.0.1:0 for the test's lifetime
// and returns its port.
func startServer(t *testing.T, be *backend, mode serverMode) int {
	t.Helper()
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.AllowInsecureAuth = mode == modePlain
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	switch mode {
	case modeStartTLS:
		srv.TLSConfig = testenv.NewPKI(t, "localhost").ServerTLS()
	case modeImplicitTLS:
		srv.TLSConfig = testenv.NewPKI(t, "localhost").ServerTLS()
		l = tls.NewListener(l, srv.TLSConfig)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("smtp serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		// Close races with Serve registering l, so close it ourselves too.
		_ = l.Close()
		<-done
	})
	_, port, err := net.SplitHostPort(l.Addr().String())
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	return p
}

// normalizeCRLF makes SMTP data comparable with Go string literals.
func normalizeCRLF(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }
