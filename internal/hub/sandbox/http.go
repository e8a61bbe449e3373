package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/waypost/waypost/internal/platform/httpx"
)

// maxBody bounds every request body of the sandbox API.
const maxBody = 64 << 10

// Bounds of a waybill the upstream accepts.
const (
	maxWeightGrams = 70_000
	maxTextLen     = 191
	maxAddressLen  = 1000
)

// createWaybillRequest is the body of POST /sandbox/v1/waybills.
type createWaybillRequest struct {
	OriginStation      string   `json:"originStation"`
	DestinationStation string   `json:"destinationStation"`
	Type               string   `json:"type"`
	Service            string   `json:"service"`
	WeightGrams        int64    `json:"weightGrams"`
	CODAmount          int64    `json:"codAmount"`
	Receiver           Receiver `json:"receiver"`
}

// apiError is a refusal with its HTTP status and stable code.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...)}
}

// writeErr translates an error into the contract's error body once, here.
func (s *Service) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		httpx.WriteError(w, ae.status, ae.code, ae.message)
	case errors.Is(err, ErrUnknownWaybill):
		httpx.WriteError(w, http.StatusNotFound, "unknown_waybill", err.Error())
	case errors.Is(err, ErrUnknownStation):
		httpx.WriteError(w, http.StatusNotFound, "unknown_station", err.Error())
	case errors.Is(err, ErrUnknownSortPlan):
		httpx.WriteError(w, http.StatusNotFound, "unknown_sort_plan", err.Error())
	default:
		s.logger.ErrorContext(r.Context(), "sandbox request failed", "path", r.URL.Path, "err", err)
		httpx.WriteError(w, http.StatusInternalServerError, "internal", "internal error")
	}
}

// decode reads a JSON body into v, mapping an oversized body to 413.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		if httpx.IsTooLarge(err) {
			return &apiError{status: http.StatusRequestEntityTooLarge, code: "payload_too_large", message: "body exceeds 64 KiB"}
		}
		return badRequest("invalid_body", "body is not valid JSON: %v", err)
	}
	return nil
}

// validate checks a waybill request against the network and fills defaults.
func (s *Service) validate(req *createWaybillRequest) error {
	if req.Type == "" {
		req.Type = "standard"
	}
	if req.Service == "" {
		req.Service = "standard"
	}
	origin, ok := s.net.stations[req.OriginStation]
	if !ok {
		return badRequest("unknown_station", "originStation %q is not a station", req.OriginStation)
	}
	dest, ok := s.net.stations[req.DestinationStation]
	if !ok {
		return badRequest("unknown_station", "destinationStation %q is not a station", req.DestinationStation)
	}
	switch {
	case origin.Kind != KindFirstMile:
		return badRequest("invalid_origin", "originStation %s is a %s; parcels enter the network at a first_mile hub", origin.Code, origin.Kind)
	case dest.Kind != KindLastMile:
		return badRequest("invalid_destination", "destinationStation %s is a %s; parcels leave the network from a last_mile hub", dest.Code, dest.Kind)
	case !slices.Contains(waybillTypes, req.Type):
		return badRequest("invalid_type", "type %q: want one of %s", req.Type, strings.Join(waybillTypes, ", "))
	case !slices.Contains(services, req.Service):
		return badRequest("invalid_service", "service %q: want one of %s", req.Service, strings.Join(services, ", "))
	case req.WeightGrams <= 0 || req.WeightGrams > maxWeightGrams:
		return badRequest("invalid_weight", "weightGrams %d: want 1..%d", req.WeightGrams, maxWeightGrams)
	case req.CODAmount < 0:
		return badRequest("invalid_cod_amount", "codAmount %d: must not be negative", req.CODAmount)
	}
	rc := req.Receiver
	for _, f := range []struct {
		name, val string
		max       int
	}{{"name", rc.Name, maxTextLen}, {"phone", rc.Phone, 64}, {"address", rc.Address, maxAddressLen}} {
		if strings.TrimSpace(f.val) == "" {
			return badRequest("invalid_receiver", "receiver.%s is required", f.name)
		}
		if utf8.RuneCountInString(f.val) > f.max {
			return badRequest("invalid_receiver", "receiver.%s is longer than %d characters", f.name, f.max)
		}
	}
	return nil
}

func (s *Service) handleCreateWaybill(w http.ResponseWriter, r *http.Request) {
	var req createWaybillRequest
	if err := decode(w, r, &req); err != nil {
		s.writeErr(w, r, err)
		return
	}
	if err := s.validate(&req); err != nil {
		s.writeErr(w, r, err)
		return
	}
	origin := s.net.stations[req.OriginStation]
	if st, _, err := s.store.station(r.Context(), origin.Code); err != nil {
		s.writeErr(w, r, err)
		return
	} else if !st.Active {
		s.writeErr(w, r, badRequest("station_inactive", "originStation %s takes no parcels at the moment", st.Code))
		return
	}
	wb := &Waybill{
		Market: origin.Market, OriginStation: req.OriginStation, DestinationStation: req.DestinationStation,
		Type: req.Type, Service: req.Service, WeightGrams: req.WeightGrams, CODAmount: req.CODAmount,
		Currency: s.net.currency[origin.Market], Receiver: req.Receiver,
	}
	if err := s.store.createWaybill(r.Context(), wb); err != nil {
		s.writeErr(w, r, err)
		return
	}
	s.changed()
	httpx.WriteJSON(w, http.StatusCreated, wb)
}

func (s *Service) handleGetWaybill(w http.ResponseWriter, r *http.Request) {
	wb, err := s.store.waybill(r.Context(), r.PathValue("id"), true)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, wb)
}

