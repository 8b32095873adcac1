package chat

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
	"github.com/hearsay-chat/hearsay/chat/overlay"
	"github.com/hearsay-chat/hearsay/internal/allocs"
)

// checkCounter counts the signature checks a node makes, per
// "origin/seq".
type checkCounter struct {
	mu sync.Mutex
	k  map[string]int
}

func countChecks(n *Node) *checkCounter {
	c := &checkCounter{k: map[string]int{}}
	n.verify.onCheck.Store(new(func(envs []*chatpb.Envelope) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, e := range envs {
			c.k[fmt.Sprintf("%s/%d", e.Origin, e.Seq)]++
		}
	}))
	return c
}

func (c *checkCounter) of(e *chatpb.Envelope) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.k[fmt.Sprintf("%s/%d", e.Origin, e.Seq)]
}

// overlayGossip returns the Overlay frame body a neighbour sends for env
// in its origin's tree.
func overlayGossip(t *testing.T, env *chatpb.Envelope) *chatpb.Overlay {
	t.Helper()
	payload, err := proto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	m := overlay.Message{Kind: overlay.KindGossip, Peer: env.Origin, ID: overlayMsgID(env.Room, env.Origin, env.Seq), Payload: payload}
	return overlayFrame(&m).GetOverlay()
}

// stepDriver does by hand what the driver's goroutines do with the
// queued inputs (the node is not started): step them, flush, and feed the
// first receipts to the pipeline. It returns what was fed.
func stepDriver(t *testing.T, d *overlayDriver) []pipelined {
	t.Helper()
	for {
		in, ok := d.inbox.next(&inboxPass{})
		if !ok {
			break
		}
		d.input(in)
	}
	d.flush()
	var fed []pipelined
	for {
		ps, ok := d.toPipeline.take()
		if !ok {
			break
		}
		d.deliver(ps)
		fed = append(fed, ps...)
	}
	return fed
}

// A gossip payload is verified once on its way from the overlay to the
// store: checkOverlayPayload verifies it before the machine relays it,
// and the pipeline stores that envelope without a second check. A forged
// payload is verified, refused, never queued for the machine, never
// stored.
func TestOverlayPayloadVerifiedOnce(t *testing.T) {
	n := lobbyNode(t, "relay", 16)
	origin := testIdentity(t)
	if err := n.speakers.add(origin.Pub); err != nil {
		t.Fatal(err)
	}
	checks := countChecks(n)
	const neighbour = "0000000000000002"
	mk := func(seq uint64, body string) *chatpb.Envelope {
		e := &chatpb.Envelope{Seq: seq, Room: DefaultRoom, Kind: chatpb.Kind_KIND_CHAT, Lamport: seq, SentUnixNano: 1, Body: []byte(body)}
		SignEnvelope(origin, e)
		return e
	}
	valid := mk(1, "valid")

	n.handleOverlay(overlayGossip(t, forgedCopy(valid)), neighbour)
	if got := n.ovl.invalid.Load(); got != 1 {
		t.Fatalf("overlay invalid %d after a forged payload, want 1", got)
	}
	if n.ovl.inbox.lens() != [inboxQueues]int{} {
		t.Fatal("a forged payload was queued for the machine")
	}
	if fed := stepDriver(t, n.ovl); len(fed) != 0 {
		t.Fatalf("%d deliveries after a forged payload, want none", len(fed))
	}
	if _, err := n.log.Get(context.Background(), DefaultRoom, origin.ID, 1); !errors.Is(err, msglog.ErrNotFound) {
		t.Fatalf("forged payload: %v, want not stored", err)
	}
	if got := checks.of(valid); got != 1 {
		t.Fatalf("forged payload checked %d times, want 1", got)
	}

	n.handleOverlay(overlayGossip(t, valid), neighbour)
	if fed := stepDriver(t, n.ovl); len(fed) != 1 {
		t.Fatalf("fed %d deliveries, want the valid payload", len(fed))
	}
	rec, err := n.log.Get(context.Background(), DefaultRoom, origin.ID, 1)
	if err != nil {
		t.Fatalf("valid payload not stored: %v", err)
	}
	if got, err := decodeStored(rec.Data); err != nil || string(got.Body) != "valid" {
		t.Fatalf("stored %v (%v), want the valid payload", got, err)
	}
	// One check for the forged copy, one for the valid payload before it
	// was relayed; none in the pipeline.
	if got := checks.of(valid); got != 2 {
		t.Fatalf("signature checks of %s/1: %d, want 2 (the valid payload verified twice?)", origin.ID, got)
	}
	if len(n.ovl.checked) != 0 {
		t.Fatalf("%d checked payloads kept after the flush", len(n.ovl.checked))
	}
}

// Only a delivery whose payload is the very slice checkOverlayPayload
// checked is paired with its envelope: equal bytes elsewhere, or a prefix
// of the checked slice, are verified by the pipeline.
func TestOverlayCheckedBinding(t *testing.T) {
	n := lobbyNode(t, "relay", 16)
	d := n.ovl
	env := &chatpb.Envelope{Origin: "0000000000000001", Seq: 1}
	payload := []byte("the checked payload")
	d.checked[&payload[0]] = checkedPayload{env: env, len: len(payload)}
	ps := d.pipelinedOf([]overlay.Delivery{
		{Payload: payload},
		{Payload: append([]byte(nil), payload...)},
		{Payload: payload[:5]},
		{Payload: nil},
	})
	for i, want := range []*chatpb.Envelope{env, nil, nil, nil} {
		if ps[i].env != want {
			t.Errorf("delivery %d paired with %v, want %v", i, ps[i].env, want)
		}
	}
}

