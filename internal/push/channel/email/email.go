// Package email sends push messages over SMTP (plain, STARTTLS or implicit
// TLS, with optional authentication) through the go-mail library, dialling
// only through the egress guard.
package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/waypost/waypost/internal/platform/egress"
	"github.com/waypost/waypost/internal/push/channel"
)

// TLS modes accepted in Config.TLS.
const (
	TLSNone     = "none"     // plain text; authentication only towards localhost
	TLSStartTLS = "starttls" // STARTTLS is required, the send fails without it
	TLSImplicit = "tls"      // TLS from the first byte (SMTPS, usually port 465)
)

// DefaultTimeout bounds one whole SMTP conversation when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// HeaderMessageID carries the push messageId so bounces and receipts can be
// traced back without parsing Message-ID.
const HeaderMessageID = "X-Waypost-Message-Id"

// ErrConfig is wrapped by every configuration validation error from New.
var ErrConfig = errors.New("invalid email config")

// Config is one email channel account. The JSON names match the channel
// account API; Timeout and InsecureSkipVerify are set in code only.
type Config struct {
	Host     string `json:"host"`
	Port     int    `json:"port,omitempty"` // 0: 25, 587 or 465 by TLS mode
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	From     string `json:"from"`
	TLS      string `json:"tls,omitempty"` // none|starttls|tls; empty means starttls

	Timeout time.Duration `json:"-"`
	// InsecureSkipVerify disables certificate checks; for tests only.
	InsecureSkipVerify bool `json:"-"`
}

// Option tunes a Sender.
type Option func(*Sender)

// WithClock sets the clock used for the Date header.
func WithClock(now func() time.Time) Option {
	return func(s *Sender) {
		if now != nil {
			s.now = now
		}
	}
}

// Sender delivers messages to one SMTP server. It is safe for concurrent use:
// every Send opens its own connection.
type Sender struct {
	cfg    Config
	domain string // of the From address, for Message-ID
	guard  *egress.Guard
	tlsCfg *tls.Config
	now    func() time.Time
}

var _ channel.Sender = (*Sender)(nil)

