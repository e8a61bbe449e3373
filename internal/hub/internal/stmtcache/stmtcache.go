// Package stmtcache keeps prepared statements for the queries the hub and the
// sandbox run over and over, so an embedded engine does not parse the same
// SQL on every call. On SQLite (modernc) parsing a statement costs more CPU
// than running it; the network engines either cache statements in their
// driver already (pgx) or would pay an extra round trip and a server-side
// statement per connection (MySQL), so the cache is used on SQLite only.
package stmtcache

import (
	"context"
	"database/sql"
	"sync"
)

// maxStatements bounds the cache: queries built with a variable number of
// placeholders (IN lists) must not grow it without end; past the bound they
// are simply not cached.
const maxStatements = 256

// Cache prepares each query once on the pool. A *sql.Stmt is safe for
// concurrent use: database/sql prepares it lazily on every pooled connection
// it runs on and again on a replaced connection, and closes those driver
// statements with their connection.
//
// Preparing on the pool needs a free connection, which a goroutine inside a
// transaction must never wait for (with SQLite's small pool the others may
// all be waiting for its write lock). So a query first met inside a
// transaction runs unprepared and is only noted; Warm, called where no
// connection is held (before a transaction begins), prepares what was noted.
//
// Transactions may run on a pool of their own (sqldb.DB.Writes); a
// statement used inside one is then prepared on that pool, since a
// transaction can only run statements of its own pool.
type Cache struct {
	db, writes *sql.DB
	mu         sync.RWMutex
	m          map[key]*sql.Stmt
	pending    map[key]struct{}
}

// key is a query and whether it is prepared for transactions.
type key struct {
	query string
	tx    bool
}

// New returns a cache over db whose transactions begin on writes (db itself
// when nil); a nil db gives a cache that prepares nothing.
func New(db, writes *sql.DB) *Cache {
	if writes == nil {
		writes = db
	}
	return &Cache{db: db, writes: writes, m: make(map[key]*sql.Stmt), pending: make(map[key]struct{})}
}

// keyOf is the cache key of query run inside a transaction or not; with one
// pool for both the two share a statement.
func (c *Cache) keyOf(query string, tx bool) key {
	return key{query: query, tx: tx && c.writes != c.db}
}

func (c *Cache) pool(k key) *sql.DB {
	if k.tx {
		return c.writes
	}
	return c.db
}

func (c *Cache) lookup(k key) *sql.Stmt {
	c.mu.RLock()
	st := c.m[k]
	c.mu.RUnlock()
	return st
}

// Stmt returns the prepared statement of query, preparing it on the pool
// when needed, or nil when it is not cached (the cache is full or preparing
// failed — the caller then runs the query unprepared and meets any error
// there). The caller must not hold a connection of the pool.
func (c *Cache) Stmt(ctx context.Context, query string) *sql.Stmt {
	if c == nil || c.db == nil {
		return nil
	}
	k := c.keyOf(query, false)
	if st := c.lookup(k); st != nil {
		return st
	}
	return c.prepare(ctx, k)
}

// prepare prepares query without holding the lock (it may wait for a
// connection) and keeps the first of two racing preparations.
func (c *Cache) prepare(ctx context.Context, k key) *sql.Stmt {
	c.mu.RLock()
	full := len(c.m) >= maxStatements
	c.mu.RUnlock()
	if full {
		return nil
	}
	st, err := c.pool(k).PrepareContext(ctx, k.query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, k)
	if prev, ok := c.m[k]; ok {
		_ = st.Close()
		return prev
	}
	if len(c.m) >= maxStatements {
		_ = st.Close()
		return nil
	}
	c.m[k] = st
	return st
}

// note remembers a query met inside a transaction for the next Warm.
func (c *Cache) note(k key) {
	c.mu.Lock()
	if len(c.m)+len(c.pending) < maxStatements {
		c.pending[k] = struct{}{}
	}
	c.mu.Unlock()
}

// Warm prepares the queries noted inside transactions. Call it where the
// goroutine holds no connection of the pool, e.g. before a transaction
// begins; it costs one map read when nothing is pending.
func (c *Cache) Warm(ctx context.Context) {
	if c == nil || c.db == nil {
		return
	}
	c.mu.RLock()
	n := len(c.pending)
	c.mu.RUnlock()
	if n == 0 {
		return
	}
	c.mu.Lock()
	keys := make([]key, 0, len(c.pending))
	for k := range c.pending {
		keys = append(keys, k)
	}
	c.mu.Unlock()
	for _, k := range keys {
		c.prepare(ctx, k)
	}
}

// Querier is what both *sql.DB and *sql.Tx offer.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// On returns a Querier that runs through q (the pool or a transaction) with
// the cached statements; a nil cache runs q as is.
func (c *Cache) On(q Querier) Querier {
	if c == nil || c.db == nil {
		return q
	}
	tx, _ := q.(*sql.Tx)
	return &bound{c: c, q: q, tx: tx}
}

type bound struct {
	c  *Cache
	q  Querier
	tx *sql.Tx
}

// stmt is the cached statement of query bound to the transaction, if any.
func (b *bound) stmt(ctx context.Context, query string) *sql.Stmt {
	if b.tx == nil {
		return b.c.Stmt(ctx, query)
	}
	k := b.c.keyOf(query, true)
	st := b.c.lookup(k)
	if st == nil {
		b.c.note(k)
		return nil
	}
	// StmtContext reuses the statement already prepared on the
	// transaction's connection; the returned statement is closed with the
	// transaction and leaves the pooled one open.
	return b.tx.StmtContext(ctx, st)
}

func (b *bound) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := b.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return b.q.ExecContext(ctx, query, args...)
}

func (b *bound) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := b.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return b.q.QueryContext(ctx, query, args...)
}

func (b *bound) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := b.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return b.q.QueryRowContext(ctx, query, args...)
}
