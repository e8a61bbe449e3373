package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Container is a bag or cage.
type Container struct {
	ID          string
	Kind        string
	Station     string
	Destination string
	Parent      string
	State       string
	SealNumber  string
	SealedAt    *time.Time
	HandoverID  string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Item is one thing packed into a container: a parcel or a container.
type Item struct {
	Kind    string // "parcel" or "container"
	ID      string
	AddedAt time.Time
}

// Item kinds.
const (
	ItemParcel    = "parcel"
	ItemContainer = "container"
)

const containerCols = `id, kind, station, destination, parent_id, state, seal_number, sealed_at, handover_id, created_at, updated_at`

func scanContainer(sc interface{ Scan(...any) error }) (Container, error) {
	var c Container
	var sealed sql.NullInt64
	var created, updated int64
	err := sc.Scan(&c.ID, &c.Kind, &c.Station, &c.Destination, &c.Parent, &c.State, &c.SealNumber, &sealed,
		&c.HandoverID, &created, &updated)
	if sealed.Valid {
		at := fromMS(sealed.Int64)
		c.SealedAt = &at
	}
	c.CreatedAt, c.UpdatedAt = fromMS(created), fromMS(updated)
	return c, err
}

func nullMS(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ms(*t)
}

// InsertContainer creates a container.
func (t *Tx) InsertContainer(ctx context.Context, c Container) error {
	err := t.exec(ctx, `INSERT INTO hub_containers (`+containerCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		c.ID, c.Kind, c.Station, c.Destination, c.Parent, c.State, c.SealNumber, nullMS(c.SealedAt),
		c.HandoverID, ms(c.CreatedAt), ms(c.UpdatedAt))
	if err != nil {
		return fmt.Errorf("insert container %s: %w", c.ID, err)
	}
	return nil
}

// UpdateContainer writes a container's mutable fields.
func (t *Tx) UpdateContainer(ctx context.Context, c Container) error {
	err := t.exec(ctx, `UPDATE hub_containers SET station = ?, parent_id = ?, state = ?, seal_number = ?, sealed_at = ?,
		handover_id = ?, updated_at = ? WHERE id = ?`,
		c.Station, c.Parent, c.State, c.SealNumber, nullMS(c.SealedAt), c.HandoverID, ms(c.UpdatedAt), c.ID)
	if err != nil {
		return fmt.Errorf("update container %s: %w", c.ID, err)
	}
	return nil
}

// Container returns a container, locked until commit when lock is set.
func (t *Tx) Container(ctx context.Context, id string, lock bool) (Container, error) {
	c, err := scanContainer(t.row(ctx, `SELECT `+containerCols+` FROM hub_containers WHERE id = ?`+t.forUpdate(lock), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Container{}, ErrNotFound
	}
	if err != nil {
		return Container{}, fmt.Errorf("container %s: %w", id, err)
	}
	return c, nil
}

// Container returns a container outside any transaction.
func (s *Store) Container(ctx context.Context, id string) (Container, error) {
	return s.read().Container(ctx, id, false)
}

// Children returns the containers nested directly in parent, by id.
func (t *Tx) Children(ctx context.Context, parent string) ([]Container, error) {
	rows, err := t.rows(ctx, `SELECT `+containerCols+` FROM hub_containers WHERE parent_id = ? ORDER BY id`, parent)
	if err != nil {
		return nil, fmt.Errorf("children of %s: %w", parent, err)
	}
	defer func() { _ = rows.Close() }()
	var out []Container
	for rows.Next() {
		c, err := scanContainer(rows)
		if err != nil {
			return nil, fmt.Errorf("children of %s: %w", parent, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// AddItem records that a parcel or container was packed into container.
func (t *Tx) AddItem(ctx context.Context, container string, it Item) error {
	err := t.exec(ctx, `INSERT INTO hub_container_items (container_id, item_kind, item_id, added_at) VALUES (?,?,?,?)`,
		container, it.Kind, it.ID, ms(it.AddedAt))
	if err != nil {
		return fmt.Errorf("add %s %s to %s: %w", it.Kind, it.ID, container, err)
	}
	return nil
}

// Items returns everything ever packed into a container, in packing order.
func (s *Store) Items(ctx context.Context, container string) ([]Item, error) {
	return s.read().Items(ctx, container)
}

// Items returns everything ever packed into a container, in packing order.
func (t *Tx) Items(ctx context.Context, container string) ([]Item, error) {
	rows, err := t.rows(ctx, `SELECT item_kind, item_id, added_at FROM hub_container_items WHERE container_id = ?
		ORDER BY added_at, item_id`, container)
	if err != nil {
		return nil, fmt.Errorf("items of %s: %w", container, err)
	}
	defer func() { _ = rows.Close() }()
	var out []Item
	for rows.Next() {
		var it Item
		var at int64
		if err := rows.Scan(&it.Kind, &it.ID, &at); err != nil {
			return nil, fmt.Errorf("items of %s: %w", container, err)
		}
		it.AddedAt = fromMS(at)
		out = append(out, it)
	}
	return out, rows.Err()
}

// Handover is containers or parcels handed to a trip, courier, 3PL or the
// receiver, with its manifest.
type Handover struct {
	ID           string
	Kind         string
	Station      string
	TripID       string
	SealNumber   string
	Counterparty string
	PreAlertID   string
	Operator     string
	Device       string
	CreatedAt    time.Time
	Manifest     []Item
}

// InsertHandover records a handover and its manifest lines.
func (t *Tx) InsertHandover(ctx context.Context, h Handover) error {
	err := t.exec(ctx, `INSERT INTO hub_handovers (id, kind, station, trip_id, seal_number, counterparty, pre_alert_id,
		operator, device, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)`, h.ID, h.Kind, h.Station, h.TripID, h.SealNumber,
		h.Counterparty, h.PreAlertID, h.Operator, h.Device, ms(h.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert handover %s: %w", h.ID, err)
	}
	for i, it := range h.Manifest {
		err := t.exec(ctx, `INSERT INTO hub_manifest_lines (handover_id, line_no, item_kind, item_id) VALUES (?,?,?,?)`,
			h.ID, i+1, it.Kind, it.ID)
		if err != nil {
			return fmt.Errorf("insert manifest line %d of %s: %w", i+1, h.ID, err)
		}
	}
	return nil
}

// Handover returns a handover with its manifest.
func (s *Store) Handover(ctx context.Context, id string) (Handover, error) {
	t := s.read()
	var h Handover
	var created int64
	err := t.row(ctx, `SELECT id, kind, station, trip_id, seal_number, counterparty, pre_alert_id, operator, device, created_at
		FROM hub_handovers WHERE id = ?`, id).Scan(&h.ID, &h.Kind, &h.Station, &h.TripID, &h.SealNumber,
		&h.Counterparty, &h.PreAlertID, &h.Operator, &h.Device, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Handover{}, ErrNotFound
	}
	if err != nil {
		return Handover{}, fmt.Errorf("handover %s: %w", id, err)
	}
	h.CreatedAt = fromMS(created)
	rows, err := t.rows(ctx, `SELECT item_kind, item_id FROM hub_manifest_lines WHERE handover_id = ? ORDER BY line_no`, id)
	if err != nil {
		return Handover{}, fmt.Errorf("manifest of %s: %w", id, err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var it Item
		if err := rows.Scan(&it.Kind, &it.ID); err != nil {
			return Handover{}, fmt.Errorf("manifest of %s: %w", id, err)
		}
		h.Manifest = append(h.Manifest, it)
	}
	return h, rows.Err()
}
