// Package kvtest is the conformance suite every kv.Store backend runs, so that
// memkv and rediskv keep exactly the same semantics, plus benchmark helpers
// that drive every backend the same way.
//
// A backend's test calls Run with a constructor that returns a fresh, empty
// store (its own key prefix on a shared server) and registers its cleanup:
//
//	func TestConformance(t *testing.T) {
//		kvtest.Run(t, func(t *testing.T) kv.Store { … })
//	}
//
// TTLs are checked against the backend's real clock with short ttls and
// require.Eventually, never with fixed sleeps; sliding windows are driven by
// the Now passed to Admit, so their edges are checked exactly.
package kvtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/kv"
)

const (
	// shortTTL is long enough for a round trip to a local server and short
	// enough to keep the suite quick.
	shortTTL = 60 * time.Millisecond
	// waitFor bounds how long an expiry may take to become visible.
	waitFor = 5 * time.Second
	tick    = 5 * time.Millisecond
)

type suiteTest struct {
	name string
	fn   func(t *testing.T, s kv.Store)
}

// Run runs the conformance suite. newStore must return an empty store that no
// other test uses and arrange (with t.Cleanup) for it to be closed and its
// keys removed. Subtests run in parallel, each on its own store.
func Run(t *testing.T, newStore func(t *testing.T) kv.Store) {
	t.Helper()
	var all []suiteTest
	all = append(all, stringTests()...)
	all = append(all, counterTests()...)
	all = append(all, listTests()...)
	all = append(all, hashTests()...)
	all = append(all, onceTests()...)
	all = append(all, listBatchTests()...)
	all = append(all, windowTests()...)
	all = append(all, pairTests()...)
	all = append(all, concurrencyTests()...)
	all = append(all, suiteTest{"Ping", func(t *testing.T, s kv.Store) {
		require.NoError(t, s.Ping(t.Context()))
	}})
	for _, tc := range all {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// gone waits until key reads as missing: Get says ErrNotFound (a key of
// another type answers ErrWrongType until it expires).
func gone(t *testing.T, s kv.Store, key string) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := s.Get(context.Background(), key)
		return errors.Is(err, kv.ErrNotFound)
	}, waitFor, tick, "key %q never expired", key)
}

// afterShortTTL returns once a marker key set now with shortTTL has expired,
// proving that any expiry of shortTTL set before the call has passed too.
func afterShortTTL(t *testing.T, s kv.Store) {
	t.Helper()
	const marker = "kvtest-marker"
	require.NoError(t, s.Set(t.Context(), marker, []byte("m"), shortTTL))
	gone(t, s, marker)
}

// requireValue asserts that key holds want.
func requireValue(t *testing.T, s kv.Store, key, want string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	require.NoError(t, err)
	require.Equal(t, want, string(got))
}

func requireMissing(t *testing.T, s kv.Store, key string) {
	t.Helper()
	_, err := s.Get(t.Context(), key)
	require.ErrorIs(t, err, kv.ErrNotFound)
}
