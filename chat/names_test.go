package chat_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// Issue 11, finding 6: nicks cannot impersonate. Through real streams: a
// live member whose all-Cyrillic nick looks like another's is shown with
// an ID suffix (and so is the one it imitates); an envelope whose nick is
// the invisible U+3164 is refused; and once alice is offline, an envelope
// signed by a fresh key with the nick "alice" is never shown as a bare
// "alice" (refused, or shown with the stranger's ID suffix).
func TestNicksCannotImpersonate(t *testing.T) {
	nicks := []string{"alice", "bob", "ВОВ"} // the third is Cyrillic
	peers := chattest.Cluster(t, 3, func(i int, cfg *chat.Config) { cfg.Nick = nicks[i] })
	a, b, m := peers[0], peers[1], peers[2]

	// The look-alike: both bobs show suffixes on alice's screen.
	send(t, b, "from the real bob")
	send(t, m, "from the other one")
	chattest.WaitFor(t, timeout, func() bool { return len(a.Rec.Messages()) == 2 }, "alice shows %d of 2 messages", len(a.Rec.Messages()))
	want := map[string]string{b.ID(): "bob#" + b.ID()[:4], m.ID(): "ВОВ#" + m.ID()[:4]}
	for _, ev := range a.Rec.Messages() {
		if ev.From != want[ev.FromID] {
			t.Errorf("alice shows %q from %s, want %q", ev.From, ev.FromID, want[ev.FromID])
		}
	}

	// alice goes offline.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := a.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	chattest.WaitFor(t, timeout, func() bool {
		for _, mem := range b.Members() {
			if mem.ID == a.ID() {
				return mem.State != hearsay.StateAlive && mem.State != hearsay.StateSuspect
			}
		}
		return true
	}, "bob still sees alice live")

	stranger, err := chat.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	fake := &chatpb.Envelope{Seq: 1, Room: "lobby", Kind: chatpb.Kind_KIND_CHAT, Nick: "alice",
		Body: []byte("it's me, alice"), SentUnixNano: time.Now().UnixNano()}
	chat.SignEnvelope(stranger, fake)
	next := m.NextSeqForTest("lobby")
	invisible := signedLobby(m, "who am I", next)
	invisible.Nick = "\u3164"
	chat.SignEnvelope(m.Identity(), invisible)
	marker := signedLobby(m, "marker", next)
	before := b.Stats()
	// One stream, handled in order: when bob shows the marker, he has
	// handled the two before it.
	for _, e := range []*chatpb.Envelope{fake, invisible, marker} {
		// On a loaded machine memberlist may suspect a peer for a moment,
		// and the stream to it is restarted: wait for it.
		chattest.WaitFor(t, timeout, func() bool { return m.SendEnvelopeForTest(b.ID(), e) }, "could not queue test envelope")
	}
	b.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Type == hearsay.EventMessage && ev.Text == "marker" }, "the marker")
	if st := b.Stats(); st.Invalid == before.Invalid {
		t.Errorf("the U+3164 nick was not refused: %+v", st)
	}
	for _, ev := range b.Rec.Messages() {
		switch {
		case ev.Text == "who am I":
			t.Errorf("bob shows the envelope with an invisible nick: %+v", ev)
		case ev.FromID == stranger.ID && ev.From != "alice#"+stranger.ID[:4]:
			t.Errorf("bob shows the stranger as %q, want %q", ev.From, "alice#"+stranger.ID[:4])
		case ev.From == "alice" || strings.HasPrefix(ev.Text, "it's me") && !strings.HasPrefix(ev.From, "alice#"):
			t.Errorf("bob shows %q from %q", ev.Text, ev.From)
		}
	}
}
