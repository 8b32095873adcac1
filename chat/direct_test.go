package chat_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// directConfig shortens the direct-message retry interval for tests.
func directConfig(_ int, cfg *chat.Config) {
	cfg.Direct.RetryInterval = 100 * time.Millisecond
}

// dirHas reports whether any file under dir contains needle.
func dirHas(t testing.TB, dir string, needle []byte) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			found = append(found, filepath.Base(path))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return found
}

func isState(id, state string) func(hearsay.Event) bool {
	return func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventState && ev.ID == id && ev.State == state
	}
}

// TestDirectLive: alice and bob exchange direct messages while carol, in
// the same rooms, never stores or sees their text; alice sees her message
// go pending → sent → delivered → read.
func TestDirectLive(t *testing.T) {
	var dirs [3]string
	peers := chattest.Cluster(t, 3, func(i int, cfg *chat.Config) {
		directConfig(i, cfg)
		cfg.Nick = []string{"alice", "bob", "carol"}[i]
		dirs[i] = cfg.DataDir
	})
	alice, bob, carol := peers[0], peers[1], peers[2]
	ctx, cancel := context.WithTimeout(context.Background(), chattest.DefaultTimeout)
	defer cancel()

	const secret = "the eagle lands at dawn 7f3a"
	id, err := alice.SendDirect(ctx, "bob", secret)
	if err != nil {
		t.Fatalf("send direct: %v", err)
	}
	own := alice.Rec.WaitEvent(t, chattest.DefaultTimeout, func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventDirect && ev.ID == id
	}, "alice's own direct event")
	if !own.Self || own.State != hearsay.StatePending || own.ToID != bob.ID() || own.Text != secret {
		t.Errorf("own event = %+v, want self, pending, to bob, the text", own)
	}
	got := bob.Rec.WaitEvent(t, chattest.DefaultTimeout, func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventDirect && ev.ID == id
	}, "bob's direct event")
	if got.Text != secret || got.FromID != alice.ID() || got.ToID != bob.ID() || got.Self {
		t.Errorf("bob got %+v, want alice's text to bob", got)
	}
	alice.Rec.WaitEvent(t, chattest.DefaultTimeout, isState(id, hearsay.StateDelivered), "delivered")
	if err := bob.MarkDirectRead("alice"); err != nil {
		t.Fatalf("mark read: %v", err)
	}
	alice.Rec.WaitEvent(t, chattest.DefaultTimeout, isState(id, hearsay.StateRead), "read")
	var states []string
	for _, ev := range alice.Rec.Filter(func(ev hearsay.Event) bool { return ev.ID == id }) {
		states = append(states, ev.State)
	}
	if want := []string{"pending", "sent", "delivered", "read"}; strings.Join(states, " ") != strings.Join(want, " ") {
		t.Errorf("alice's states = %v, want %v", states, want)
	}
	if und := alice.Undelivered(); len(und) != 0 {
		t.Errorf("undelivered after read = %v", und)
	}

	// A reply, and history on both ends.
	const reply = "copy that 91be"
	rid, err := bob.SendDirect(ctx, "alice", reply)
	if err != nil {
		t.Fatalf("reply: %v", err)
	}
	alice.Rec.WaitEvent(t, chattest.DefaultTimeout, func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventDirect && ev.ID == rid && ev.Text == reply
	}, "alice gets the reply")
	bob.Rec.WaitEvent(t, chattest.DefaultTimeout, isState(rid, hearsay.StateDelivered), "reply delivered")
	for _, p := range []*chattest.Peer{alice, bob} {
		h, err := p.DirectHistory(map[*chattest.Peer]string{alice: "bob", bob: "alice"}[p], 0)
		if err != nil {
			t.Fatalf("history: %v", err)
		}
		if len(h) != 2 || h[0].Text != secret || h[1].Text != reply {
			t.Errorf("%s's history = %+v, want the two messages", p.Nick(), h)
		}
	}

	// Carol: no event and no file holds the text.
	for _, ev := range carol.Rec.Events() {
		if strings.Contains(ev.Text, secret) || strings.Contains(ev.Text, reply) || ev.ID == id {
			t.Errorf("carol saw %+v", ev)
		}
	}
	for _, text := range []string{secret, reply} {
		if f := dirHas(t, dirs[2], []byte(text)); len(f) > 0 {
			t.Errorf("carol's files %v hold %q", f, text)
		}
		if f := dirHas(t, dirs[1], []byte(text)); len(f) == 0 {
			t.Errorf("bob's files do not hold %q (his readable copy)", text)
		}
	}
	if st := carol.Stats(); st.DirectHeld != 0 || st.DirectReceived != 0 {
		t.Errorf("carol's stats: held %d, received %d; want 0", st.DirectHeld, st.DirectReceived)
	}
	if st := bob.Stats(); st.DirectReceived != 1 || st.DirectForged+st.DirectInvalid+st.DirectMisaddressed != 0 {
		t.Errorf("bob's stats = %+v", st)
	}
}

