package chat

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
	"github.com/hearsay-chat/hearsay/chat/overlay"
)

// benchNode returns a node (not started) whose log is a bbolt file in a
// temporary directory, as in production.
func benchNode(tb testing.TB) *Node {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = tb.TempDir()
	n, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = n.Shutdown() })
	return n
}

// signedChat returns a signed chat envelope of origin id.
func benchChat(id *Identity, room string, seq uint64, text string) *chatpb.Envelope {
	e := &chatpb.Envelope{Seq: seq, Room: room, Kind: chatpb.Kind_KIND_CHAT, Lamport: seq,
		SentUnixNano: time.Now().UnixNano(), Body: []byte(text)}
	SignEnvelope(id, e)
	return e
}

// BenchmarkStoreAppend is the log write of our own messages as the node
// does it (encode the envelope, append to bbolt, one fsync).
func BenchmarkStoreAppend(b *testing.B) {
	n := benchNode(b)
	id, _ := NewIdentity()
	ctx := context.Background()
	envs := make([]*chatpb.Envelope, 0, 1024)
	for i := range cap(envs) {
		envs = append(envs, benchChat(id, "bench", uint64(i+1), "a chat message of a typical length, about sixty bytes"))
	}
	seq := uint64(0)
	for b.Loop() {
		seq++
		e := envs[(seq-1)%uint64(len(envs))]
		e.Seq = seq // (the signature no longer matches: store does not check it)
		if _, err := storeEnvelope(ctx, e, n.log.Append); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreReceived is the log write of a received message
// (msglog AppendDeferred: committed, written to the file, fsync deferred
// to the log's syncer).
func BenchmarkStoreReceived(b *testing.B) {
	n := benchNode(b)
	id, _ := NewIdentity()
	ctx := context.Background()
	e := benchChat(id, "bench", 1, "a chat message of a typical length, about sixty bytes")
	seq := uint64(0)
	for b.Loop() {
		seq++
		e.Seq = seq // (the signature no longer matches: storeReceived does not check it)
		if _, err := n.storeReceived(ctx, []*chatpb.Envelope{e}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDuplicateCheck compares what a copy of a stored message costs
// the receive pipeline: "known" is the log lookup that drops it now,
// "verify" the signature check that used to come first.
func BenchmarkDuplicateCheck(b *testing.B) {
	n := benchNode(b)
	id, _ := NewIdentity()
	ctx := context.Background()
	e := benchChat(id, "bench", 1, "a chat message of a typical length, about sixty bytes")
	if _, err := storeEnvelope(ctx, e, n.log.Append); err != nil {
		b.Fatal(err)
	}
	b.Run("known", func(b *testing.B) {
		for b.Loop() {
			if !n.known(e) {
				b.Fatal("stored envelope not known")
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			if err := CheckEnvelope(e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// fillLog stores origins × each messages in room.
func fillLog(b *testing.B, l msglog.Log, room string, origins, each int) {
	b.Helper()
	ctx := context.Background()
	for range origins {
		id, _ := NewIdentity()
		recs := make([]msglog.Record, 0, each)
		for s := range each {
			e := benchChat(id, room, uint64(s+1), fmt.Sprintf("message %d", s))
			data, err := proto.Marshal(e)
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, msglog.Record{Room: room, Origin: id.ID, Seq: e.Seq, Meta: msglog.Meta{Lamport: e.Lamport, RecvTime: time.Now()}, Data: data})
		}
		if _, err := l.AppendBatch(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAntiEntropyDiff is the answering side of one anti-entropy
// exchange in a room of 20 origins × 500 messages: read the version
// vector, diff it against the peer's, and build the repair frames. "idle":
// the peer has everything (the steady state); "missing10": the peer lacks
// the last 10 messages of every origin (200 messages to send).
func BenchmarkAntiEntropyDiff(b *testing.B) {
	const room, origins, each = "bench", 20, 500
	n := benchNode(b)
	fillLog(b, n.log, room, origins, each)
	ctx := context.Background()
	full, err := n.log.VersionVector(ctx, room)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		lack uint64
	}{{"idle", 0}, {"missing10", 10}} {
		remote := msglog.VersionVector{}
		for o, s := range full {
			remote[o] = s - tc.lack
		}
		b.Run(tc.name, func(b *testing.B) {
			sent := 0
			for b.Loop() {
				local, err := n.log.VersionVector(ctx, room)
				if err != nil {
					b.Fatal(err)
				}
				sent = 0
				reps, _ := n.buildRepair(room, msglog.Missing(local, remote), time.Time{})
				for _, rp := range reps {
					sent += len(rp.Envelopes)
				}
			}
			if want := int(tc.lack) * origins; sent != want {
				b.Fatalf("repair of %d messages, want %d", sent, want)
			}
		})
	}
}

// BenchmarkReceivePushed is the receive pipeline on one pushed chat
// message of a member, as a peer of a small group runs it for each message
// (duplicate lookup, signature check, log append with deferred fsync,
// ordering, delivery): the receiving end of the latency path.
func BenchmarkReceivePushed(b *testing.B) {
	cfg := DefaultConfig()
	cfg.DataDir = b.TempDir()
	cfg.Nick = "receiver"
	cfg.EventBuffer = 1 << 16
	n, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = n.Shutdown() })
	n.joinMu.Lock()
	_, err = n.openRoom(context.Background(), msglog.RoomInfo{Name: DefaultRoom, Mode: hearsay.OrderCausal.String(), Joined: time.Now()}, false)
	n.joinMu.Unlock()
	if err != nil {
		b.Fatal(err)
	}
	id, _ := NewIdentity()
	if err := n.speakers.add(id.Pub); err != nil {
		b.Fatal(err)
	}
	const pre = 1 << 14
	envs := make([]*chatpb.Envelope, pre)
	for i := range envs {
		envs[i] = benchChat(id, DefaultRoom, uint64(i+1), "a chat message of a typical length, about sixty bytes")
	}
	i := 0
	cpu := processCPU(b)
	for b.Loop() {
		if i == pre {
			b.Fatal("out of signed envelopes: raise pre")
		}
		n.receive(envs[i:i+1], id.ID, "")
		i++
	}
	reportCPU(b, cpu, i)
	if got := n.Stats().Stored; got != uint64(i) {
		b.Fatalf("stored %d of %d", got, i)
	}
}

// BenchmarkOverlayPayload is what a tree relay spends on one gossip
// payload of a member, from the frame to the store: the checks before
// relaying (checkOverlayPayload), the machine's step, and the receive
// pipeline on the first receipt (driven by hand: the node is not
// started, so nothing is sent).
func BenchmarkOverlayPayload(b *testing.B) {
	n := lobbyNode(b, "relay", 1<<16)
	id, _ := NewIdentity()
	if err := n.speakers.add(id.Pub); err != nil {
		b.Fatal(err)
	}
	const pre = 1 << 14
	frames := make([]*chatpb.Overlay, pre)
	for i := range frames {
		e := benchChat(id, DefaultRoom, uint64(i+1), "a chat message of a typical length, about sixty bytes")
		payload, err := proto.Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		m := overlay.Message{Kind: overlay.KindGossip, Peer: id.ID, ID: overlayMsgID(e.Room, e.Origin, e.Seq), Payload: payload}
		frames[i] = overlayFrame(&m).GetOverlay()
	}
	const neighbour = "0000000000000002"
	d := n.ovl
	i := 0
	cpu := processCPU(b)
	for b.Loop() {
		if i == pre {
			b.Fatal("out of signed payloads: raise pre")
		}
		n.handleOverlay(frames[i], neighbour)
		i++
		in, ok := d.inbox.next(&inboxPass{})
		if !ok {
			b.Fatal("the overlay frame was not queued")
		}
		d.input(in)
		d.flush()
		ds, ok := d.toPipeline.take()
		if !ok {
			b.Fatal("no deliveries for the pipeline")
		}
		d.deliver(ds)
	}
	reportCPU(b, cpu, i)
	if got := n.Stats().Stored; got != uint64(i) {
		b.Fatalf("stored %d of %d", got, i)
	}
}
