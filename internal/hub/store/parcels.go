package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/platform/sqldb"
)

// Parcel is a parcel as the hub sees it.
type Parcel struct {
	Waybill     string
	Status      string
	Station     string
	Destination string
	Type        string
	Service     string
	NextHop     string
	Chute       string
	Container   string
	UpdatedAt   time.Time
}

const parcelCols = `waybill, status, station, destination, waybill_type, service, next_hop, chute, container_id, updated_at`

func scanParcel(sc interface{ Scan(...any) error }) (Parcel, error) {
	var p Parcel
	var at int64
	err := sc.Scan(&p.Waybill, &p.Status, &p.Station, &p.Destination, &p.Type, &p.Service, &p.NextHop,
		&p.Chute, &p.Container, &at)
	p.UpdatedAt = fromMS(at)
	return p, err
}

// Parcel returns a parcel, locked until commit when lock is set.
func (t *Tx) Parcel(ctx context.Context, waybill string, lock bool) (Parcel, error) {
	p, err := scanParcel(t.row(ctx, `SELECT `+parcelCols+` FROM hub_parcels WHERE waybill = ?`+t.forUpdate(lock), waybill))
	if errors.Is(err, sql.ErrNoRows) {
		return Parcel{}, ErrNotFound
	}
	if err != nil {
		return Parcel{}, fmt.Errorf("parcel %s: %w", waybill, err)
	}
	return p, nil
}

// Parcel returns a parcel outside any transaction.
func (s *Store) Parcel(ctx context.Context, waybill string) (Parcel, error) {
	return s.read().Parcel(ctx, waybill, false)
}

// PutParcel inserts or replaces a parcel.
func (t *Tx) PutParcel(ctx context.Context, p Parcel) error {
	var upsert string
	switch t.d {
	case sqldb.MySQL:
		upsert = ` ON DUPLICATE KEY UPDATE status = VALUES(status), station = VALUES(station),
			destination = VALUES(destination), waybill_type = VALUES(waybill_type), service = VALUES(service),
			next_hop = VALUES(next_hop), chute = VALUES(chute), container_id = VALUES(container_id),
			updated_at = VALUES(updated_at)`
	default:
		upsert = ` ON CONFLICT (waybill) DO UPDATE SET status = excluded.status, station = excluded.station,
			destination = excluded.destination, waybill_type = excluded.waybill_type, service = excluded.service,
			next_hop = excluded.next_hop, chute = excluded.chute, container_id = excluded.container_id,
			updated_at = excluded.updated_at`
	}
	err := t.exec(ctx, `INSERT INTO hub_parcels (`+parcelCols+`) VALUES (?,?,?,?,?,?,?,?,?,?)`+upsert,
		p.Waybill, p.Status, p.Station, p.Destination, p.Type, p.Service, p.NextHop, p.Chute, p.Container, ms(p.UpdatedAt))
	if err != nil {
		return fmt.Errorf("put parcel %s: %w", p.Waybill, err)
	}
	return nil
}

// ParcelsIn returns the parcels currently packed directly in a container,
// outside any transaction.
func (s *Store) ParcelsIn(ctx context.Context, container string) ([]Parcel, error) {
	return s.read().ParcelsIn(ctx, container)
}

// ParcelsIn returns the parcels currently packed directly in a container,
// ordered by waybill.
func (t *Tx) ParcelsIn(ctx context.Context, container string) ([]Parcel, error) {
	rows, err := t.rows(ctx, `SELECT `+parcelCols+` FROM hub_parcels WHERE container_id = ? ORDER BY waybill`, container)
	if err != nil {
		return nil, fmt.Errorf("parcels in %s: %w", container, err)
	}
	defer func() { _ = rows.Close() }()
	var out []Parcel
	for rows.Next() {
		p, err := scanParcel(rows)
		if err != nil {
			return nil, fmt.Errorf("parcels in %s: %w", container, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// HistoryEntry is one line of a parcel's history.
type HistoryEntry struct {
	WorkOrderID string
	Kind        string
	Station     string
	At          time.Time
	Operator    string
	Device      string
	Result      string
	Reason      string
	Container   string
}

// AddEvent records one tracking event: a line of the parcel's history and
// its outbox row, which the relay publishes to hub.TrackingTopic.
func (t *Tx) AddEvent(ctx context.Context, ev hub.TrackingEvent) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode tracking event %s: %w", ev.EventID, err)
	}
	err = t.exec(ctx, `INSERT INTO hub_parcel_history (waybill, work_order_id, kind, station, at, operator, device, result, reason, container_id)
		VALUES (?,?,?,?,?,?,?,?,?,?)`, ev.Waybill, ev.EventID, ev.Kind, ev.Station, ms(ev.At), ev.Operator, ev.Device,
		ev.Result, ev.Reason, ev.Container)
	if err != nil {
		return fmt.Errorf("insert history of %s: %w", ev.Waybill, err)
	}
	err = t.exec(ctx, `INSERT INTO hub_outbox (waybill, payload, created_at) VALUES (?,?,?)`,
		ev.Waybill, string(payload), ms(ev.At))
	if err != nil {
		return fmt.Errorf("insert outbox row of %s: %w", ev.Waybill, err)
	}
	return nil
}

// History returns a parcel's history in the order it happened.
func (s *Store) History(ctx context.Context, waybill string) ([]HistoryEntry, error) {
	rows, err := s.read().rows(ctx, `SELECT work_order_id, kind, station, at, operator, device, result, reason, container_id
		FROM hub_parcel_history WHERE waybill = ? ORDER BY id`, waybill)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", waybill, err)
	}
	defer func() { _ = rows.Close() }()
	var out []HistoryEntry
	for rows.Next() {
		var h HistoryEntry
		var at int64
		if err := rows.Scan(&h.WorkOrderID, &h.Kind, &h.Station, &at, &h.Operator, &h.Device, &h.Result, &h.Reason, &h.Container); err != nil {
			return nil, fmt.Errorf("history of %s: %w", waybill, err)
		}
		h.At = fromMS(at)
		out = append(out, h)
	}
	return out, rows.Err()
}

// OutboxRow is one row of hub_outbox.
type OutboxRow struct {
	ID          int64
	Waybill     string
	Event       hub.TrackingEvent
	CreatedAt   time.Time
	PublishedAt *time.Time
}

// Outbox returns the outbox rows of a waybill (all rows when waybill is
// empty) in id order; tests and the admin view read it.
func (s *Store) Outbox(ctx context.Context, waybill string) ([]OutboxRow, error) {
	query, args := `SELECT id, waybill, payload, created_at, published_at FROM hub_outbox`, []any{}
	if waybill != "" {
		query, args = query+` WHERE waybill = ?`, append(args, waybill)
	}
	rows, err := s.read().rows(ctx, query+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []OutboxRow
	for rows.Next() {
		var r OutboxRow
		var payload string
		var created int64
		var published sql.NullInt64
		if err := rows.Scan(&r.ID, &r.Waybill, &payload, &created, &published); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		if err := json.Unmarshal([]byte(payload), &r.Event); err != nil {
			return nil, fmt.Errorf("decode outbox row %d: %w", r.ID, err)
		}
		r.CreatedAt = fromMS(created)
		if published.Valid {
			p := fromMS(published.Int64)
			r.PublishedAt = &p
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
