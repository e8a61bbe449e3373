package access_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/fakeclock"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/access"
)

func newCache(src *fakeSource, clk *fakeclock.Clock) *access.Cache {
	return access.NewCache(src, access.CacheConfig{TTL: 5 * time.Second, RefreshAhead: time.Second, Now: clk.Now})
}

func TestCacheCoalescesConcurrentMisses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource(smsTemplate(1))
		src.gate = make(chan struct{})
		c := newCache(src, fakeclock.New(time.Unix(0, 0)))
		defer c.Close()
		got := make([]*access.Compiled, 100)
		var wg sync.WaitGroup
		for i := range got {
			wg.Go(func() {
				var err error
				got[i], err = c.Get(t.Context(), 1)
				require.NoError(t, err)
			})
		}
		synctest.Wait() // every caller is now waiting on the one load
		require.Equal(t, int64(1), src.loads.Load())
		close(src.gate)
		wg.Wait()
		for _, g := range got {
			require.Same(t, got[0], g)
		}
		require.Equal(t, int64(1), src.loads.Load())
	})
}

func TestCacheEditVisibleWithinFiveSeconds(t *testing.T) {
	edit := func(src *fakeSource) {
		tpl := smsTemplate(1)
		tpl.Version = 2
		tpl.Content.Text = "edited {{.code}}"
		src.put(tpl)
	}
	text := func(t *testing.T, c *access.Cache) string {
		comp, err := c.Get(t.Context(), 1)
		require.NoError(t, err)
		r, err := comp.Render(map[string]any{"code": 1})
		require.NoError(t, err)
		return r.Text
	}
	t.Run("expiry", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			src, clk := newSource(smsTemplate(1)), fakeclock.New(time.Unix(1000, 0))
			c := newCache(src, clk)
			defer c.Close()
			require.Equal(t, "Your code is 1", text(t, c))
			edit(src)
			clk.Add(3900 * time.Millisecond)
			require.Equal(t, "Your code is 1", text(t, c), "fresh entry served from cache")
			require.Equal(t, int64(1), src.loads.Load())
			clk.Add(1100 * time.Millisecond)
			require.Equal(t, "edited 1", text(t, c), "5 s after the load the edit shows")
		})
	})
	t.Run("refresh ahead", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			src, clk := newSource(smsTemplate(1)), fakeclock.New(time.Unix(1000, 0))
			c := newCache(src, clk)
			defer c.Close()
			require.Equal(t, "Your code is 1", text(t, c))
			edit(src)
			clk.Add(4200 * time.Millisecond)
			require.Equal(t, "Your code is 1", text(t, c), "the caller is not held by the refresh")
			synctest.Wait() // the background refresh has finished
			require.Equal(t, int64(2), src.loads.Load())
			require.Equal(t, "edited 1", text(t, c))
			clk.Add(4 * time.Second)
			require.Equal(t, "edited 1", text(t, c), "the refreshed entry is fresh again")
			require.Equal(t, int64(2), src.loads.Load())
		})
	})
}

func TestCacheReusesParsedTemplatePerVersion(t *testing.T) {
	src, clk := newSource(smsTemplate(1)), fakeclock.New(time.Unix(1000, 0))
	c := newCache(src, clk)
	defer c.Close()
	a, err := c.Get(t.Context(), 1)
	require.NoError(t, err)
	clk.Add(10 * time.Second)
	b, err := c.Get(t.Context(), 1)
	require.NoError(t, err)
	require.Equal(t, int64(2), src.loads.Load(), "reloaded after expiry")
	require.Same(t, a, b, "same version: not parsed again")
}

func TestCacheErrors(t *testing.T) {
	t.Run("unknown", func(t *testing.T) {
		src, clk := newSource(smsTemplate(1)), fakeclock.New(time.Unix(1000, 0))
		c := newCache(src, clk)
		defer c.Close()
		_, err := c.Get(t.Context(), 2)
		require.ErrorIs(t, err, push.ErrUnknownTemplate)
		_, err = c.Get(t.Context(), 1)
		require.NoError(t, err)
		src.mu.Lock()
		delete(src.tpls, 1)
		src.mu.Unlock()
		clk.Add(5 * time.Second)
		_, err = c.Get(t.Context(), 1)
		require.ErrorIs(t, err, push.ErrUnknownTemplate, "a deleted template is gone after the TTL")
	})
	t.Run("panic in source", func(t *testing.T) {
		src := newSource(smsTemplate(1))
		src.panic = true
		c := newCache(src, fakeclock.New(time.Unix(1000, 0)))
		defer c.Close()
		_, err := c.Get(t.Context(), 1)
		require.ErrorContains(t, err, "panic: source exploded")
	})
	t.Run("caller gives up, others still served", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			src := newSource(smsTemplate(1))
			src.gate = make(chan struct{})
			c := newCache(src, fakeclock.New(time.Unix(1000, 0)))
			defer c.Close()
			ctx, cancel := context.WithCancel(t.Context())
			gaveUp := make(chan error)
			go func() {
				_, err := c.Get(ctx, 1)
				gaveUp <- err
			}()
			served := make(chan error)
			go func() {
				_, err := c.Get(t.Context(), 1)
				served <- err
			}()
			synctest.Wait()
			cancel()
			require.True(t, errors.Is(<-gaveUp, context.Canceled))
			close(src.gate)
			require.NoError(t, <-served)
			require.Equal(t, int64(1), src.loads.Load())
		})
	})
}
