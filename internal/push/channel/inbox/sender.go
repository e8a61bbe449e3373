package inbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/waypost/waypost/internal/push/channel"
)

// Sender delivers push messages into receivers' inboxes and tells the hub.
type Sender struct {
	store *Store
	hub   *Hub
}

var _ channel.Sender = (*Sender)(nil)

// NewSender returns a Sender writing to st and announcing to hub (which may
// be nil when nothing streams in this process).
func NewSender(st *Store, hub *Hub) *Sender { return &Sender{store: st, hub: hub} }

// Send stores m in m.Receiver's inbox. It is idempotent per (MessageID,
// Receiver): a redelivered message is neither stored nor streamed twice. The
// result's ProviderID is the inbox row id.
func (s *Sender) Send(ctx context.Context, m channel.Message) (channel.Result, error) {
	stored, created, err := s.store.Put(ctx, Message{
		Receiver:   m.Receiver,
		MessageID:  m.MessageID,
		BusinessID: m.BusinessID,
		TemplateID: m.TemplateID,
		Subject:    m.Subject,
		Text:       m.Text,
	})
	if errors.Is(err, ErrInvalid) {
		return channel.Result{}, channel.Permanent(fmt.Errorf("inbox send: %w", err))
	}
	if err != nil {
		return channel.Result{}, fmt.Errorf("inbox send: %w", err)
	}
	if created && s.hub != nil {
		s.hub.Publish(stored)
	}
	return channel.Result{ProviderID: strconv.FormatInt(stored.ID, 10)}, nil
}

// Factory returns the handler's sender factory for the inbox channel. The
// inbox needs no channel account, so accountConfig is ignored and every call
// shares one Sender.
func Factory(st *Store, hub *Hub) func(ctx context.Context, accountConfig map[string]any) (channel.Sender, error) {
	s := NewSender(st, hub)
	return func(context.Context, map[string]any) (channel.Sender, error) { return s, nil }
}
