package sandbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/waypost/waypost/internal/hub/internal/stmtcache"
	"github.com/waypost/waypost/internal/platform/sqldb"
)

// Domain errors of the sandbox store; the gRPC and HTTP edges translate them.
var (
	ErrUnknownWaybill  = errors.New("unknown waybill")
	ErrUnknownStation  = errors.New("unknown station")
	ErrUnknownSortPlan = errors.New("unknown sort plan version")
)

// Change kinds stored in the change logs.
const (
	changeCreated       = "created"
	changeStatus        = "status_changed"
	changeTrack         = "track_appended"
	changeStation       = "station_updated"
	changeSortPublished = "sort_plan_published"
)

// Delivery statuses as the HTTP API spells them.
const (
	StatusCreated        = "created"
	StatusInTransit      = "in_transit"
	StatusOutForDelivery = "out_for_delivery"
	StatusDelivered      = "delivered"
	StatusCancelled      = "cancelled"
	StatusOnHold         = "on_hold"
)

var deliveryStatuses = []string{StatusCreated, StatusInTransit, StatusOutForDelivery, StatusDelivered, StatusCancelled, StatusOnHold}

// Receiver is who a waybill goes to.
type Receiver struct {
	Name    string `json:"name"`
	Phone   string `json:"phone"`
	Address string `json:"address"`
}

// Waybill is a waybill as the sandbox stores it.
type Waybill struct {
	WaybillNo          string       `json:"waybill"`
	Market             string       `json:"market"`
	OriginStation      string       `json:"originStation"`
	DestinationStation string       `json:"destinationStation"`
	Type               string       `json:"type"`
	Service            string       `json:"service"`
	WeightGrams        int64        `json:"weightGrams"`
	CODAmount          int64        `json:"codAmount"`
	Currency           string       `json:"currency"`
	Receiver           Receiver     `json:"receiver"`
	Status             string       `json:"status"`
	StatusReason       string       `json:"statusReason,omitempty"`
	BillingBlock       string       `json:"billingBlock,omitempty"`
	CreatedAt          time.Time    `json:"createdAt"`
	UpdatedAt          time.Time    `json:"updatedAt"`
	Track              []TrackEvent `json:"track"`
}

// TrackEvent is one event of a waybill's track.
type TrackEvent struct {
	EventID     string    `json:"eventId"`
	WaybillNo   string    `json:"-"`
	Code        string    `json:"code"`
	Station     string    `json:"station"`
	At          time.Time `json:"at"`
	Operator    string    `json:"operator"`
	Reason      string    `json:"reason,omitempty"`
	Description string    `json:"description,omitempty"`
	Sequence    int64     `json:"sequence"`
}

// change is one row of a change log.
type change struct {
	Revision        int64
	Kind            string
	Key             string // waybill number or station code
	SortPlanVersion int64
	At              time.Time
}

// SortPlan is one version of a station's rules.
type SortPlan struct {
	Station        string     `json:"station"`
	Version        int64      `json:"version"`
	ExceptionChute string     `json:"exceptionChute"`
	Rules          []SortRule `json:"rules"`
	PublishedAt    time.Time  `json:"publishedAt"`
}

// store keeps the sandbox's state in SQL. Writes that append to a change log
// are serialised in process so revisions commit in order and a Watch stream
// reading "revision > cursor" never skips a late-committing lower revision;
// the sandbox is one process, so this lock is enough.
type store struct {
	db      *sqldb.DB
	now     func() time.Time
	writeMu sync.Mutex
	// stmts keeps the read queries prepared on SQLite, where parsing a
	// statement costs more than running it (nil elsewhere).
	stmts *stmtcache.Cache

	// plans is the snapshot of each station's current sort plan, read on
	// every sort. Publishing through this store drops the station's entry;
	// an entry also ages out after planTTL (Config.WatchPoll), so a plan
	// another process published is seen as soon as Watch streams see it.
	planMu  sync.RWMutex
	plans   map[string]cachedPlan
	planGen uint64 // bumped by every publish, so a read that raced one is not kept
	planTTL time.Duration

	// wbCache caches waybill rows, write-through (nil: no cache).
	wbCache *waybillCache
}

