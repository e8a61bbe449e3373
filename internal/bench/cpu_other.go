//go:build !unix

package bench

import "time"

// SelfCPU is zero where getrusage is not available.
func SelfCPU() time.Duration { return 0 }
