package sandbox

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Downstream service names, as the injection spec spells them.
const (
	SvcOrder     = "order"
	SvcBasicData = "basicdata"
	SvcBilling   = "billing"
	SvcDelivery  = "delivery"
	SvcLinehaul  = "linehaul"
	// SvcAll in a spec sets every service not named explicitly.
	SvcAll = "*"
)

// ServiceNames lists the downstream services in a stable order.
var ServiceNames = []string{SvcOrder, SvcBasicData, SvcBilling, SvcDelivery, SvcLinehaul}

// Delay is a service's injected latency: Fixed, plus or minus up to Jitter,
// drawn uniformly; never negative.
type Delay struct {
	Fixed  time.Duration
	Jitter time.Duration
}

// Injection is the latency and error-rate injection of every service. A
// service missing from Latency falls back to the "*" entry, then to none; the
// same for Errors.
type Injection struct {
	Latency map[string]Delay
	// Errors maps a service to the fraction (0..1) of its calls that fail
	// with UNAVAILABLE.
	Errors map[string]float64
}

// SeedInjection reproduces the seed's situation: every downstream call takes
// 80–120 ms.
func SeedInjection() Injection {
	return Injection{Latency: map[string]Delay{SvcAll: {Fixed: 100 * time.Millisecond, Jitter: 20 * time.Millisecond}}}
}

// delay returns the delay configured for svc.
func (in Injection) delay(svc string) Delay {
	if d, ok := in.Latency[svc]; ok {
		return d
	}
	return in.Latency[SvcAll]
}

// errorRate returns the error rate configured for svc.
func (in Injection) errorRate(svc string) float64 {
	if r, ok := in.Errors[svc]; ok {
		return r
	}
	return in.Errors[SvcAll]
}

// String renders the injection in the spec grammar ParseInjection reads.
func (in Injection) String() string {
	if len(in.Latency) == 0 && len(in.Errors) == 0 {
		return "none"
	}
	var parts []string
	for _, svc := range sortedKeys(in.Latency) {
		d := in.Latency[svc]
		s := svc + "=" + d.Fixed.String()
		if d.Jitter > 0 {
			s += "±" + d.Jitter.String()
		}
		parts = append(parts, s)
	}
	out := strings.Join(parts, ",")
	if len(in.Errors) > 0 {
		var errs []string
		for _, svc := range sortedKeys(in.Errors) {
			errs = append(errs, svc+":"+strconv.FormatFloat(in.Errors[svc], 'g', -1, 64))
		}
		if out != "" {
			out += ";"
		}
		out += "errors=" + strings.Join(errs, ",")
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ErrBadSpec is wrapped by every error ParseInjection returns.
var ErrBadSpec = errors.New("bad sandbox latency spec")

// ParseInjection reads the --sandbox-latency value:
//
//	spec    = "none" | "seed" | section { ";" section }
//	section = latency | "errors=" errors
//	latency = rule { "," rule }
//	rule    = service "=" duration [ ("±" | "+-") duration ]
//	errors  = rate { "," rate }
//	rate    = service ":" fraction            (0 ≤ fraction ≤ 1)
//	service = "order" | "basicdata" | "billing" | "delivery" | "linehaul" | "*"
//
// Durations use Go syntax (80ms, 1.5s). Example:
// "order=80ms±20ms,billing=5ms,*=1ms;errors=billing:0.01". Each service may
// appear once per section, and each kind of section once.
func ParseInjection(spec string) (Injection, error) {
	spec = strings.TrimSpace(spec)
	switch spec {
	case "", "none":
		return Injection{}, nil
	case "seed":
		return SeedInjection(), nil
	}
	in := Injection{}
	for _, section := range strings.Split(spec, ";") {
		section = strings.TrimSpace(section)
		if key, rest, ok := strings.Cut(section, "="); ok && strings.TrimSpace(key) == "errors" {
			if in.Errors != nil {
				return Injection{}, fmt.Errorf("%w: errors= given twice", ErrBadSpec)
			}
			errs, err := parseErrors(rest)
			if err != nil {
				return Injection{}, err
			}
			in.Errors = errs
			continue
		}
		if in.Latency != nil {
			return Injection{}, fmt.Errorf("%w: latency rules given twice (join them with ',')", ErrBadSpec)
		}
		lat, err := parseLatency(section)
		if err != nil {
			return Injection{}, err
		}
		in.Latency = lat
	}
	return in, nil
}

func parseLatency(section string) (map[string]Delay, error) {
	out := map[string]Delay{}
	for _, rule := range strings.Split(section, ",") {
		rule = strings.TrimSpace(rule)
		svc, val, ok := strings.Cut(rule, "=")
		if !ok {
			return nil, fmt.Errorf("%w: latency rule %q: want service=duration[±jitter]", ErrBadSpec, rule)
		}
		svc, val = strings.TrimSpace(svc), strings.TrimSpace(val)
		if err := checkService(svc, out); err != nil {
			return nil, fmt.Errorf("latency rule %q: %w", rule, err)
		}
		fixedStr, jitterStr, hasJitter := cutJitter(val)
		fixed, err := parseDuration(fixedStr)
		if err != nil {
			return nil, fmt.Errorf("latency rule %q: %w", rule, err)
		}
		d := Delay{Fixed: fixed}
		if hasJitter {
			if d.Jitter, err = parseDuration(jitterStr); err != nil {
				return nil, fmt.Errorf("latency rule %q: jitter: %w", rule, err)
			}
		}
		out[svc] = d
	}
	return out, nil
}

// cutJitter splits "80ms±20ms" or "80ms+-20ms".
func cutJitter(val string) (fixed, jitter string, ok bool) {
	for _, sep := range []string{"±", "+-"} {
		if f, j, found := strings.Cut(val, sep); found {
			return strings.TrimSpace(f), strings.TrimSpace(j), true
		}
	}
	return val, "", false
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w: duration %q: want Go syntax such as 80ms or 1.5s", ErrBadSpec, s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%w: duration %q is negative", ErrBadSpec, s)
	}
	return d, nil
}