// snapshotTTL is how long a sort plan snapshot or a cached waybill row is
// served before it is read again; New sets Config.WatchPoll instead.
const snapshotTTL = time.Second

type cachedPlan struct {
	plan SortPlan
	at   time.Time
}

func newStore(db *sqldb.DB, now func() time.Time) *store {
	s := &store{db: db, now: now, plans: make(map[string]cachedPlan), planTTL: snapshotTTL,
		wbCache: newWaybillCache(now, snapshotTTL)}
	if db.Dialect == sqldb.SQLite {
		s.stmts = stmtcache.New(db.DB, db.Writes())
	}
	return s
}

// read is the pool for reads outside a transaction, through the prepared
// statements where there are any.
func (s *store) read() stmtcache.Querier { return s.stmts.On(s.db.DB) }

func ms(t time.Time) int64         { return t.UnixMilli() }
func fromMS(v int64) time.Time     { return time.UnixMilli(v).UTC() }
func (s *store) q(q string) string { return s.db.Rebind(q) }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// insertIgnore prefixes an INSERT that skips rows whose key exists.
func (s *store) insertIgnore(table, cols string, n int) string {
	ph := strings.TrimSuffix(strings.Repeat("?,", n), ",")
	switch s.db.Dialect {
	case sqldb.MySQL:
		return s.q("INSERT IGNORE INTO " + table + " (" + cols + ") VALUES (" + ph + ")")
	default:
		return s.q("INSERT INTO " + table + " (" + cols + ") VALUES (" + ph + ") ON CONFLICT DO NOTHING")
	}
}

