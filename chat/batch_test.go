package chat

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

func envFrame(e *chatpb.Envelope) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_Envelope{Envelope: e}}
}

// lobbyNode returns an unstarted node that has joined the lobby without a
// network, so envelopes handed to its receive pipeline reach the log and
// the ordering.
func lobbyNode(tb testing.TB, nick string, events int) *Node {
	tb.Helper()
	n, err := New(Config{Nick: nick, EventBuffer: events})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = n.Shutdown() })
	n.joinMu.Lock()
	_, err = n.openRoom(context.Background(), msglog.RoomInfo{Name: DefaultRoom, Mode: hearsay.OrderCausal.String(), Joined: time.Now()}, false)
	n.joinMu.Unlock()
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// batchTestConn returns a peerConn of an unstarted node, for driving
// sendBatched by hand.
func batchTestConn(t *testing.T) *peerConn {
	t.Helper()
	n, err := New(Config{Nick: "batcher", EventBuffer: 1, SendQueue: 2 * maxBatchEnvelopes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	return newPeerConn(n, "0000000000000002", "127.0.0.1:1", nil)
}

// sendBatched packs the envelopes queued behind the first into one Batch
// frame, stops at the first other frame (sent after the batch, in queue
// order) and leaves what follows it queued.
func TestSendBatchedQueueOrder(t *testing.T) {
	p := batchTestConn(t)
	id := testIdentity(t)
	e := func(seq uint64) *chatpb.Envelope { return signedChatSeq(id, "m", seq) }
	ping := &chatpb.Frame{Msg: &chatpb.Frame_Ping{Ping: &chatpb.Ping{Nonce: 9}}}
	for _, f := range []*chatpb.Frame{envFrame(e(2)), envFrame(e(3)), ping, envFrame(e(4))} {
		if !p.enqueue(f) {
			t.Fatal("queue full")
		}
	}
	var sent []*chatpb.Frame
	send := func(f *chatpb.Frame) error { sent = append(sent, f); return nil }
	if err := p.sendBatched(envFrame(e(1)), send); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 2 {
		t.Fatalf("sent %d frames, want a batch and the ping: %v", len(sent), sent)
	}
	var seqs []uint64
	for _, env := range sent[0].GetBatch().GetEnvelopes() {
		seqs = append(seqs, env.Seq)
	}
	if len(seqs) != 3 || seqs[0] != 1 || seqs[1] != 2 || seqs[2] != 3 {
		t.Fatalf("batch holds seqs %v, want [1 2 3]", seqs)
	}
	if sent[1].GetPing().GetNonce() != 9 {
		t.Fatalf("second frame %v, want the ping", sent[1])
	}
	if got := p.queue.len(); got != 1 {
		t.Fatalf("%d frames left queued, want 1 (seq 4)", got)
	}
	if p.n.Stats().BatchesOut != 1 {
		t.Fatalf("BatchesOut %d, want 1", p.n.Stats().BatchesOut)
	}
	// A lone envelope goes out in an envelope frame.
	sent = nil
	last, _ := p.queue.pop()
	if err := p.sendBatched(last, send); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 || sent[0].GetEnvelope().GetSeq() != 4 {
		t.Fatalf("lone envelope sent as %v", sent)
	}
}

// Batches stay under the frame limit and the envelope count limit.
func TestSendBatchedLimits(t *testing.T) {
	p := batchTestConn(t)
	id := testIdentity(t)
	big := strings.Repeat("x", MaxBodyBytes-100)
	queued := min(p.queue.limit(), 40)
	for i := range queued {
		if !p.enqueue(envFrame(signedChatSeq(id, big, uint64(i+2)))) {
			t.Fatal("queue full")
		}
	}
	var sent []*chatpb.Frame
	send := func(f *chatpb.Frame) error { sent = append(sent, f); return nil }
	if err := p.sendBatched(envFrame(signedChatSeq(id, big, 1)), send); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, f := range sent {
		if size := proto.Size(f); size > maxFrameBytes {
			t.Errorf("frame of %d bytes over the %d limit", size, maxFrameBytes)
		}
		if b := f.GetBatch(); b != nil {
			total += len(b.Envelopes)
		} else {
			total++
		}
	}
	if total != queued+1 {
		t.Fatalf("sent %d envelopes, want %d", total, queued+1)
	}
	if len(sent) < 2 {
		t.Fatalf("%d envelopes of ~%d KiB went out in %d frame(s): the size bound did not split them", total, MaxBodyBytes>>10, len(sent))
	}

	// Count bound: more small envelopes than maxBatchEnvelopes.
	sent = nil
	for i := range maxBatchEnvelopes + 5 {
		if !p.enqueue(envFrame(signedChatSeq(id, "s", uint64(i+2)))) {
			t.Fatal("queue full")
		}
	}
	if err := p.sendBatched(envFrame(signedChatSeq(id, "s", 1)), send); err != nil {
		t.Fatal(err)
	}
	// Every envelope once, in queue order, in frames within both bounds.
	next := uint64(1)
	for _, f := range sent {
		envs := f.GetBatch().GetEnvelopes()
		if envs == nil {
			envs = []*chatpb.Envelope{f.GetEnvelope()}
		}
		if len(envs) > maxBatchEnvelopes || proto.Size(f) > maxFrameBytes {
			t.Fatalf("frame of %d envelopes, %d bytes", len(envs), proto.Size(f))
		}
		for _, e := range envs {
			if e.Seq != next {
				t.Fatalf("seq %d sent where %d was due", e.Seq, next)
			}
			next++
		}
	}
	if want := uint64(maxBatchEnvelopes + 7); next != want {
		t.Fatalf("sent up to seq %d, want %d", next-1, want-1)
	}
}

// A batch frame with no envelope or more than maxBatchEnvelopes is a bad
// frame; a forged envelope in a batch is dropped and counted while the
// genuine ones beside it are stored.
func TestHandleBatchHostile(t *testing.T) {
	n := lobbyNode(t, "receiver", 16)
	const from = "0000000000000001"
	id := testIdentity(t)
	if err := n.speakers.add(id.Pub); err != nil { // a member identity
		t.Fatal(err)
	}
	lobby := func(seq uint64) *chatpb.Envelope {
		e := &chatpb.Envelope{Seq: seq, Room: DefaultRoom, Kind: chatpb.Kind_KIND_CHAT, Lamport: seq, SentUnixNano: 1, Body: []byte("hi")}
		SignEnvelope(id, e)
		return e
	}

	before := n.Stats()
	n.handleBatch(&chatpb.Batch{}, from)
	huge := make([]*chatpb.Envelope, maxBatchEnvelopes+1)
	for i := range huge {
		huge[i] = lobby(uint64(i + 1))
	}
	n.handleBatch(&chatpb.Batch{Envelopes: huge}, from)
	after := n.Stats()
	if got := after.BadFrames - before.BadFrames; got != 2 {
		t.Fatalf("bad frames %d, want 2 (empty and oversized batch)", got)
	}
	if after.Stored != before.Stored {
		t.Fatalf("a refused batch stored %d messages", after.Stored-before.Stored)
	}

	n.handleBatch(&chatpb.Batch{Envelopes: []*chatpb.Envelope{lobby(1), forgedCopy(lobby(2)), lobby(3)}}, from)
	final := n.Stats()
	if got := final.Forged - after.Forged; got != 1 {
		t.Fatalf("forged %d, want 1", got)
	}
	if got := final.Stored - after.Stored; got != 2 {
		t.Fatalf("stored %d of the batch, want the 2 genuine envelopes", got)
	}
	for _, seq := range []uint64{1, 3} {
		if _, err := n.log.Get(context.Background(), DefaultRoom, id.ID, seq); err != nil {
			t.Errorf("genuine seq %d not stored: %v", seq, err)
		}
	}
	if _, err := n.log.Get(context.Background(), DefaultRoom, id.ID, 2); !errors.Is(err, msglog.ErrNotFound) {
		t.Errorf("forged seq 2: %v, want not stored", err)
	}
}
