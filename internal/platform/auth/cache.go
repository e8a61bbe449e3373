package auth

import (
	"context"
	"sync"
	"time"
)

// MaxCacheTTL bounds how long a verified key is trusted without asking the
// store again, and so how long a revoked key keeps working.
const MaxCacheTTL = 5 * time.Second

// maxCacheEntries bounds the cache's memory; past it, expired entries are
// dropped and, if that is not enough, the whole cache is reset.
const maxCacheEntries = 10_000

type cacheEntry struct {
	p       Principal
	expires time.Time
}

// Cache is an Authenticator that remembers verified keys for a short TTL,
// so the key store is asked at most once per key per TTL on each instance.
// Failures are never cached: a key created a moment ago works at once.
type Cache struct {
	next Authenticator
	ttl  time.Duration
	now  func() time.Time

	mu      sync.Mutex
	entries map[string]cacheEntry // by key hash, never by plaintext
}

// NewCache wraps next; ttl is capped at MaxCacheTTL (and defaults to it
// when ≤ 0); now is the clock, time.Now when nil.
func NewCache(next Authenticator, ttl time.Duration, now func() time.Time) *Cache {
	if ttl <= 0 || ttl > MaxCacheTTL {
		ttl = MaxCacheTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Cache{next: next, ttl: ttl, now: now, entries: make(map[string]cacheEntry)}
}

// Authenticate answers from the cache while the entry is fresh, otherwise
// from the wrapped authenticator.
func (c *Cache) Authenticate(ctx context.Context, token string) (Principal, error) {
	h := HashKey(token)
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[h]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.p, nil
	}
	p, err := c.next.Authenticate(ctx, token)
	if err != nil {
		c.mu.Lock()
		delete(c.entries, h)
		c.mu.Unlock()
		return Principal{}, err
	}
	c.mu.Lock()
	if len(c.entries) >= maxCacheEntries {
		c.evict(now)
	}
	c.entries[h] = cacheEntry{p: p, expires: now.Add(c.ttl)}
	c.mu.Unlock()
	return p, nil
}

// evict drops expired entries, or everything when none had expired; the
// caller holds mu.
func (c *Cache) evict(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	if len(c.entries) >= maxCacheEntries {
		clear(c.entries)
	}
}