// seed writes the network's stations and their first sort plans, skipping
// what exists, so it is safe on every start and from two processes at once.
func (s *store) seed(ctx context.Context, n *network) error {
	now := ms(s.now())
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		for _, code := range n.codes {
			st := n.stations[code]
			if _, err := tx.ExecContext(ctx, s.insertIgnore("sandbox_stations",
				"code, name, kind, market, city, time_zone, active, exception_chute, updated_at", 9),
				st.Code, st.Name, st.Kind, st.Market, st.City, st.TimeZone, 1, st.ExceptionChute, now); err != nil {
				return fmt.Errorf("seed station %s: %w", code, err)
			}
			rules, err := json.Marshal(n.seedSortPlan(code))
			if err != nil {
				return fmt.Errorf("seed sort plan %s: %w", code, err)
			}
			if _, err := tx.ExecContext(ctx, s.insertIgnore("sandbox_sort_plans",
				"station, version, exception_chute, rules, published_at", 5),
				code, 1, st.ExceptionChute, string(rules), now); err != nil {
				return fmt.Errorf("seed sort plan %s: %w", code, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sandbox: seed: %w", err)
	}
	return nil
}

const stationCols = "code, name, kind, market, city, time_zone, active, exception_chute, updated_at"

func scanStation(row interface{ Scan(...any) error }) (Station, time.Time, error) {
	var st Station
	var active int
	var updated int64
	err := row.Scan(&st.Code, &st.Name, &st.Kind, &st.Market, &st.City, &st.TimeZone, &active, &st.ExceptionChute, &updated)
	st.Active = active != 0
	return st, fromMS(updated), err
}

// station loads one station.
func (s *store) station(ctx context.Context, code string) (Station, time.Time, error) {
	st, at, err := scanStation(s.read().QueryRowContext(ctx, s.q("SELECT "+stationCols+" FROM sandbox_stations WHERE code = ?"), code))
	if errors.Is(err, sql.ErrNoRows) {
		return Station{}, time.Time{}, fmt.Errorf("station %q: %w", code, ErrUnknownStation)
	}
	if err != nil {
		return Station{}, time.Time{}, fmt.Errorf("sandbox: load station %s: %w", code, err)
	}
	return st, at, nil
}

// stationRow is a station with its last update time.
type stationRow struct {
	Station
	UpdatedAt time.Time
}

// stations lists stations by code; empty filters match all.
func (s *store) stations(ctx context.Context, market, kind string) ([]stationRow, error) {
	rows, err := s.read().QueryContext(ctx, s.q("SELECT "+stationCols+
		" FROM sandbox_stations WHERE (? = '' OR market = ?) AND (? = '' OR kind = ?) ORDER BY code"),
		market, market, kind, kind)
	if err != nil {
		return nil, fmt.Errorf("sandbox: list stations: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []stationRow
	for rows.Next() {
		st, at, err := scanStation(rows)
		if err != nil {
			return nil, fmt.Errorf("sandbox: scan station: %w", err)
		}
		out = append(out, stationRow{Station: st, UpdatedAt: at})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sandbox: list stations: %w", err)
	}
	return out, nil
}

// updateStation changes a station's active flag and exception chute and
// logs the change.
func (s *store) updateStation(ctx context.Context, code string, active bool, chute string) error {
	now := ms(s.now())
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("UPDATE sandbox_stations SET active = ?, exception_chute = ?, updated_at = ? WHERE code = ?"),
			boolInt(active), chute, now, code)
		if err != nil {
			return fmt.Errorf("sandbox: update station %s: %w", code, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("station %q: %w", code, ErrUnknownStation)
		}
		return s.logBasicChange(ctx, tx, changeStation, code, 0, now)
	})
}

func (s *store) logBasicChange(ctx context.Context, tx *sql.Tx, kind, station string, version, now int64) error {
	if _, err := tx.ExecContext(ctx, s.q("INSERT INTO sandbox_basic_changes (kind, station, sort_plan_version, changed_at) VALUES (?, ?, ?, ?)"),
		kind, station, version, now); err != nil {
		return fmt.Errorf("sandbox: log %s change of %s: %w", kind, station, err)
	}
	return nil
}

// currentPlan is the snapshot of a station's newest plan, if fresh.
func (s *store) currentPlan(station string) (SortPlan, bool) {
	if s.plans == nil {
		return SortPlan{}, false
	}
	s.planMu.RLock()
	c, ok := s.plans[station]
	s.planMu.RUnlock()
	if !ok || s.now().Sub(c.at) >= s.planTTL {
		return SortPlan{}, false
	}
	return c.plan, true
}

func (s *store) planGeneration() uint64 {
	s.planMu.RLock()
	defer s.planMu.RUnlock()
	return s.planGen
}

// keepPlan stores the snapshot of a station's newest plan read at time at,
// unless a publish happened since generation gen, when the read began.
func (s *store) keepPlan(p SortPlan, at time.Time, gen uint64) {
	if s.plans == nil {
		return
	}
	s.planMu.Lock()
	if s.planGen == gen {
		s.plans[p.Station] = cachedPlan{plan: p, at: at}
	}
	s.planMu.Unlock()
}

// forgetPlan drops the snapshot of a station's plan.
func (s *store) forgetPlan(station string) {
	if s.plans == nil {
		return
	}
	s.planMu.Lock()
	s.planGen++
	delete(s.plans, station)
	s.planMu.Unlock()
}

// sortPlan loads a station's plan: the given version, or the newest for 0.
// The newest comes from the snapshot when it is fresh; callers must not
// change the rules of the plan they get.
func (s *store) sortPlan(ctx context.Context, station string, version int64) (SortPlan, error) {
	if version == 0 {
		if p, ok := s.currentPlan(station); ok {
			return p, nil
		}
		at, gen := s.now(), s.planGeneration()
		p, err := s.loadSortPlan(ctx, station, 0)
		if err == nil {
			s.keepPlan(p, at, gen)
		}
		return p, err
	}
	return s.loadSortPlan(ctx, station, version)
}

func (s *store) loadSortPlan(ctx context.Context, station string, version int64) (SortPlan, error) {
	query := "SELECT station, version, exception_chute, rules, published_at FROM sandbox_sort_plans WHERE station = ? AND version = ?"
	args := []any{station, version}
	if version == 0 {
		query = "SELECT station, version, exception_chute, rules, published_at FROM sandbox_sort_plans WHERE station = ? ORDER BY version DESC LIMIT 1"
		args = args[:1]
	}
	var p SortPlan
	var rules string
	var published int64
	err := s.read().QueryRowContext(ctx, s.q(query), args...).Scan(&p.Station, &p.Version, &p.ExceptionChute, &rules, &published)
	if errors.Is(err, sql.ErrNoRows) {
		if _, _, serr := s.station(ctx, station); serr != nil {
			return SortPlan{}, serr
		}
		return SortPlan{}, fmt.Errorf("sort plan %s v%d: %w", station, version, ErrUnknownSortPlan)
	}
	if err != nil {
		return SortPlan{}, fmt.Errorf("sandbox: load sort plan %s: %w", station, err)
	}
	if err := json.Unmarshal([]byte(rules), &p.Rules); err != nil {
		return SortPlan{}, fmt.Errorf("sandbox: decode sort plan %s v%d: %w", station, p.Version, err)
	}
	p.PublishedAt = fromMS(published)
	return p, nil
}

// publishSortPlan stores the next version of a station's plan.
func (s *store) publishSortPlan(ctx context.Context, station, chute string, rules []SortRule) (SortPlan, error) {
	if _, _, err := s.station(ctx, station); err != nil {
		return SortPlan{}, err
	}
	raw, err := json.Marshal(rules)
	if err != nil {
		return SortPlan{}, fmt.Errorf("sandbox: encode sort plan %s: %w", station, err)
	}
	now := s.now()
	p := SortPlan{Station: station, ExceptionChute: chute, Rules: rules, PublishedAt: fromMS(ms(now))}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, s.q("SELECT COALESCE(MAX(version), 0) + 1 FROM sandbox_sort_plans WHERE station = ?"), station).Scan(&p.Version); err != nil {
			return fmt.Errorf("sandbox: next sort plan version of %s: %w", station, err)
		}
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO sandbox_sort_plans (station, version, exception_chute, rules, published_at) VALUES (?, ?, ?, ?, ?)"),
			station, p.Version, chute, string(raw), ms(now)); err != nil {
			return fmt.Errorf("sandbox: publish sort plan %s v%d: %w", station, p.Version, err)
		}
		return s.logBasicChange(ctx, tx, changeSortPublished, station, p.Version, ms(now))
	})
	s.forgetPlan(station)
	return p, err
}

