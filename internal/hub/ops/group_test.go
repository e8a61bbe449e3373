package ops

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/store"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newGroup(t *testing.T) (*group, *store.Store) {
	t.Helper()
	st := store.New(sqltest.New(t, sqldb.SQLite, store.Migrations()))
	return &group{st: st, max: 64}, st
}

// insert is a transaction body that records one work order for waybill.
func insert(waybill string) func(tx *store.Tx) error {
	return func(tx *store.Tx) error {
		return tx.InsertWorkOrder(context.Background(), store.WorkOrder{ID: newID("WO"), IdempotencyKey: "k|" + waybill,
			Kind: hub.OpSort, Waybill: waybill, Station: "S", Operator: "op", At: time.Now(), Result: hub.ResultOK,
			Response: []byte("{}")})
	}
}

// queued waits until n callers wait in g's queue behind the leader.
func queued(t *testing.T, g *group, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.queue) == n
	}, 5*time.Second, time.Millisecond)
}

func count(t *testing.T, st *store.Store, waybill string) int {
	t.Helper()
	n, err := st.CountWorkOrders(context.Background(), waybill, "")
	require.NoError(t, err)
	return n
}

// TestGroupCommit holds a leader's transaction open while others queue:
// they commit together in one transaction, and one of them failing makes
// each run on its own, with only the failing one refused.
func TestGroupCommit(t *testing.T) {
	cases := []struct {
		name    string
		failing int // index of the body that fails; -1: none
		txs     int64
	}{
		{"all commit in one", -1, 2},               // the leader's, then the 9 queued ones
		{"one fails, the others commit", 4, 2 + 9}, // the failed group, then each alone
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, st := newGroup(t)
			ctx := context.Background()
			hold, held := make(chan struct{}), make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				require.NoError(t, g.do(ctx, func(tx *store.Tx) error {
					close(held)
					<-hold
					return insert("LEADER")(tx)
				}))
			})
			<-held
			errs := make([]error, 9)
			for i := range errs {
				wg.Go(func() {
					body := insert(fmt.Sprint("W", i))
					if i == tc.failing {
						body = func(tx *store.Tx) error {
							if err := insert(fmt.Sprint("W", i))(tx); err != nil {
								return err
							}
							return hub.Refuse(hub.CodeAlreadyPacked, "refused")
						}
					}
					errs[i] = g.do(ctx, body)
				})
			}
			queued(t, g, 9)
			close(hold)
			wg.Wait()
			for i, err := range errs {
				if i == tc.failing {
					require.ErrorContains(t, err, "already_packed")
					require.Zero(t, count(t, st, fmt.Sprint("W", i)), "the refused body's writes are rolled back")
					continue
				}
				require.NoError(t, err)
				require.Equal(t, 1, count(t, st, fmt.Sprint("W", i)))
			}
			require.Equal(t, tc.txs, g.txs.Load())
			require.False(t, g.busy, "the lead is given up when the queue is empty")
		})
	}
}

// TestGroupWithdraw: a caller whose context ends while it waits leaves
// the queue and its body never runs.
func TestGroupWithdraw(t *testing.T) {
	g, st := newGroup(t)
	hold, held := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		require.NoError(t, g.do(context.Background(), func(tx *store.Tx) error {
			close(held)
			<-hold
			return insert("LEADER")(tx)
		}))
	})
	<-held
	wg.Go(func() { require.NoError(t, g.do(context.Background(), insert("NEXT"))) })
	queued(t, g, 1)
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() { gone <- g.do(ctx, insert("GONE")) }()
	queued(t, g, 2)
	cancel()
	require.True(t, errors.Is(<-gone, context.Canceled))
	close(hold)
	wg.Wait()
	require.Zero(t, count(t, st, "GONE"))
	require.Equal(t, 1, count(t, st, "NEXT"))
	require.Equal(t, 1, count(t, st, "LEADER"))
}