// The pipeline verifies every envelope not marked verified, in a batch
// beside marked ones: a forged unmarked one is dropped and counted, the
// marked one is stored without a check.
func TestReceiveCheckedVerifiesUnmarked(t *testing.T) {
	n := lobbyNode(t, "receiver", 16)
	origin := testIdentity(t)
	if err := n.speakers.add(origin.Pub); err != nil {
		t.Fatal(err)
	}
	checks := countChecks(n)
	mk := func(seq uint64) *chatpb.Envelope {
		e := &chatpb.Envelope{Seq: seq, Room: DefaultRoom, Kind: chatpb.Kind_KIND_CHAT, Lamport: seq, SentUnixNano: 1, Body: []byte("hi")}
		SignEnvelope(origin, e)
		return e
	}
	forged, marked, plain := forgedCopy(mk(1)), mk(2), mk(3)
	before := n.Stats()
	n.receiveChecked([]*chatpb.Envelope{forged, marked, plain}, []bool{false, true, false}, "0000000000000002", "")
	after := n.Stats()
	if got := after.Forged - before.Forged; got != 1 {
		t.Errorf("forged %d, want 1", got)
	}
	if got := after.Stored - before.Stored; got != 2 {
		t.Errorf("stored %d, want 2", got)
	}
	for _, tc := range []struct {
		env    *chatpb.Envelope
		checks int
		stored bool
	}{{forged, 1, false}, {marked, 0, true}, {plain, 1, true}} {
		if got := checks.of(tc.env); got != tc.checks {
			t.Errorf("seq %d checked %d times, want %d", tc.env.Seq, got, tc.checks)
		}
		_, err := n.log.Get(context.Background(), DefaultRoom, origin.ID, tc.env.Seq)
		if stored := err == nil; stored != tc.stored {
			t.Errorf("seq %d stored %v, want %v (%v)", tc.env.Seq, stored, tc.stored, err)
		}
	}
}

// recentVerified answers only for the exact bytes verified under an ID,
// and forgets the oldest payloads beyond its count and byte bounds.
func TestRecentVerifiedBounds(t *testing.T) {
	var r recentVerified
	id := func(i int) overlay.MsgID { return overlay.MsgID{byte(i), byte(i >> 8)} }
	r.add(id(0), []byte("payload 0"))
	switch {
	case !r.has(id(0), []byte("payload 0")):
		t.Fatal("verified payload not remembered")
	case r.has(id(0), []byte("payload 1")):
		t.Fatal("other bytes under a verified ID taken as verified")
	case r.has(id(1), []byte("payload 0")):
		t.Fatal("verified bytes under another ID taken as verified")
	}
	r.add(id(0), []byte("another payload 0")) // the first stays
	if !r.has(id(0), []byte("payload 0")) || r.has(id(0), []byte("another payload 0")) {
		t.Fatal("a second payload under one ID replaced the first")
	}
	for i := 1; i <= maxRecentVerified; i++ {
		r.add(id(i), []byte(fmt.Sprintf("payload %d", i)))
	}
	if r.has(id(0), []byte("payload 0")) || !r.has(id(maxRecentVerified), []byte(fmt.Sprintf("payload %d", maxRecentVerified))) {
		t.Fatal("count bound: the oldest not forgotten, or the newest not kept")
	}
	if len(r.byID) != maxRecentVerified || len(r.order) != maxRecentVerified {
		t.Fatalf("%d payloads (%d in order), want %d", len(r.byID), len(r.order), maxRecentVerified)
	}
	big := make([]byte, maxRecentVerifiedBytes/2+1)
	r.add(id(1000), big)
	r.add(id(1001), big)
	if r.has(id(1000), big) || !r.has(id(1001), big) || r.bytes > maxRecentVerifiedBytes {
		t.Fatalf("byte bound: %d bytes kept, want at most %d with the newest", r.bytes, maxRecentVerifiedBytes)
	}
	r.add(id(1002), make([]byte, maxRecentVerifiedBytes+1))
	if r.has(id(1002), make([]byte, maxRecentVerifiedBytes+1)) || !r.has(id(1001), big) {
		t.Fatal("a payload over the byte bound was kept, or evicted others")
	}
}

// A gossip payload over an envelope's bounds (deps, stamped) is refused
// on its bytes: a payload at the limit of empty deps decoded to some
// 63,000 allocations before validateEnvelope counted them.
func TestOverlayPayloadBoundsBeforeDecode(t *testing.T) {
	n := lobbyNode(t, "relay", 16)
	deps := make([]*chatpb.Dep, (maxOverlayPayload-64)/2)
	for i := range deps {
		deps[i] = &chatpb.Dep{}
	}
	refs := make([]*chatpb.MsgRef, MaxStamped+1)
	for i := range refs {
		refs[i] = &chatpb.MsgRef{}
	}
	for name, env := range map[string]*chatpb.Envelope{
		"deps":        {Deps: deps},
		"deps + 1":    {Deps: deps[:MaxDeps+1]},
		"stamped + 1": {Kind: chatpb.Kind_KIND_STAMP, Stamped: refs},
	} {
		payload, err := proto.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		if len(payload) > maxOverlayPayload {
			t.Fatalf("%s: payload of %d bytes over the limit", name, len(payload))
		}
		m := &overlay.Message{Kind: overlay.KindGossip, Peer: "0000000000000001", Payload: payload}
		if _, err := n.checkOverlayPayload(m); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
		if a := allocs.MinPerRun(3, 5, func() { _, _ = n.checkOverlayPayload(m) }); a > refusalAllocs {
			t.Errorf("%s: refusing the payload allocates %v times (decoded before it was counted)", name, a)
		}
	}
}
