// Package receipt is the hook through which a channel reports delivery after
// the send: its provider calls back (the trace API's receipts endpoint) or is
// asked (a Poller the trace role runs). Every receipt becomes a delivered or
// undelivered anchor of the message. It depends on nothing but push, so a
// channel package can implement Poller cheaply.
package receipt

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/waypost/waypost/internal/push"
)

// ErrInvalid is wrapped by every validation error of a Receipt.
var ErrInvalid = errors.New("invalid receipt")

// Field limits, those of the trace's detail store.
const (
	maxMessageID = 64
	maxReceiver  = 191
	// MaxDetail bounds a receipt's detail, in characters.
	MaxDetail = 1000
)

// Receipt is a provider's word on one receiver of one message.
type Receipt struct {
	MessageID string `json:"messageId"`
	Receiver  string `json:"receiver"`
	// State is push.StateDelivered or push.StateUndelivered.
	State string `json:"state"`
	// At is when the provider says it happened; zero means when recorded.
	At time.Time `json:"at,omitzero"`
	// Detail is the provider's status text, e.g. an error code.
	Detail string `json:"detail,omitempty"`
}

// Validate reports what is wrong with r, wrapping ErrInvalid.
func (r Receipt) Validate() error {
	switch {
	case r.MessageID == "" || len(r.MessageID) > maxMessageID:
		return fmt.Errorf("%w: messageId must be 1-%d bytes", ErrInvalid, maxMessageID)
	case r.Receiver == "" || len(r.Receiver) > maxReceiver:
		return fmt.Errorf("%w: receiver must be 1-%d bytes", ErrInvalid, maxReceiver)
	case r.State != push.StateDelivered && r.State != push.StateUndelivered:
		return fmt.Errorf("%w: state must be %s or %s, got %q", ErrInvalid, push.StateDelivered, push.StateUndelivered, r.State)
	case utf8.RuneCountInString(r.Detail) > MaxDetail:
		return fmt.Errorf("%w: detail longer than %d characters", ErrInvalid, MaxDetail)
	}
	return nil
}

// Poller is what a channel implements when its provider reports delivery
// only when asked. The trace role calls PollReceipts periodically; a
// receipt it returns is the trace's to record (and to retry while the queue
// is down), so a poller returns each receipt once.
type Poller interface {
	PollReceipts(ctx context.Context) ([]Receipt, error)
}
