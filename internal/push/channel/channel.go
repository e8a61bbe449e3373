// Package channel holds the contract every push channel sender implements:
// one rendered message for one receiver in, the provider's id or an error out.
// Senders live in sub-packages (email, webhook, …) and import only this one.
package channel

import (
	"context"
	"errors"
)

// Message is one rendered message for one receiver.
type Message struct {
	MessageID  string
	BusinessID string
	TemplateID int64
	Receiver   string
	Subject    string // email
	Text       string // plain body (all channels)
	HTML       string // email HTML body, optional
}

// Result is what a provider reports for an accepted message.
type Result struct {
	// ProviderID is the provider's id for later receipts, if any.
	ProviderID string
}

// Sender delivers one message through one channel account.
type Sender interface {
	Send(ctx context.Context, m Message) (Result, error)
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one retrying cannot fix (bad address, 4xx…); it
// returns nil for nil and keeps err reachable through errors.Is and errors.As.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
