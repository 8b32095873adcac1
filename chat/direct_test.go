package chat_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
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
