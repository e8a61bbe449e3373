package inbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/waypost/waypost/internal/platform/httpx"
)

// List page sizes.
const (
	defaultLimit = 20
	maxLimit     = 100
)

// APIConfig tunes the HTTP API; zero fields take their defaults.
type APIConfig struct {
	// Heartbeat is the interval of the SSE keep-alive comment; default 15 s.
	Heartbeat time.Duration
	// ResumeLimit bounds the messages replayed to a stream resuming with
	// Last-Event-ID; older ones are for the list endpoint. Default 1000.
	ResumeLimit int
}

// API serves a receiver's inbox over HTTP.
type API struct {
	store *Store
	hub   *Hub
	log   *slog.Logger
	cfg   APIConfig
}

// NewAPI returns the inbox HTTP API. logger may be nil.
func NewAPI(st *Store, hub *Hub, cfg APIConfig, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.ResumeLimit <= 0 {
		cfg.ResumeLimit = 1000
	}
	return &API{store: st, hub: hub, log: logger, cfg: cfg}
}

// Register mounts the inbox routes on mux, each wrapped by wrap (the
// caller's authentication and scope check).
func (a *API) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	mux.Handle("GET /api/v1/inbox/{receiver}/messages", wrap(http.HandlerFunc(a.list)))
	mux.Handle("POST /api/v1/inbox/{receiver}/messages/{messageId}/read", wrap(http.HandlerFunc(a.markRead)))
	mux.Handle("POST /api/v1/inbox/{receiver}/read-all", wrap(http.HandlerFunc(a.markAllRead)))
	mux.Handle("GET /api/v1/inbox/{receiver}/stream", wrap(http.HandlerFunc(a.stream)))
}

// Item is one message as the API shows it.
type Item struct {
	MessageID string    `json:"messageId"`
	Text      string    `json:"text"`
	Read      bool      `json:"read"`
	At        time.Time `json:"at"`
}

// ListResponse is the body of the list endpoint; NextCursor is empty on the
// last page.
type ListResponse struct {
	Messages   []Item `json:"messages"`
	NextCursor string `json:"nextCursor"`
}

func item(m Message) Item {
	return Item{MessageID: m.MessageID, Text: m.Text, Read: m.ReadAt != nil, At: m.CreatedAt}
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := ListOptions{Limit: defaultLimit, UnreadOnly: q.Get("unread") == "1" || q.Get("unread") == "true"}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			httpx.WriteError(w, http.StatusBadRequest, "invalid_argument", fmt.Sprintf("limit must be 1-%d", maxLimit))
			return
		}
		opts.Limit = n
	}
	if v := q.Get("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			httpx.WriteError(w, http.StatusBadRequest, "invalid_argument", "cursor is not one this API returned")
			return
		}
		opts.Before = n
	}
	page, err := a.store.List(r.Context(), r.PathValue("receiver"), opts)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	resp := ListResponse{Messages: make([]Item, 0, len(page.Messages))}
	for _, m := range page.Messages {
		resp.Messages = append(resp.Messages, item(m))
	}
	if page.Next > 0 {
		resp.NextCursor = strconv.FormatInt(page.Next, 10)
	}
	httpx.WriteJSON(w, http.StatusOK, resp)
}

func (a *API) markRead(w http.ResponseWriter, r *http.Request) {
	err := a.store.MarkRead(r.Context(), r.PathValue("receiver"), r.PathValue("messageId"))
	switch {
	case errors.Is(err, ErrNotFound):
		httpx.WriteError(w, http.StatusNotFound, "not_found", "no such message in this inbox")
	case err != nil:
		a.internal(w, r, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (a *API) markAllRead(w http.ResponseWriter, r *http.Request) {
	n, err := a.store.MarkAllRead(r.Context(), r.PathValue("receiver"))
	if err != nil {
		a.internal(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]int64{"marked": n})
}

func (a *API) internal(w http.ResponseWriter, r *http.Request, err error) {
	a.log.ErrorContext(r.Context(), "inbox api", "path", r.URL.Path, "err", err)
	httpx.WriteError(w, http.StatusInternalServerError, "internal", "internal error")
}

// stream serves Server-Sent Events: `event: message` with an Item as data
// and the store id as the event id, a comment line as heartbeat. A client
// resuming with Last-Event-ID first gets what it missed from the store.
func (a *API) stream(w http.ResponseWriter, r *http.Request) {
	receiver := r.PathValue("receiver")
	var last int64
	resume := false
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		// EventSource cannot set headers on its first connection.
		lastID = r.URL.Query().Get("lastEventId")
	}
	if lastID != "" {
		n, err := strconv.ParseInt(lastID, 10, 64)
		if err != nil || n < 0 {
			httpx.WriteError(w, http.StatusBadRequest, "invalid_argument", "Last-Event-ID is not an event id of this stream")
			return
		}
		last, resume = n, true
	}
	// Subscribing before reading the backlog leaves no gap between them.
	sub, err := a.hub.Subscribe(receiver)
	if errors.Is(err, ErrClosed) {
		httpx.WriteError(w, http.StatusServiceUnavailable, "unavailable", "server is shutting down")
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	defer sub.Close()

	rc := http.NewResponseController(w)
	// A server WriteTimeout would cut every stream; the heartbeat proves
	// liveness instead. Writers that cannot clear it are fine as they are.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, ": connected\n\n"); err != nil || rc.Flush() != nil {
		return
	}

	replayed := map[int64]struct{}{}
	if resume {
		msgs, err := a.store.After(r.Context(), receiver, last, a.cfg.ResumeLimit)
		if err != nil {
			a.log.ErrorContext(r.Context(), "inbox stream resume", "receiver", receiver, "err", err)
			return
		}
		for _, m := range msgs {
			replayed[m.ID] = struct{}{}
			if writeEvent(w, m) != nil {
				return
			}
		}
		if rc.Flush() != nil {
			return
		}
	}

	beat := time.NewTicker(a.cfg.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-a.hub.Done():
			return
		case m, ok := <-sub.C:
			if !ok {
				// Dropped as too slow: the client reconnects with
				// Last-Event-ID and catches up from the store.
				return
			}
			if _, dup := replayed[m.ID]; dup {
				continue
			}
			if writeEvent(w, m) != nil || rc.Flush() != nil {
				return
			}
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

func writeEvent(w http.ResponseWriter, m Message) error {
	data, err := json.Marshal(item(m))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "id: %d\nevent: message\ndata: %s\n\n", m.ID, data)
	return err
}