// New validates cfg and returns a sender dialling through guard. A nil guard
// refuses every internal address (see egress.Guard).
func New(cfg Config, guard *egress.Guard, opts ...Option) (channel.Sender, error) {
	cfg, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("%w: from %q: %w", ErrConfig, cfg.From, err)
	}
	s := &Sender{
		cfg:    cfg,
		domain: from.Address[strings.LastIndexByte(from.Address, '@')+1:],
		guard:  guard,
		tlsCfg: &tls.Config{
			ServerName:         cfg.Host,
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: cfg.InsecureSkipVerify, // tests only, see Config
		},
		now: time.Now,
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// normalize fills defaults and rejects invalid fields with a clear reason.
func normalize(cfg Config) (Config, error) {
	cfg.Host = strings.TrimSpace(cfg.Host)
	switch {
	case cfg.Host == "":
		return cfg, fmt.Errorf("%w: host is required", ErrConfig)
	case strings.ContainsAny(cfg.Host, "/ \t@") || strings.Contains(cfg.Host, "://"):
		return cfg, fmt.Errorf("%w: host %q must be a bare host name or IP address", ErrConfig, cfg.Host)
	}
	if _, _, err := net.SplitHostPort(cfg.Host); err == nil {
		return cfg, fmt.Errorf("%w: host %q must not contain a port; use port", ErrConfig, cfg.Host)
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	defaultPort := 0
	switch cfg.TLS {
	case TLSNone:
		defaultPort = 25
	case TLSStartTLS:
		defaultPort = 587
	case TLSImplicit:
		defaultPort = 465
	default:
		return cfg, fmt.Errorf("%w: tls %q must be one of none, starttls, tls", ErrConfig, cfg.TLS)
	}
	if cfg.Port == 0 {
		cfg.Port = defaultPort
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return cfg, fmt.Errorf("%w: port %d out of range 1-65535", ErrConfig, cfg.Port)
	}
	if cfg.From == "" {
		return cfg, fmt.Errorf("%w: from is required", ErrConfig)
	}
	if cfg.Password != "" && cfg.Username == "" {
		return cfg, fmt.Errorf("%w: password given without username", ErrConfig)
	}
	if cfg.Timeout < 0 {
		return cfg, fmt.Errorf("%w: timeout %s is negative", ErrConfig, cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	return cfg, nil
}

// Send delivers m to m.Receiver. SMTP 5xx replies, invalid addresses and
// egress refusals are channel.Permanent; 4xx replies and network errors are
// transient.
func (s *Sender) Send(ctx context.Context, m channel.Message) (channel.Result, error) {
	msg, id, err := s.build(m)
	if err != nil {
		return channel.Result{}, err
	}
	var stop func() bool
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := s.dial(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		// go-mail only uses a context for dialling (dctx ends when the dial
		// does); closing the connection when the caller's ctx ends makes
		// cancellation abort the whole conversation.
		stop = context.AfterFunc(ctx, func() { _ = conn.Close() })
		return conn, nil
	}
	client, err := gomail.NewClient(s.cfg.Host, s.clientOptions(dial)...)
	if err != nil {
		return channel.Result{}, fmt.Errorf("email: new client: %w", err)
	}
	err = client.DialAndSendWithContext(ctx, msg)
	if stop != nil {
		stop()
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return channel.Result{}, fmt.Errorf("email: send %s to %s: %w", m.MessageID, m.Receiver, errors.Join(ctxErr, err))
		}
		return channel.Result{}, classify(fmt.Errorf("email: send %s to %s: %w", m.MessageID, m.Receiver, err))
	}
	return channel.Result{ProviderID: id}, nil
}

// dial connects through the guard, adding TLS for implicit-TLS accounts
// (go-mail skips its own TLS wrapping when given a dial function).
func (s *Sender) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if s.cfg.TLS != TLSImplicit {
		return s.guard.DialContext(ctx, network, addr)
	}
	d := tls.Dialer{NetDialer: s.guard.Dialer(), Config: s.tlsCfg}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("egress: dial tls %s: %w", addr, err)
	}
	return conn, nil
}

func (s *Sender) clientOptions(dial gomail.DialContextFunc) []gomail.Option {
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.Port),
		gomail.WithTimeout(s.cfg.Timeout),
		gomail.WithTLSConfig(s.tlsCfg),
		gomail.WithDialContextFunc(dial),
	}
	switch s.cfg.TLS {
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	}
	if s.cfg.Username != "" {
		// Strongest mechanism the server offers first. PLAIN and LOGIN still
		// refuse to send a password over an unencrypted connection to
		// anything but localhost; go-mail's auto-discovery would wrongly see
		// our implicit-TLS connection as unencrypted, hence the explicit list.
		opts = append(opts,
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1,
				gomail.SMTPAuthCramMD5, gomail.SMTPAuthPlain, gomail.SMTPAuthLogin),
			gomail.WithUsername(s.cfg.Username),
			gomail.WithPassword(s.cfg.Password),
		)
	}
	return opts
}

// build renders the MIME message and returns it with its Message-ID value.
func (s *Sender) build(m channel.Message) (*gomail.Msg, string, error) {
	msg := gomail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return nil, "", channel.Permanent(fmt.Errorf("email: from %q: %w", s.cfg.From, err))
	}
	if _, err := mail.ParseAddress(m.Receiver); err != nil {
		return nil, "", channel.Permanent(fmt.Errorf("email: receiver %q: %w", m.Receiver, err))
	}
	if err := msg.To(m.Receiver); err != nil {
		return nil, "", channel.Permanent(fmt.Errorf("email: receiver %q: %w", m.Receiver, err))
	}
	msg.Subject(m.Subject)
	id := messageID(m.MessageID, s.domain)
	if id == "" {
		msg.SetMessageID()
		id = strings.Trim(msg.GetMessageID(), "<>")
	} else {
		msg.SetMessageIDWithValue(id)
	}
	msg.SetDateWithValue(s.now())
	if m.MessageID != "" {
		msg.SetGenHeader(gomail.Header(HeaderMessageID), m.MessageID)
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, id, nil
}

// messageID turns a push messageId into an RFC 5322 msg-id (without the angle
// brackets), keeping only characters that are safe in a dot-atom.
func messageID(pushID, domain string) string {
	var b strings.Builder
	for _, r := range pushID {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '.', r == '-', r == '_', r == '+', r == '=':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return ""
	}
	local := strings.Trim(b.String(), ".")
	if local == "" {
		local = "_"
	}
	return "waypost." + local + "@" + domain
}

// classify marks errors that retrying cannot fix as channel.Permanent.
func classify(err error) error {
	if errors.Is(err, egress.ErrForbidden) {
		return channel.Permanent(err)
	}
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode() >= 500 && se.ErrorCode() < 600 {
		return channel.Permanent(err)
	}
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && te.Code < 600 {
		return channel.Permanent(err)
	}
	return err
}
