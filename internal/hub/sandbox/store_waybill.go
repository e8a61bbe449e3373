package sandbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Track event codes that move a waybill's delivery status (UPU EMSEVT-style,
// as the hub publishes them).
const (
	eventOutForDelivery = "EDG"
	eventDelivered      = "EMI"
)

const waybillCols = "waybill_no, market, origin_station, destination_station, waybill_type, service, weight_grams, " +
	"cod_amount, currency, receiver_name, receiver_phone, receiver_address, delivery_status, status_reason, " +
	"billing_block, created_at, updated_at"

// newWaybillNo draws a waybill number: "WP", the market, ten digits.
func newWaybillNo(market string) (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1e10))
	if err != nil {
		return "", fmt.Errorf("sandbox: draw waybill number: %w", err)
	}
	return fmt.Sprintf("WP%s%010d", market, n.Int64()), nil
}

// createWaybill stores w (WaybillNo, Status and times are filled in) and logs
// its creation.
func (s *store) createWaybill(ctx context.Context, w *Waybill) error {
	now := s.now()
	w.Status = StatusCreated
	w.CreatedAt, w.UpdatedAt = fromMS(ms(now)), fromMS(ms(now))
	w.Track = []TrackEvent{}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	for attempt := 0; ; attempt++ {
		no, err := newWaybillNo(w.Market)
		if err != nil {
			return err
		}
		w.WaybillNo = no
		var inserted int64
		err = s.db.InTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, s.insertIgnore("sandbox_waybills", waybillCols, 17),
				w.WaybillNo, w.Market, w.OriginStation, w.DestinationStation, w.Type, w.Service, w.WeightGrams,
				w.CODAmount, w.Currency, w.Receiver.Name, w.Receiver.Phone, w.Receiver.Address, w.Status, "", "",
				ms(now), ms(now))
			if err != nil {
				return fmt.Errorf("sandbox: insert waybill: %w", err)
			}
			if inserted, _ = res.RowsAffected(); inserted == 0 {
				return nil // number taken: roll back nothing, draw again
			}
			return s.logWaybillChange(ctx, tx, w.WaybillNo, changeCreated, ms(now))
		})
		if err != nil {
			return err
		}
		if inserted > 0 {
			// Write-through: the hub asks for a new waybill at once (inbound),
			// so the row goes into the cache as written. writeMu is held, so
			// no other write can come between.
			gen, at := s.wbCache.generation()
			s.wbCache.keep(*w, gen, at)
			return nil
		}
		if attempt == 5 {
			return errors.New("sandbox: insert waybill: no free number after 5 draws")
		}
	}
}

func (s *store) logWaybillChange(ctx context.Context, tx *sql.Tx, no, kind string, now int64) error {
	if _, err := tx.ExecContext(ctx, s.q("INSERT INTO sandbox_waybill_changes (waybill_no, kind, changed_at) VALUES (?, ?, ?)"),
		no, kind, now); err != nil {
		return fmt.Errorf("sandbox: log %s change of %s: %w", kind, no, err)
	}
	return nil
}

func scanWaybill(row interface{ Scan(...any) error }) (*Waybill, error) {
	var w Waybill
	var created, updated int64
	err := row.Scan(&w.WaybillNo, &w.Market, &w.OriginStation, &w.DestinationStation, &w.Type, &w.Service,
		&w.WeightGrams, &w.CODAmount, &w.Currency, &w.Receiver.Name, &w.Receiver.Phone, &w.Receiver.Address,
		&w.Status, &w.StatusReason, &w.BillingBlock, &created, &updated)
	if err != nil {
		return nil, err
	}
	w.CreatedAt, w.UpdatedAt = fromMS(created), fromMS(updated)
	return &w, nil
}

