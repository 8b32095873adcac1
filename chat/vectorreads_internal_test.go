package chat

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// countingLog counts the reads of version vectors and of one origin's
// entry.
type countingLog struct {
	msglog.Log
	vectors, entries atomic.Int64
}

func (l *countingLog) VersionVector(ctx context.Context, room string) (msglog.VersionVector, error) {
	l.vectors.Add(1)
	return l.Log.VersionVector(ctx, room)
}

func (l *countingLog) Contiguous(ctx context.Context, room, origin string) (uint64, error) {
	l.entries.Add(1)
	return l.Log.Contiguous(ctx, room, origin)
}

// vectorReadNode is a lobby node holding o's messages 1 to 3 and 6 and
// those of nine other origins, with a link to from whose writer never
// runs, and its log counted.
func vectorReadNode(t *testing.T, from string) (*Node, *Identity, *peerConn, *countingLog) {
	t.Helper()
	n := lobbyNode(t, "reader", 16)
	o := storeWithGap(t, n, 9)
	cl := &countingLog{Log: n.log}
	n.log = cl
	p := queueOnlyPeer(t, n, from)
	return n, o, p, cl
}

// A gap pull names one origin: it is answered reading that origin's entry,
// not the room's whole version vector.
func TestGapPullReadsOneEntry(t *testing.T) {
	const from = "0000000000000002"
	n, o, p, cl := vectorReadNode(t, from)
	lo, hi := pullRange(o.ID)
	n.handleStatus(&chatpb.Status{Room: DefaultRoom, Vector: []*chatpb.Dep{{Origin: o.ID, Seq: 1}}, FromOrigin: lo, UntilOrigin: hi, Missing: []uint64{2, 5, 6}}, from)
	var repaired []uint64
	for f, ok := p.queue.pop(); ok; f, ok = p.queue.pop() {
		for _, e := range f.GetRepair().GetEnvelopes() {
			repaired = append(repaired, e.Seq)
		}
	}
	if !slices.Equal(repaired, []uint64{2, 6}) {
		t.Errorf("pull answered with %v, want [2 6]", repaired)
	}
	if v, e := cl.vectors.Load(), cl.entries.Load(); v != 0 || e != 1 {
		t.Errorf("a gap pull read %d version vectors and %d entries, want 0 and 1", v, e)
	}
}

// A status digest that differs from ours is answered with our status of
// its range from the one read of our vector that compared it: the answer
// read the vector again.
func TestStatusDigestReadsVectorOnce(t *testing.T) {
	const from = "0000000000000002"
	n, o, p, cl := vectorReadNode(t, from)
	n.handleStatus(&chatpb.Status{Room: DefaultRoom, Digest: make([]byte, statusDigestLen)}, from)
	var statuses []*chatpb.Status
	for f, ok := p.queue.pop(); ok; f, ok = p.queue.pop() {
		if st := f.GetStatus(); st != nil {
			statuses = append(statuses, st)
		}
	}
	if len(statuses) != 1 || len(statuses[0].Vector) != 10 || !slices.ContainsFunc(statuses[0].Vector, func(d *chatpb.Dep) bool { return d.Origin == o.ID && d.Seq == 3 }) {
		t.Fatalf("answered with %v, want one status of the 10 origins", statuses)
	}
	if v := cl.vectors.Load(); v != 1 {
		t.Errorf("a differing digest read the version vector %d times, want once", v)
	}
}
