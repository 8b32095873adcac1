package overlay

import (
	"testing"
	"time"
)

// FuzzStep feeds a Node arbitrary sequences of messages, failures,
// ticks, broadcasts and repaired messages: it must never panic, and its
// state must stay within its bounds.
func FuzzStep(f *testing.F) {
	f.Add([]byte{1, 0, 0, 2, 1, 3, 4, 1, 8, 2, 9, 0, 200})
	f.Add([]byte{3, 1, 3, 2, 8, 1, 9, 2, 10, 1, 11, 0, 6, 2, 7, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := testConfig("me")
		cfg.MaxSeen, cfg.MaxCache, cfg.MaxMissing, cfg.MaxLazyQueue, cfg.MaxTrees = 8, 4, 8, 4, 3
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		peers := []string{"a", "b", "c", "d", "e", "f", "me"}
		now := time.Duration(0)
		for len(data) >= 3 {
			op, p, x := data[0], peers[int(data[1])%len(peers)], data[2]
			data = data[3:]
			id := msgID(int(x % 16))
			other := peers[int(x)%len(peers)]
			switch op % 16 {
			case 12:
				n.PeerDown(now, p)
			case 13:
				now += time.Duration(x) * 10 * time.Millisecond
				n.Tick(now)
			case 14:
				if x&1 == 1 {
					n.Repaired(now, other, id, []byte{x}) // a message got off the tree
				} else {
					n.Broadcast(now, id, []byte{x})
				}
			case 15:
				n.Join(now, p)
			default:
				m := Message{Kind: Kind(op % 12), Peer: other, TTL: x % 8, High: x&1 == 1, Accept: x&2 == 2,
					Peers: peers[:int(x)%len(peers)], ID: id, Round: uint32(x) << 24, Payload: []byte{x},
					Announces: []Announce{{ID: id, Origin: other, Round: uint32(x)}}, IDs: []MsgID{id}}
				n.Step(now, p, m)
			}
			rd := n.Ready()
			for _, e := range rd.Messages {
				if e.To == "me" || e.To == "" {
					t.Fatalf("message to %q: %+v", e.To, e.Msg)
				}
				if e.Msg.Kind == KindShuffleReply && !n.IsActive(e.To) {
					t.Fatalf("shuffle reply to %q, not a neighbour (active %v)", e.To, n.view.active)
				}
			}
			if len(n.view.active) > cfg.ActiveSize+cfg.ActiveSlack || len(n.view.passive) > cfg.PassiveSize ||
				len(n.view.pending) > cfg.ActiveSize || len(n.tree.seen) > cfg.MaxSeen ||
				len(n.tree.cache) > cfg.MaxCache || len(n.tree.missing) > cfg.MaxMissing {
				t.Fatalf("state over its bounds: %d %d %d %d %d %d", len(n.view.active), len(n.view.passive),
					len(n.view.pending), len(n.tree.seen), len(n.tree.cache), len(n.tree.missing))
			}
			if h := n.tree.missingH; len(h) != len(n.tree.missing) {
				t.Fatalf("missing heap %d, table %d", len(h), len(n.tree.missing))
			}
			for i, m := range n.tree.missingH {
				if m.index != i || n.tree.missing[m.id] != m || i > 0 && n.tree.missingH.Less(i, (i-1)/2) {
					t.Fatalf("missing heap broken at %d: %+v", i, m)
				}
			}
			if len(n.view.walks) > maxWalks {
				t.Fatalf("%d walks remembered, bound %d", len(n.view.walks), maxWalks)
			}
			if len(n.tree.trees) > cfg.MaxTrees {
				t.Fatalf("%d trees, bound %d", len(n.tree.trees), cfg.MaxTrees)
			}
			k := 0
			for st := n.tree.newest; st != nil; st = st.older {
				if k++; n.tree.trees[st.origin] != st || k > len(n.tree.trees) ||
					(st.older == nil) != (st == n.tree.oldest) || st.older != nil && st.older.newer != st {
					t.Fatalf("order of use broken at tree %d (%s)", k, st.origin)
				}
			}
			if k != len(n.tree.trees) {
				t.Fatalf("order of use holds %d trees, table %d", k, len(n.tree.trees))
			}
			for o, st := range n.tree.trees {
				if st.lazy>>len(n.view.active) != 0 {
					t.Fatalf("tree %s: lazy bits %b beyond %d neighbours", o, st.lazy, len(n.view.active))
				}
			}
		}
	})
}
