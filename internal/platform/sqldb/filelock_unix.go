//go:build unix

package sqldb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockPollInterval is how often a waiting Migrate retries the lock file.
const lockPollInterval = 20 * time.Millisecond

// lockFile takes an exclusive flock on dbPath+".migrate.lock" so two
// processes migrating one SQLite file run one after the other. The kernel
// drops the lock when the process dies, so a crash never leaves it stale. An
// empty dbPath (in-memory database) needs no lock.
func lockFile(ctx context.Context, dbPath string) (unlock func(), err error) {
	if dbPath == "" {
		return func() {}, nil
	}
	name := dbPath + ".migrate.lock"
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("wait for %s: %w", name, ctx.Err())
		case <-time.After(lockPollInterval):
		}
	}
}