// waybill loads one waybill, with its track when asked.
func (s *store) waybill(ctx context.Context, no string, withTrack bool) (*Waybill, error) {
	if c, ok := s.wbCache.get(no); ok {
		w := &c
		if withTrack {
			var err error
			if w.Track, err = s.track(ctx, no); err != nil {
				return nil, err
			}
		}
		return w, nil
	}
	gen, at := s.wbCache.generation()
	w, err := scanWaybill(s.read().QueryRowContext(ctx, s.q("SELECT "+waybillCols+" FROM sandbox_waybills WHERE waybill_no = ?"), no))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("waybill %q: %w", no, ErrUnknownWaybill)
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox: load waybill %s: %w", no, err)
	}
	s.wbCache.keep(*w, gen, at)
	if withTrack {
		if w.Track, err = s.track(ctx, no); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// waybills loads the known waybills among nos, keyed by number.
func (s *store) waybills(ctx context.Context, nos []string, withTrack bool) (map[string]*Waybill, error) {
	out := make(map[string]*Waybill, len(nos))
	// Rows in the cache are answered from it, as waybill does; the rest
	// are read in one query.
	var args []any
	for _, no := range nos {
		if c, ok := s.wbCache.get(no); ok {
			out[no] = &c
		} else {
			args = append(args, no)
		}
	}
	if len(args) > 0 {
		if err := s.loadWaybills(ctx, args, out); err != nil {
			return nil, err
		}
	}
	if withTrack {
		for no, w := range out {
			var err error
			if w.Track, err = s.track(ctx, no); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// loadWaybills reads the rows of the waybill numbers in args into out,
// keeping them in the cache.
func (s *store) loadWaybills(ctx context.Context, args []any, out map[string]*Waybill) error {
	gen, at := s.wbCache.generation()
	ph := strings.TrimSuffix(strings.Repeat("?,", len(args)), ",")
	rows, err := s.read().QueryContext(ctx, s.q("SELECT "+waybillCols+" FROM sandbox_waybills WHERE waybill_no IN ("+ph+")"), args...)
	if err != nil {
		return fmt.Errorf("sandbox: batch load waybills: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		w, err := scanWaybill(rows)
		if err != nil {
			return fmt.Errorf("sandbox: scan waybill: %w", err)
		}
		s.wbCache.keep(*w, gen, at)
		out[w.WaybillNo] = w
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sandbox: batch load waybills: %w", err)
	}
	return nil
}

// track loads a waybill's events in sequence order.
func (s *store) track(ctx context.Context, no string) ([]TrackEvent, error) {
	rows, err := s.read().QueryContext(ctx, s.q("SELECT seq, event_id, event_code, station, event_time, operator, reason_code, description "+
		"FROM sandbox_track WHERE waybill_no = ? ORDER BY seq"), no)
	if err != nil {
		return nil, fmt.Errorf("sandbox: load track of %s: %w", no, err)
	}
	defer func() { _ = rows.Close() }()
	out := []TrackEvent{}
	for rows.Next() {
		e := TrackEvent{WaybillNo: no}
		var at int64
		if err := rows.Scan(&e.Sequence, &e.EventID, &e.Code, &e.Station, &at, &e.Operator, &e.Reason, &e.Description); err != nil {
			return nil, fmt.Errorf("sandbox: scan track of %s: %w", no, err)
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sandbox: load track of %s: %w", no, err)
	}
	return out, nil
}

// appendTrack records events in order, skipping event ids already recorded.
// All events are recorded or none: an unknown waybill fails the batch.
func (s *store) appendTrack(ctx context.Context, events []TrackEvent) (appended, duplicates int, err error) {
	now := ms(s.now())
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		appended, duplicates = 0, 0
		for _, e := range events {
			ok, err := s.appendOne(ctx, tx, e, now)
			if err != nil {
				return err
			}
			if ok {
				appended++
			} else {
				duplicates++
			}
		}
		return nil
	})
	nos := make([]string, len(events))
	for i, e := range events {
		nos[i] = e.WaybillNo
	}
	s.wbCache.forget(nos...)
	return appended, duplicates, err
}

func (s *store) appendOne(ctx context.Context, tx *sql.Tx, e TrackEvent, now int64) (bool, error) {
	var status string
	err := tx.QueryRowContext(ctx, s.q("SELECT delivery_status FROM sandbox_waybills WHERE waybill_no = ?"), e.WaybillNo).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("append track event %s: waybill %q: %w", e.EventID, e.WaybillNo, ErrUnknownWaybill)
	}
	if err != nil {
		return false, fmt.Errorf("sandbox: append track to %s: %w", e.WaybillNo, err)
	}
	var seen int
	if err := tx.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM sandbox_track WHERE event_id = ?"), e.EventID).Scan(&seen); err != nil {
		return false, fmt.Errorf("sandbox: check track event %s: %w", e.EventID, err)
	}
	if seen > 0 {
		return false, nil
	}
	var seq int64
	if err := tx.QueryRowContext(ctx, s.q("SELECT COALESCE(MAX(seq), 0) + 1 FROM sandbox_track WHERE waybill_no = ?"), e.WaybillNo).Scan(&seq); err != nil {
		return false, fmt.Errorf("sandbox: next track sequence of %s: %w", e.WaybillNo, err)
	}
	if _, err := tx.ExecContext(ctx, s.q("INSERT INTO sandbox_track (waybill_no, seq, event_id, event_code, station, event_time, "+
		"operator, reason_code, description, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		e.WaybillNo, seq, e.EventID, e.Code, e.Station, ms(e.At), e.Operator, e.Reason, e.Description, now); err != nil {
		return false, fmt.Errorf("sandbox: insert track event %s: %w", e.EventID, err)
	}
	if next := statusAfter(status, e.Code); next != status {
		if _, err := tx.ExecContext(ctx, s.q("UPDATE sandbox_waybills SET delivery_status = ?, updated_at = ? WHERE waybill_no = ?"),
			next, now, e.WaybillNo); err != nil {
			return false, fmt.Errorf("sandbox: advance status of %s: %w", e.WaybillNo, err)
		}
	}
	return true, s.logWaybillChange(ctx, tx, e.WaybillNo, changeTrack, now)
}

// statusAfter is the delivery status a track event leads to. Administrative
// states (on hold, cancelled, delivered) are never overridden by the hub.
func statusAfter(status, code string) string {
	switch status {
	case StatusOnHold, StatusCancelled, StatusDelivered:
		return status
	}
	switch code {
	case eventOutForDelivery:
		return StatusOutForDelivery
	case eventDelivered:
		return StatusDelivered
	}
	if status == StatusCreated {
		return StatusInTransit
	}
	return status
}

// setStatus sets a waybill's delivery status and its reason.
func (s *store) setStatus(ctx context.Context, no, status, reason string) error {
	return s.updateWaybill(ctx, no, "delivery_status = ?, status_reason = ?", status, reason)
}

// setBillingBlock blocks billing with a reason code, or clears it with "".
func (s *store) setBillingBlock(ctx context.Context, no, code string) error {
	return s.updateWaybill(ctx, no, "billing_block = ?", code)
}

// releaseHold puts a held waybill back to in transit, or created when the
// network has not seen it yet.
func (s *store) releaseHold(ctx context.Context, no string) error {
	return s.updateWaybill(ctx, no, "delivery_status = CASE WHEN delivery_status <> ? THEN delivery_status "+
		"WHEN EXISTS (SELECT 1 FROM sandbox_track t WHERE t.waybill_no = sandbox_waybills.waybill_no) THEN ? ELSE ? END, status_reason = ''",
		StatusOnHold, StatusInTransit, StatusCreated)
}

func (s *store) updateWaybill(ctx context.Context, no, set string, args ...any) error {
	now := ms(s.now())
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	defer s.wbCache.forget(no)
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("UPDATE sandbox_waybills SET "+set+", updated_at = ? WHERE waybill_no = ?"), append(args, now, no)...)
		if err != nil {
			return fmt.Errorf("sandbox: update waybill %s: %w", no, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("waybill %q: %w", no, ErrUnknownWaybill)
		}
		return s.logWaybillChange(ctx, tx, no, changeStatus, now)
	})
}

// preAlertRow is a stored pre-alert.
type preAlertRow struct {
	ID, RequestID, TripID, Origin, Destination, Seal string
	Containers                                       []containerJSON
	CreatedAt                                        time.Time
}

// containerJSON is a pre-alert container as stored.
type containerJSON struct {
	ID          string   `json:"id"`
	Kind        string   `json:"kind"`
	Destination string   `json:"destination"`
	Seal        string   `json:"seal,omitempty"`
	WeightGrams int64    `json:"weightGrams,omitempty"`
	Waybills    []string `json:"waybills,omitempty"`
	Children    []string `json:"children,omitempty"`
}

// createPreAlert stores p unless its request id exists, and returns the
// stored pre-alert either way.
func (s *store) createPreAlert(ctx context.Context, p preAlertRow) (preAlertRow, error) {
	raw, err := json.Marshal(p.Containers)
	if err != nil {
		return preAlertRow{}, fmt.Errorf("sandbox: encode pre-alert: %w", err)
	}
	s.writeMu.Lock()
	_, err = s.db.ExecContext(ctx, s.insertIgnore("sandbox_pre_alerts",
		"pre_alert_id, request_id, trip_id, origin_station, destination_station, seal_number, containers, created_at", 8),
		p.ID, p.RequestID, p.TripID, p.Origin, p.Destination, p.Seal, string(raw), ms(s.now()))
	s.writeMu.Unlock()
	if err != nil {
		return preAlertRow{}, fmt.Errorf("sandbox: insert pre-alert: %w", err)
	}
	got, err := s.preAlerts(ctx, "request_id", p.RequestID)
	if err != nil {
		return preAlertRow{}, err
	}
	if len(got) != 1 {
		return preAlertRow{}, fmt.Errorf("sandbox: pre-alert %s not found after insert", p.RequestID)
	}
	return got[0], nil
}

// preAlerts loads pre-alerts by trip_id or request_id.
func (s *store) preAlerts(ctx context.Context, col, val string) ([]preAlertRow, error) {
	rows, err := s.read().QueryContext(ctx, s.q("SELECT pre_alert_id, request_id, trip_id, origin_station, destination_station, "+
		"seal_number, containers, created_at FROM sandbox_pre_alerts WHERE "+col+" = ? ORDER BY created_at, pre_alert_id"), val)
	if err != nil {
		return nil, fmt.Errorf("sandbox: load pre-alerts: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []preAlertRow
	for rows.Next() {
		var p preAlertRow
		var raw string
		var at int64
		if err := rows.Scan(&p.ID, &p.RequestID, &p.TripID, &p.Origin, &p.Destination, &p.Seal, &raw, &at); err != nil {
			return nil, fmt.Errorf("sandbox: scan pre-alert: %w", err)
		}
		if err := json.Unmarshal([]byte(raw), &p.Containers); err != nil {
			return nil, fmt.Errorf("sandbox: decode pre-alert %s: %w", p.ID, err)
		}
		p.CreatedAt = fromMS(at)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sandbox: load pre-alerts: %w", err)
	}
	return out, nil
}