func parseErrors(section string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, item := range strings.Split(section, ",") {
		item = strings.TrimSpace(item)
		svc, val, ok := strings.Cut(item, ":")
		if !ok {
			return nil, fmt.Errorf("%w: error rate %q: want service:fraction", ErrBadSpec, item)
		}
		svc, val = strings.TrimSpace(svc), strings.TrimSpace(val)
		if err := checkService(svc, out); err != nil {
			return nil, fmt.Errorf("error rate %q: %w", item, err)
		}
		rate, err := strconv.ParseFloat(val, 64)
		if err != nil || rate < 0 || rate > 1 {
			return nil, fmt.Errorf("%w: error rate %q: fraction %q is not a number between 0 and 1", ErrBadSpec, item, val)
		}
		out[svc] = rate
	}
	return out, nil
}

func checkService[V any](svc string, seen map[string]V) error {
	if svc != SvcAll && !slices.Contains(ServiceNames, svc) {
		return fmt.Errorf("%w: unknown service %q (want one of %s or *)", ErrBadSpec, svc, strings.Join(ServiceNames, ", "))
	}
	if _, dup := seen[svc]; dup {
		return fmt.Errorf("%w: service %q given twice", ErrBadSpec, svc)
	}
	return nil
}

// Sleeper waits for d or until ctx is done, whichever is first, and returns
// ctx's error in the latter case. Tests inject one that records durations.
type Sleeper interface {
	Sleep(ctx context.Context, d time.Duration) error
}

// timerSleeper sleeps on a real timer.
type timerSleeper struct{}

func (timerSleeper) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// injector applies an Injection to calls.
type injector struct {
	in    Injection
	sleep Sleeper
	now   func() time.Time
	mu    sync.Mutex // guards rng
	rng   *rand.Rand
	count func(svc, kind string)
}

// draw returns a uniform float in [0,1).
func (j *injector) draw() float64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.rng.Float64()
}

// delayFor draws the delay of one call to svc.
func (j *injector) delayFor(svc string) time.Duration {
	d := j.in.delay(svc)
	if d.Jitter <= 0 {
		return d.Fixed
	}
	off := time.Duration((j.draw()*2 - 1) * float64(d.Jitter))
	return max(d.Fixed+off, 0)
}

// apply delays a call to svc and maybe fails it. When the caller's deadline
// falls inside the delay, it waits only until the deadline and answers
// DEADLINE_EXCEEDED, as a slow real service would look to that caller.
func (j *injector) apply(ctx context.Context, svc string) error {
	if d := j.delayFor(svc); d > 0 {
		wait, late := d, false
		if dl, ok := ctx.Deadline(); ok {
			if left := dl.Sub(j.now()); left < d {
				wait, late = max(left, 0), true
			}
		}
		j.count(svc, "latency")
		if err := j.sleep.Sleep(ctx, wait); err != nil || late {
			j.count(svc, "deadline")
			if errors.Is(err, context.Canceled) {
				return status.Error(codes.Canceled, "sandbox: call cancelled during injected latency")
			}
			return status.Errorf(codes.DeadlineExceeded, "sandbox: %s latency %s exceeds the caller's deadline", svc, d)
		}
	}
	if rate := j.in.errorRate(svc); rate > 0 && j.draw() < rate {
		j.count(svc, "error")
		return status.Errorf(codes.Unavailable, "sandbox: injected %s error", svc)
	}
	return nil
}
