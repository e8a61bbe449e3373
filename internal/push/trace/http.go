package trace

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/waypost/waypost/internal/platform/httpx"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/push/trace/receipt"
)

// Error codes of the trace API, beyond the server's own (unauthorized,
// forbidden, payload_too_large).
const (
	CodeInvalidArgument = "invalid_argument"
	CodeInvalidBody     = "invalid_body"
	CodeInvalidReceipt  = "invalid_receipt"
	CodeEmptyReceipts   = "empty_receipts"
	CodeTooManyReceipts = "too_many_receipts"
	CodeQueueUnavail    = "queue_unavailable"
	CodeInternal        = "internal"
)

// APIConfig tunes the API; zero fields take their defaults.
type APIConfig struct {
	// Location is the zone of the receiver query's day and of "today" when
	// a query names no date; default UTC. It must be the views' Location.
	Location *time.Location
	// MaxReceipts bounds the receipts of one request; default 1000.
	MaxReceipts int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// API serves the trace queries and takes delivery receipts.
type API struct {
	reader *Reader
	rec    *Recorder // nil: no receipts endpoint
	log    *slog.Logger
	cfg    APIConfig
}

// NewAPI returns the trace API over r; rec may be nil (no receipts
// endpoint), logger too.
func NewAPI(r *Reader, rec *Recorder, cfg APIConfig, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.MaxReceipts <= 0 {
		cfg.MaxReceipts = 1000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &API{reader: r, rec: rec, log: logger, cfg: cfg}
}

// Register mounts the routes on mux: the queries behind queries (the
// caller's check of the trace scope), the receipts behind receipts (the send
// scope).
func (a *API) Register(mux *http.ServeMux, queries, receipts func(http.Handler) http.Handler) {
	mux.Handle("GET /api/v1/trace/messages/{messageId}", queries(http.HandlerFunc(a.byMessage)))
	mux.Handle("GET /api/v1/trace/receivers/{receiver}", queries(http.HandlerFunc(a.byReceiver)))
	mux.Handle("GET /api/v1/trace/templates/{id}", queries(http.HandlerFunc(a.byTemplate)))
	if a.rec != nil {
		mux.Handle("POST /api/v1/trace/receipts", receipts(http.HandlerFunc(a.receipts)))
	}
}

// EventsResponse is the body of the message and receiver queries.
type EventsResponse struct {
	Events []Event `json:"events"`
	// Source says whether the realtime view or the detail store answered.
	Source string `json:"source"`
}

// ReceiptsRequest is the body of POST /api/v1/trace/receipts.
type ReceiptsRequest struct {
	Receipts []receipt.Receipt `json:"receipts"`
}

func (a *API) byMessage(w http.ResponseWriter, r *http.Request) {
	evs, src, err := a.reader.Message(r.Context(), r.PathValue("messageId"))
	if err != nil {
		a.internal(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, EventsResponse{Events: evs, Source: src})
}

// byReceiver answers a receiver's events of one day, today without ?date=.
func (a *API) byReceiver(w http.ResponseWriter, r *http.Request) {
	day, ok := a.date(w, r)
	if !ok {
		return
	}
	start, end := dayOf(day, a.cfg.Location)
	evs, src, err := a.reader.Receiver(r.Context(), r.PathValue("receiver"), start, end)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, EventsResponse{Events: evs, Source: src})
}

func (a *API) byTemplate(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 || id > 999_999 {
		httpx.WriteError(w, http.StatusBadRequest, CodeInvalidArgument, "template id must be 1-999999")
		return
	}
	day, ok := a.date(w, r)
	if !ok {
		return
	}
	out, err := a.reader.Template(r.Context(), id, day)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// date is ?date=yyyyMMdd in Location, or today.
func (a *API) date(w http.ResponseWriter, r *http.Request) (time.Time, bool) {
	v := r.URL.Query().Get("date")
	if v == "" {
		return a.cfg.Now().In(a.cfg.Location), true
	}
	day, err := time.ParseInLocation("20060102", v, a.cfg.Location)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, CodeInvalidArgument, fmt.Sprintf("date %q is not yyyyMMdd", v))
		return time.Time{}, false
	}
	return day, true
}

// receipts records a batch of delivery receipts: 202 with how many were
// recorded and which were rejected (unknown message or receiver).
func (a *API) receipts(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		if httpx.IsTooLarge(err) {
			httpx.WriteError(w, http.StatusRequestEntityTooLarge, "payload_too_large", err.Error())
			return
		}
		httpx.WriteError(w, http.StatusBadRequest, CodeInvalidBody, "read body: "+err.Error())
		return
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var req ReceiptsRequest
	if err := dec.Decode(&req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, CodeInvalidBody, "malformed JSON: "+err.Error())
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		httpx.WriteError(w, http.StatusBadRequest, CodeInvalidBody, "trailing data after the JSON body")
		return
	}
	switch {
	case len(req.Receipts) == 0:
		httpx.WriteError(w, http.StatusBadRequest, CodeEmptyReceipts, "receipts is required")
		return
	case len(req.Receipts) > a.cfg.MaxReceipts:
		httpx.WriteError(w, http.StatusBadRequest, CodeTooManyReceipts,
			fmt.Sprintf("%d receipts; at most %d per request", len(req.Receipts), a.cfg.MaxReceipts))
		return
	}
	res, err := a.rec.Record(r.Context(), req.Receipts)
	switch {
	case errors.Is(err, receipt.ErrInvalid):
		httpx.WriteError(w, http.StatusBadRequest, CodeInvalidReceipt, err.Error())
	case errors.Is(err, queue.ErrUnavailable):
		a.log.WarnContext(r.Context(), "trace: record receipts", "err", err)
		httpx.WriteError(w, http.StatusServiceUnavailable, CodeQueueUnavail, "the queue is unavailable; retry later")
	case err != nil:
		a.internal(w, r, err)
	default:
		httpx.WriteJSON(w, http.StatusAccepted, res)
	}
}

func (a *API) internal(w http.ResponseWriter, r *http.Request, err error) {
	a.log.ErrorContext(r.Context(), "trace api", "path", r.URL.Path, "err", err)
	httpx.WriteError(w, http.StatusInternalServerError, CodeInternal, "internal error")
}