// stationJSON is a station in the HTTP API.
type stationJSON struct {
	Code           string `json:"code"`
	Name           string `json:"name"`
	Kind           string `json:"kind"`
	Market         string `json:"market"`
	City           string `json:"city"`
	TimeZone       string `json:"timeZone"`
	Active         bool   `json:"active"`
	ExceptionChute string `json:"exceptionChute"`
}

func (s *Service) handleListStations(w http.ResponseWriter, r *http.Request) {
	rows, err := s.store.stations(r.Context(), r.URL.Query().Get("market"), r.URL.Query().Get("kind"))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	out := make([]stationJSON, 0, len(rows))
	for _, st := range rows {
		out = append(out, stationJSON(st.Station))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"stations": out})
}

func (s *Service) handleGetRoute(w http.ResponseWriter, r *http.Request) {
	from, to := r.URL.Query().Get("origin"), r.URL.Query().Get("destination")
	p, ok := s.net.route(from, to)
	if !ok {
		s.writeErr(w, r, &apiError{status: http.StatusNotFound, code: "unknown_route",
			message: fmt.Sprintf("no route from %q to %q", from, to)})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"origin": from, "destination": to, "stations": p})
}

func (s *Service) handleSetStatus(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &req); err != nil {
		s.writeErr(w, r, err)
		return
	}
	if !slices.Contains(deliveryStatuses, req.Status) {
		s.writeErr(w, r, badRequest("invalid_status", "status %q: want one of %s", req.Status, strings.Join(deliveryStatuses, ", ")))
		return
	}
	s.adminUpdate(w, r, s.store.setStatus(r.Context(), r.PathValue("id"), req.Status, clip(req.Reason)))
}

func (s *Service) handleSetBilling(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Blocked    bool   `json:"blocked"`
		ReasonCode string `json:"reasonCode"`
	}
	if err := decode(w, r, &req); err != nil {
		s.writeErr(w, r, err)
		return
	}
	code := ""
	if req.Blocked {
		code = clip(req.ReasonCode)
		if code == "" {
			code = "billing_blocked"
		}
	}
	s.adminUpdate(w, r, s.store.setBillingBlock(r.Context(), r.PathValue("id"), code))
}

func (s *Service) handleSetHold(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Hold   bool   `json:"hold"`
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &req); err != nil {
		s.writeErr(w, r, err)
		return
	}
	var err error
	if req.Hold {
		reason := clip(req.Reason)
		if reason == "" {
			reason = "on_hold"
		}
		err = s.store.setStatus(r.Context(), r.PathValue("id"), StatusOnHold, reason)
	} else {
		err = s.store.releaseHold(r.Context(), r.PathValue("id"))
	}
	s.adminUpdate(w, r, err)
}

// adminUpdate answers an admin change of a waybill with the waybill.
func (s *Service) adminUpdate(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	s.changed()
	s.handleGetWaybill(w, r)
}

// clip bounds a free-text reason to what the store keeps.
func clip(v string) string {
	v = strings.TrimSpace(v)
	if utf8.RuneCountInString(v) > maxTextLen {
		v = string([]rune(v)[:maxTextLen])
	}
	return v
}

func (s *Service) handleUpdateStation(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	cur, _, err := s.store.station(r.Context(), code)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	req := struct {
		Active         *bool   `json:"active"`
		ExceptionChute *string `json:"exceptionChute"`
	}{}
	if err := decode(w, r, &req); err != nil {
		s.writeErr(w, r, err)
		return
	}
	if req.Active != nil {
		cur.Active = *req.Active
	}
	if req.ExceptionChute != nil {
		if c := strings.TrimSpace(*req.ExceptionChute); c == "" || len(c) > 32 {
			s.writeErr(w, r, badRequest("invalid_chute", "exceptionChute must be 1..32 characters"))
			return
		}
		cur.ExceptionChute = strings.TrimSpace(*req.ExceptionChute)
	}
	if err := s.store.updateStation(r.Context(), code, cur.Active, cur.ExceptionChute); err != nil {
		s.writeErr(w, r, err)
		return
	}
	s.changed()
	httpx.WriteJSON(w, http.StatusOK, stationJSON(cur))
}

func (s *Service) handleGetSortPlan(w http.ResponseWriter, r *http.Request) {
	p, err := s.store.sortPlan(r.Context(), r.PathValue("station"), 0)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, p)
}

func (s *Service) handlePublishSortPlan(w http.ResponseWriter, r *http.Request) {
	station := r.PathValue("station")
	var req struct {
		ExceptionChute string     `json:"exceptionChute"`
		Rules          []SortRule `json:"rules"`
	}
	if err := decode(w, r, &req); err != nil {
		s.writeErr(w, r, err)
		return
	}
	if _, ok := s.net.stations[station]; !ok {
		s.writeErr(w, r, fmt.Errorf("station %q: %w", station, ErrUnknownStation))
		return
	}
	if req.ExceptionChute == "" {
		req.ExceptionChute = exceptionChute
	}
	if err := s.net.validateRules(req.Rules); err != nil {
		s.writeErr(w, r, badRequest("invalid_rules", "%v", err))
		return
	}
	if req.Rules == nil {
		req.Rules = []SortRule{}
	}
	slices.SortStableFunc(req.Rules, func(a, b SortRule) int { return a.Priority - b.Priority })
	p, err := s.store.publishSortPlan(r.Context(), station, req.ExceptionChute, req.Rules)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	s.changed()
	httpx.WriteJSON(w, http.StatusCreated, p)
}
