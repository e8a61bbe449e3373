package trace

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/waypost/waypost/internal/platform/httpx"
	"github.com/waypost/waypost/internal/push"
)

// APIConfig tunes the query API; zero fields take their defaults.
type APIConfig struct {
	// Location is the time zone of the receiver query's ?date= day and of
	// "today" when the template query has no date; default UTC.
	Location *time.Location
	// Limit bounds the events one query returns (the latest ones); default 1000.
	Limit int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// API answers the trace queries.
type API struct {
	store *Store
	log   *slog.Logger
	cfg   APIConfig
}

// NewAPI returns the trace query API. logger may be nil.
func NewAPI(st *Store, cfg APIConfig, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Limit <= 0 {
		cfg.Limit = 1000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &API{store: st, log: logger, cfg: cfg}
}

// Register mounts the trace routes on mux, each wrapped by wrap (the
// caller's authentication and scope check).
func (a *API) Register(mux *http.ServeMux, wrap func(http.Handler) http.Handler) {
	mux.Handle("GET /api/v1/trace/messages/{messageId}", wrap(http.HandlerFunc(a.byMessage)))
	mux.Handle("GET /api/v1/trace/receivers/{receiver}", wrap(http.HandlerFunc(a.byReceiver)))
	mux.Handle("GET /api/v1/trace/templates/{id}", wrap(http.HandlerFunc(a.byTemplate)))
}

// EventsResponse is the body of the message and receiver queries.
type EventsResponse struct {
	Events []Event `json:"events"`
}

// TemplateResponse is the body of the template query: anchors per state
// on the template's businessId of that day. Every known state is present,
// zero when none.
type TemplateResponse struct {
	BusinessID string           `json:"businessId"`
	Counts     map[string]int64 `json:"counts"`
}

func (a *API) byMessage(w http.ResponseWriter, r *http.Request) {
	a.events(w, r, Query{MessageID: r.PathValue("messageId"), Limit: a.cfg.Limit})
}

func (a *API) byReceiver(w http.ResponseWriter, r *http.Request) {
	q := Query{Receiver: r.PathValue("receiver"), Limit: a.cfg.Limit}
	if v := r.URL.Query().Get("date"); v != "" {
		day, ok := a.parseDate(w, v)
		if !ok {
			return
		}
		q.From, q.To = day, day.AddDate(0, 0, 1)
	}
	a.events(w, r, q)
}

func (a *API) events(w http.ResponseWriter, r *http.Request, q Query) {
	evs, err := a.store.Events(r.Context(), q)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, EventsResponse{Events: evs})
}

// byTemplate counts the day's anchors of a template. The businessId embeds
// the template's kind, which the trace store does not know, so both kinds'
// ids are counted and the one with anchors is reported; the realtime one
// when neither (or, for a template whose kind changed that day, both) has.
func (a *API) byTemplate(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 || id > 999_999 {
		httpx.WriteError(w, http.StatusBadRequest, "invalid_argument", "template id must be 1-999999")
		return
	}
	day := a.cfg.Now().In(a.cfg.Location)
	if v := r.URL.Query().Get("date"); v != "" {
		var ok bool
		if day, ok = a.parseDate(w, v); !ok {
			return
		}
	}
	realtime := push.BusinessID(push.KindRealtime, id, day, day.Location())
	scheduled := push.BusinessID(push.KindScheduled, id, day, day.Location())
	counts, err := a.store.Counts(r.Context(), realtime, scheduled)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	resp := TemplateResponse{BusinessID: realtime}
	if counts[realtime] == nil && counts[scheduled] != nil {
		resp.BusinessID = scheduled
	}
	resp.Counts = zeroCounts()
	for state, n := range counts[resp.BusinessID] {
		resp.Counts[state] = n
	}
	httpx.WriteJSON(w, http.StatusOK, resp)
}

// zeroCounts has every known state at zero, so dashboards see stable keys.
func zeroCounts() map[string]int64 {
	m := map[string]int64{}
	for _, s := range []string{push.StateReceived, push.StateInvalidReceiver, push.StateDiscarded,
		push.StateQuietDropped, push.StateQuietDelayed, push.StateContentDeduplicated,
		push.StateFrequencyCapped, push.StateNotWhitelisted, push.StateSent, push.StateSendFailed,
		push.StateRecalled} {
		m[s] = 0
	}
	return m
}

func (a *API) parseDate(w http.ResponseWriter, v string) (time.Time, bool) {
	day, err := time.ParseInLocation("20060102", v, a.cfg.Location)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "invalid_argument", fmt.Sprintf("date %q is not yyyyMMdd", v))
		return time.Time{}, false
	}
	return day, true
}

func (a *API) internal(w http.ResponseWriter, r *http.Request, err error) {
	a.log.ErrorContext(r.Context(), "trace api", "path", r.URL.Path, "err", err)
	httpx.WriteError(w, http.StatusInternalServerError, "internal", "internal error")
}
