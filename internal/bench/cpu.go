package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CPU is the processor time a run cost: the server's, read from its
// /metrics before and after, and the load generator's own (with the sink).
// On a machine the generator shares with the server, and whose speed
// drifts, CPU time per delivery compares runs better than deliveries per
// second.
type CPU struct {
	Server    time.Duration
	Generator time.Duration
	// ServerErr says why Server is unknown (no /metrics, no process
	// collector); Server is then zero.
	ServerErr error
}

// cpuMetric is the Prometheus process collector's counter of user and
// system CPU seconds.
const cpuMetric = "process_cpu_seconds_total"

// ProcessCPU returns the value of process_cpu_seconds_total in a Prometheus
// text exposition.
func ProcessCPU(exposition []byte) (time.Duration, error) {
	sc := bufio.NewScanner(bytes.NewReader(exposition))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), cpuMetric)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
			continue // another metric, or this one's # HELP / # TYPE
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			break
		}
		secs, err := strconv.ParseFloat(fields[0], 64)
		if err != nil || secs < 0 {
			return 0, fmt.Errorf("bench: %s: bad value %q", cpuMetric, fields[0])
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("bench: read metrics: %w", err)
	}
	return 0, fmt.Errorf("bench: no %s in the server's metrics", cpuMetric)
}