// basicChanges returns up to limit station/sort-plan changes after revision.
func (s *store) basicChanges(ctx context.Context, after int64, limit int) ([]change, error) {
	return s.changes(ctx, "SELECT revision, kind, station, sort_plan_version, changed_at FROM sandbox_basic_changes WHERE revision > ? ORDER BY revision LIMIT ?", after, limit)
}

// waybillChanges returns up to limit waybill changes after revision.
func (s *store) waybillChanges(ctx context.Context, after int64, limit int) ([]change, error) {
	return s.changes(ctx, "SELECT revision, kind, waybill_no, 0, changed_at FROM sandbox_waybill_changes WHERE revision > ? ORDER BY revision LIMIT ?", after, limit)
}

func (s *store) changes(ctx context.Context, query string, after int64, limit int) ([]change, error) {
	rows, err := s.read().QueryContext(ctx, s.q(query), after, limit)
	if err != nil {
		return nil, fmt.Errorf("sandbox: read changes: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []change
	for rows.Next() {
		var c change
		var at int64
		if err := rows.Scan(&c.Revision, &c.Kind, &c.Key, &c.SortPlanVersion, &at); err != nil {
			return nil, fmt.Errorf("sandbox: scan change: %w", err)
		}
		c.At = fromMS(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sandbox: read changes: %w", err)
	}
	return out, nil
}
