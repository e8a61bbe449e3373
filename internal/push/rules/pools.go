package rules

import (
	"slices"
	"strings"

	"github.com/waypost/waypost/internal/push"
)

// Bounds of a pool.
const (
	MaxWorkers  = 4096
	MaxQueue    = 100_000
	MaxInFlight = MaxWorkers + MaxQueue
)

// Built-in pool size, used when the composition root gives none.
const (
	DefaultWorkers = 8
	DefaultQueue   = 256
)

// Pool is the size of one channel × message-type worker pool of one
// handler instance.
type Pool struct {
	// Workers is how many tasks of the pool run at once.
	Workers int `json:"workers"`
	// Queue is how many more wait for a worker; beyond it deliveries are
	// handed back.
	Queue int `json:"queue"`
	// InFlight bounds the deliveries the queue hands the pool before they
	// are settled, between Workers and Workers+Queue; 0 means Workers+Queue.
	InFlight int `json:"inFlight,omitzero"`
}

func (p Pool) validate(pr *problems, field string) {
	if p.Workers < 1 || p.Workers > MaxWorkers {
		pr.add(field+".workers", "%d not in 1..%d", p.Workers, MaxWorkers)
	}
	if p.Queue < 0 || p.Queue > MaxQueue {
		pr.add(field+".queue", "%d not in 0..%d", p.Queue, MaxQueue)
	}
	if p.InFlight != 0 && (p.InFlight < p.Workers || p.InFlight > p.Workers+p.Queue) {
		pr.add(field+".inFlight", "%d not in workers..workers+queue (%d..%d); 0 means workers+queue",
			p.InFlight, p.Workers, p.Workers+p.Queue)
	}
}

// Pools is push.pools: the size of every pool, by "<channel>.<msgType>",
// and Default for the pools not listed. A change resizes the running pools
// of every instance in place.
//
//	{"default": {"workers": 8, "queue": 256},
//	 "pools": {"email.marketing": {"workers": 2, "queue": 64, "inFlight": 16}}}
type Pools struct {
	Default Pool            `json:"default"`
	Pools   map[string]Pool `json:"pools"`
}

// DefaultPools is 8 workers and 256 waiting tasks per pool.
func DefaultPools() Pools {
	return Pools{Default: Pool{Workers: DefaultWorkers, Queue: DefaultQueue}, Pools: map[string]Pool{}}
}

// PoolName is the key of one channel × message type: "email.marketing".
func PoolName(ch push.Channel, mt push.MsgType) string { return string(ch) + "." + string(mt) }

// For returns the size of the pool named name.
func (p Pools) For(name string) Pool {
	if s, ok := p.Pools[name]; ok {
		return s
	}
	return p.Default
}

// Validate reports sizes out of bounds and names that are no channel ×
// message type.
func (p Pools) Validate() error {
	pr := problems{setting: "pool settings"}
	p.Default.validate(&pr, "default")
	names := make([]string, 0, len(p.Pools))
	for n := range p.Pools {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		field := "pools." + n
		ch, mt, ok := strings.Cut(n, ".")
		if !ok || !slices.Contains(push.Channels(), push.Channel(ch)) || !slices.Contains(push.MsgTypes(), push.MsgType(mt)) {
			pr.add(field, "%q is not <channel>.<msgType> (channels %v, types %v)", n, push.Channels(), push.MsgTypes())
			continue
		}
		p.Pools[n].validate(&pr, field)
	}
	return pr.err()
}
