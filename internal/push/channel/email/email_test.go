package email_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/platform/egress"
	"github.com/waypost/waypost/internal/push/channel"
	"github.com/waypost/waypost/internal/push/channel/email"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var fixedNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// loopbackGuard lets the sender reach the in-test server on 127.0.0.1.
func loopbackGuard() *egress.Guard {
	return egress.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
}

func TestNewValidation(t *testing.T) {
	valid := email.Config{Host: "smtp.example.com", From: "Waypost <noreply@example.com>"}
	tests := []struct {
		name    string
		mutate  func(*email.Config)
		wantErr string
	}{
		{name: "valid defaults", mutate: func(*email.Config) {}},
		{name: "missing host", mutate: func(c *email.Config) { c.Host = "" }, wantErr: "host is required"},
		{name: "host with port", mutate: func(c *email.Config) { c.Host = "smtp.example.com:25" }, wantErr: "must not contain a port"},
		{name: "host with scheme", mutate: func(c *email.Config) { c.Host = "unix://smtp.sock" }, wantErr: "bare host name"},
		{name: "bad tls", mutate: func(c *email.Config) { c.TLS = "ssl" }, wantErr: `tls "ssl" must be one of`},
		{name: "port too big", mutate: func(c *email.Config) { c.Port = 70000 }, wantErr: "port 70000 out of range"},
		{name: "negative port", mutate: func(c *email.Config) { c.Port = -1 }, wantErr: "out of range"},
		{name: "missing from", mutate: func(c *email.Config) { c.From = "" }, wantErr: "from is required"},
		{name: "bad from", mutate: func(c *email.Config) { c.From = "not an address" }, wantErr: "from"},
		{name: "password without user", mutate: func(c *email.Config) { c.Password = "x" }, wantErr: "password given without username"},
		{name: "negative timeout", mutate: func(c *email.Config) { c.Timeout = -time.Second }, wantErr: "negative"},
		{name: "tls none", mutate: func(c *email.Config) { c.TLS = email.TLSNone }},
		{name: "tls implicit", mutate: func(c *email.Config) { c.TLS = email.TLSImplicit; c.Port = 465 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.mutate(&cfg)
			s, err := email.New(cfg, nil)
			if tc.wantErr == "" {
				require.NoError(t, err)
				require.NotNil(t, s)
				return
			}
			require.ErrorIs(t, err, email.ErrConfig)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

// parsed is a received mail split into headers and decoded parts.
type parsed struct {
	header mail.Header
	text   string
	html   string
	ctype  string
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	require.NoError(t, err)
	p := parsed{header: msg.Header}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	require.NoError(t, err)
	p.ctype = mt
	if !strings.HasPrefix(mt, "multipart/") {
		p.text = decode(t, msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
		return p
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		body := decode(t, part.Header.Get("Content-Transfer-Encoding"), part)
		pt, _, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		require.NoError(t, err)
		switch pt {
		case "text/plain":
			p.text = body
		case "text/html":
			p.html = body
		}
	}
	return p
}

func decode(t *testing.T, cte string, r io.Reader) string {
	t.Helper()
	switch strings.ToLower(cte) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	}
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(normalizeCRLF(b))
}

func TestSendDelivers(t *testing.T) {
	tests := []struct {
		name     string
		mode     serverMode
		tls      string
		auth     bool
		html     string
		wantTLS  bool
		wantType string
	}{
		{name: "plain text none", mode: modePlain, tls: email.TLSNone, wantType: "text/plain"},
		{name: "auth plain over none to localhost", mode: modePlain, tls: email.TLSNone, auth: true, wantType: "text/plain"},
		{name: "starttls with auth and html", mode: modeStartTLS, tls: email.TLSStartTLS, auth: true,
			html: "<p>Hello <b>Ana</b></p>", wantTLS: true, wantType: "multipart/alternative"},
		{name: "implicit tls with auth", mode: modeImplicitTLS, tls: email.TLSImplicit, auth: true, wantTLS: true, wantType: "text/plain"},
		{name: "implicit tls html no auth", mode: modeImplicitTLS, tls: email.TLSImplicit,
			html: "<p>hi</p>", wantTLS: true, wantType: "multipart/alternative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be := &backend{}
			if tc.auth {
				be.user, be.pass = "mailer", "s3cret"
			}
			port := startServer(t, be, tc.mode)
			cfg := email.Config{
				Host: "127.0.0.1", Port: port, From: "Waypost <noreply@example.com>",
				TLS: tc.tls, Timeout: 5 * time.Second, InsecureSkipVerify: true,
			}
			if tc.auth {
				cfg.Username, cfg.Password = "mailer", "s3cret"
			}
			s, err := email.New(cfg, loopbackGuard(), email.WithClock(func() time.Time { return fixedNow }))
			require.NoError(t, err)

			res, err := s.Send(context.Background(), channel.Message{
				MessageID: "msg-42", BusinessID: "2000000120260304", TemplateID: 1,
				Receiver: "ana@example.org", Subject: "Your parcel Ünïcode",
				Text: "Hello Ana,\nyour parcel is on its way.", HTML: tc.html,
			})
			require.NoError(t, err)
			require.Equal(t, "waypost.msg-42@example.com", res.ProviderID)

			mails := be.received()
			require.Len(t, mails, 1)
			got := mails[0]
			require.Equal(t, "noreply@example.com", got.From)
			require.Equal(t, []string{"ana@example.org"}, got.To)
			require.Equal(t, tc.wantTLS, got.TLS)
			if tc.auth {
				require.Equal(t, "mailer", got.AuthUser)
			}

			p := parse(t, got.Data)
			require.Equal(t, "<waypost.msg-42@example.com>", p.header.Get("Message-Id"))
			require.Equal(t, "msg-42", p.header.Get("X-Waypost-Message-Id"))
			date, err := p.header.Date()
			require.NoError(t, err)
			require.True(t, fixedNow.Equal(date), "date %v", date)
			from, err := mail.ParseAddress(p.header.Get("From"))
			require.NoError(t, err)
			require.Equal(t, "noreply@example.com", from.Address)
			require.Equal(t, "Waypost", from.Name)
			to, err := p.header.AddressList("To")
			require.NoError(t, err)
			require.Equal(t, "ana@example.org", to[0].Address)
			subject, err := new(mime.WordDecoder).DecodeHeader(p.header.Get("Subject"))
			require.NoError(t, err)
			require.Equal(t, "Your parcel Ünïcode", subject)
			require.Equal(t, tc.wantType, p.ctype)
			require.Equal(t, "Hello Ana,\nyour parcel is on its way.", strings.TrimRight(p.text, "\n"))
			require.Equal(t, tc.html, strings.TrimRight(p.html, "\n"))
		})
	}
}

func TestSendErrors(t *testing.T) {
	msg := channel.Message{MessageID: "m1", Receiver: "bob@example.org", Subject: "s", Text: "t"}
	tests := []struct {
		name          string
		setup         func(t *testing.T) (email.Config, *egress.Guard)
		msg           channel.Message
		wantPermanent bool
		wantForbidden bool
		wantContains  string
	}{
		{
			name: "550 recipient rejected is permanent",
			setup: func(t *testing.T) (email.Config, *egress.Guard) {
				be := &backend{rcptErrs: map[string]*smtp.SMTPError{"bob@example.org": {
					Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}}}
				return plainConfig(startServer(t, be, modePlain)), loopbackGuard()
			},
			msg: msg, wantPermanent: true, wantContains: "no such user",
		},
		{
			name: "451 is transient",
			setup: func(t *testing.T) (email.Config, *egress.Guard) {
				be := &backend{rcptErrs: map[string]*smtp.SMTPError{"bob@example.org": {
					Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}}}
				return plainConfig(startServer(t, be, modePlain)), loopbackGuard()
			},
			msg: msg, wantContains: "try again later",
		},
		{
			name: "wrong password is permanent",
			setup: func(t *testing.T) (email.Config, *egress.Guard) {
				be := &backend{user: "mailer", pass: "right"}
				cfg := email.Config{Host: "127.0.0.1", Port: startServer(t, be, modeStartTLS), From: "noreply@example.com",
					TLS: email.TLSStartTLS, Username: "mailer", Password: "wrong", Timeout: 5 * time.Second, InsecureSkipVerify: true}
				return cfg, loopbackGuard()
			},
			msg: msg, wantPermanent: true, wantContains: "535",
		},
		{
			name: "guard refuses loopback without allow entry",
			setup: func(t *testing.T) (email.Config, *egress.Guard) {
				return plainConfig(startServer(t, &backend{}, modePlain)), egress.New(nil)
			},
			msg: msg, wantPermanent: true, wantForbidden: true, wantContains: "127.0.0.1",
		},
		{
			name: "guard refuses localhost name",
			setup: func(t *testing.T) (email.Config, *egress.Guard) {
				cfg := plainConfig(startServer(t, &backend{}, modePlain))
				cfg.Host = "localhost"
				return cfg, nil
			},
			msg: msg, wantPermanent: true, wantForbidden: true,
		},
		{
			name: "connection refused is transient",
			setup: func(t *testing.T) (email.Config, *egress.Guard) {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				port := l.Addr().(*net.TCPAddr).Port
				require.NoError(t, l.Close())
				return plainConfig(port), loopbackGuard()
			},
			msg: msg,
		},
		{
			name: "starttls required but not offered is transient",
			setup: func(t *testing.T) (email.Config, *egress.Guard) {
				cfg := plainConfig(startServer(t, &backend{}, modePlain))
				cfg.TLS = email.TLSStartTLS
				return cfg, loopbackGuard()
			},
			msg: msg, wantContains: "STARTTLS",
		},
		{
			name: "invalid receiver is permanent",
			setup: func(t *testing.T) (email.Config, *egress.Guard) {
				return plainConfig(startServer(t, &backend{}, modePlain)), loopbackGuard()
			},
			msg:           channel.Message{MessageID: "m2", Receiver: "not-an-address", Text: "t"},
			wantPermanent: true, wantContains: "not-an-address",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, guard := tc.setup(t)
			s, err := email.New(cfg, guard)
			require.NoError(t, err)
			_, err = s.Send(context.Background(), tc.msg)
			require.Error(t, err)
			require.Equal(t, tc.wantPermanent, channel.IsPermanent(err), "error: %v", err)
			if tc.wantForbidden {
				require.ErrorIs(t, err, egress.ErrForbidden)
			}
			if tc.wantContains != "" {
				require.ErrorContains(t, err, tc.wantContains)
			}
		})
	}
}

func TestSendCanceledContext(t *testing.T) {
	be := &backend{}
	s, err := email.New(plainConfig(startServer(t, be, modePlain)), loopbackGuard())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.Send(ctx, channel.Message{MessageID: "m", Receiver: "a@example.org", Text: "t"})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, channel.IsPermanent(err))
	require.Empty(t, be.received())
}

func plainConfig(port int) email.Config {
	return email.Config{Host: "127.0.0.1", Port: port, From: "noreply@example.com",
		TLS: email.TLSNone, Timeout: 5 * time.Second}
}