// TestDirectOffline: bob is offline when alice writes; two other peers hold
// the sealed message, are restarted meanwhile (they keep it), and hand it
// to bob when he is back; bob shows it exactly once, and alice sees
// pending → sent → delivered → read.
func TestDirectOffline(t *testing.T) {
	nicks := []string{"alice", "bob", "h1", "h2"}
	cfgs := make([]chat.Config, len(nicks))
	peers := make([]*chattest.Peer, len(nicks))
	for i, nick := range nicks {
		cfgs[i] = chattest.Config(t, nick)
		directConfig(i, &cfgs[i])
		peers[i] = chattest.Start(t, cfgs[i])
	}
	for _, p := range peers[1:] {
		chattest.Join(t, p, peers[0])
	}
	chattest.WaitConverged(t, peers...)
	alice, bob := peers[0], peers[1]
	bobID := bob.ID()
	chattest.WaitFor(t, chattest.DefaultTimeout, func() bool { return alice.HasEncKey(bobID) }, "alice learns bob's key")

	if err := bob.Shutdown(); err != nil {
		t.Fatalf("stop bob: %v", err)
	}
	chattest.WaitFor(t, chattest.DefaultTimeout, func() bool {
		return !slices.ContainsFunc(alice.Members(), func(m hearsay.Member) bool { return m.ID == bobID && m.State == hearsay.StateAlive })
	}, "alice sees bob gone")

	ctx, cancel := context.WithTimeout(context.Background(), chattest.DefaultTimeout)
	defer cancel()
	const secret = "meet at the north gate 5d1c"
	id, err := alice.SendDirect(ctx, "bob", secret)
	if err != nil {
		t.Fatalf("send to offline bob: %v", err)
	}
	alice.Rec.WaitEvent(t, chattest.DefaultTimeout, isState(id, hearsay.StateSent), "sent (held)")
	for _, h := range peers[2:] {
		chattest.WaitFor(t, chattest.DefaultTimeout, func() bool { return h.Stats().DirectHeld == 1 }, "%s holds it", h.Nick())
	}
	// The holders keep only the sealed form.
	for _, i := range []int{2, 3} {
		if f := dirHas(t, cfgs[i].DataDir, []byte(secret)); len(f) > 0 {
			t.Errorf("holder %s's files %v hold the text", nicks[i], f)
		}
	}

	// Restart both holders: what they hold is on disk.
	for _, i := range []int{2, 3} {
		if err := peers[i].Shutdown(); err != nil {
			t.Fatalf("stop %s: %v", nicks[i], err)
		}
		peers[i] = chattest.Start(t, cfgs[i])
		if st := peers[i].Stats(); st.DirectHeld != 1 {
			t.Fatalf("%s holds %d after its restart, want 1", nicks[i], st.DirectHeld)
		}
		chattest.Join(t, peers[i], alice)
	}
	chattest.WaitConverged(t, alice, peers[2], peers[3])

	// bob returns on his data directory.
	bob = chattest.Start(t, cfgs[1])
	chattest.Join(t, bob, peers[2])
	bob.Rec.WaitEvent(t, chattest.DefaultTimeout, func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventDirect && ev.ID == id && ev.Text == secret && ev.FromID == alice.ID()
	}, "bob gets the message")
	alice.Rec.WaitEvent(t, chattest.DefaultTimeout, isState(id, hearsay.StateDelivered), "delivered")
	for _, h := range peers[2:] {
		chattest.WaitFor(t, chattest.DefaultTimeout, func() bool { return h.Stats().DirectHeld == 0 }, "%s drops it", h.Nick())
	}
	if err := bob.MarkDirectRead("alice"); err != nil {
		t.Fatalf("mark read: %v", err)
	}
	alice.Rec.WaitEvent(t, chattest.DefaultTimeout, isState(id, hearsay.StateRead), "read")

	if got := bob.Rec.Filter(func(ev hearsay.Event) bool { return ev.ID == id }); len(got) != 1 {
		t.Errorf("bob showed the message %d times, want once: %v", len(got), got)
	}
	if h, err := bob.DirectHistory("alice", 0); err != nil || len(h) != 1 {
		t.Errorf("bob's history = %v, %v; want one message", h, err)
	}
	var states []string
	for _, ev := range alice.Rec.Filter(func(ev hearsay.Event) bool { return ev.ID == id }) {
		states = append(states, ev.State)
	}
	if want := "pending sent delivered read"; strings.Join(states, " ") != want {
		t.Errorf("alice's states = %v, want %s", states, want)
	}
}
