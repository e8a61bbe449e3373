package kafkaq

import (
	"context"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxMetaLen keeps commit metadata under Kafka's default
// offset.metadata.max.bytes (4096); entries beyond it are left out, which
// only costs accuracy of Attempt or a duplicate after a handover.
const maxMetaLen = 3500

// partState tracks one owned partition: the records fetched and not yet
// behind the commit point, in fetch order.
type partState struct {
	tp      topicPart
	revoked bool
	// order starts at the first unsettled record; everything before it is
	// settled and covered by mark.
	order     []*entry
	mark      int64 // next offset to commit; -1 until a record settles
	markEpoch int32
	// committed and committedMeta are what the last successful commit sent.
	committed     int64
	committedMeta string
	// prior is the delivery state an earlier owner committed as metadata:
	// offset → attempts made, 0 meaning already settled.
	prior map[int64]int
}

func newPartState(tp topicPart) *partState {
	return &partState{tp: tp, mark: -1, markEpoch: -1, committed: -1}
}

func (ps *partState) add(e *entry) { ps.order = append(ps.order, e) }

// advance moves the commit mark over the settled prefix of order.
func (ps *partState) advance() {
	i := 0
	for i < len(ps.order) && ps.order[i].settled {
		ps.mark = ps.order[i].rec.Offset + 1
		ps.markEpoch = ps.order[i].rec.LeaderEpoch
		i++
	}
	if i > 0 {
		clear(ps.order[:i])
		ps.order = ps.order[i:]
	}
}

// commitPoint is the offset to commit: the first unsettled record, or past
// the last settled one.
func (ps *partState) commitPoint() (kgo.EpochOffset, bool) {
	if len(ps.order) > 0 {
		r := ps.order[0].rec
		return kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}, true
	}
	if ps.mark >= 0 {
		return kgo.EpochOffset{Epoch: ps.markEpoch, Offset: ps.mark}, true
	}
	return kgo.EpochOffset{}, false
}

// metadata encodes, for the records at and after the commit point, which
// were delivered (and how often) and which are already settled, so the next
// owner continues Attempt and skips settled records:
// "v1|<kafka topic>|<offset>:<attempts>,…" with attempts 0 for settled.
func (ps *partState) metadata() string {
	var b strings.Builder
	b.WriteString("v1|")
	b.WriteString(ps.tp.topic)
	b.WriteByte('|')
	first := true
	for _, e := range ps.order {
		n := e.attempts
		switch {
		case e.settled:
			n = 0
		case n == 0:
			continue
		}
		if b.Len() > maxMetaLen {
			break
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(strconv.FormatInt(e.rec.Offset, 10))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

func decodeMeta(meta string) (topic string, prior map[int64]int, ok bool) {
	rest, found := strings.CutPrefix(meta, "v1|")
	if !found {
		return "", nil, false
	}
	topic, list, found := strings.Cut(rest, "|")
	if !found || topic == "" {
		return "", nil, false
	}
	prior = map[int64]int{}
	if list == "" {
		return topic, prior, true
	}
	for item := range strings.SplitSeq(list, ",") {
		off, n, found := strings.Cut(item, ":")
		if !found {
			return "", nil, false
		}
		o, err1 := strconv.ParseInt(off, 10, 64)
		a, err2 := strconv.Atoi(n)
		if err1 != nil || err2 != nil || a < 0 {
			return "", nil, false
		}
		prior[o] = a
	}
	return topic, prior, true
}

// commit commits the commit point and metadata of the owned partitions (of
// only those in only, when it is not nil) that changed since the last commit.
func (s *subscription) commit(ctx context.Context, only map[topicPart]bool) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()

	type pending struct {
		ps   *partState
		at   kgo.EpochOffset
		meta string
	}
	var todo []pending
	offsets := map[string]map[int32]kgo.EpochOffset{}
	metas := map[topicPart]string{}
	s.mu.Lock()
	for tp, ps := range s.parts {
		if only != nil && !only[tp] {
			continue
		}
		at, ok := ps.commitPoint()
		if !ok {
			continue
		}
		meta := ps.metadata()
		if at.Offset == ps.committed && meta == ps.committedMeta {
			continue
		}
		todo = append(todo, pending{ps, at, meta})
		if offsets[tp.topic] == nil {
			offsets[tp.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[tp.topic][tp.partition] = at
		metas[tp] = meta
	}
	s.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}

	ctx = kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			for j := range t.Partitions {
				p := &t.Partitions[j]
				if m, ok := metas[topicPart{t.Topic, p.Partition}]; ok {
					p.Metadata = &m
				}
			}
		}
		return nil
	})
	var err error
	s.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, cerr error) {
		err = commitResponseErr(resp, cerr)
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	for _, p := range todo {
		p.ps.committed = p.at.Offset
		p.ps.committedMeta = p.meta
	}
	s.mu.Unlock()
	return nil
}
