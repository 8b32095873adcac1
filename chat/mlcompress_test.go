package chat_test

import (
	"testing"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// TestMemberlistCompressionDefaults: the LAN and local profiles leave
// memberlist's per-packet LZW compression off (it cost a quarter of the
// CPU of 50 peers under load), the WAN profile keeps memberlist's default.
func TestMemberlistCompressionDefaults(t *testing.T) {
	for _, tc := range []struct {
		profile string
		want    bool
	}{
		{chat.ProfileLAN, false},
		{chat.ProfileLocal, false},
		{chat.ProfileWAN, true},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			s, err := chat.DecodeMemberlistSettings([]byte(`{"profile":"` + tc.profile + `"}`))
			if err != nil {
				t.Fatal(err)
			}
			if s.EnableCompression != tc.want {
				t.Errorf("profile %s: enable_compression %v, want %v", tc.profile, s.EnableCompression, tc.want)
			}
		})
	}
}

// TestMemberlistCompressionMixedGroup: a peer that still compresses its
// memberlist packets (an older build, or a user's setting) and peers that
// do not form one group over real sockets, each decoding the other's
// packets and push/pulls, and chat across it.
func TestMemberlistCompressionMixedGroup(t *testing.T) {
	peers := chattest.Cluster(t, 3, func(i int, cfg *chat.Config) {
		s := *cfg.Memberlist
		s.EnableCompression = i == 0
		cfg.Memberlist = &s
	})
	for i, p := range peers {
		js, err := p.MemberlistConfigJSON()
		if err != nil {
			t.Fatal(err)
		}
		s, err := chat.DecodeMemberlistSettings(js)
		if err != nil {
			t.Fatal(err)
		}
		if want := i == 0; s.EnableCompression != want {
			t.Fatalf("p%d enable_compression %v, want %v", i, s.EnableCompression, want)
		}
	}
	for i, p := range peers {
		if _, err := p.Send(t.Context(), "", "hello from p"+string(rune('0'+i))); err != nil {
			t.Fatalf("send from p%d: %v", i, err)
		}
	}
	for i, p := range peers {
		chattest.WaitFor(t, chattest.DefaultTimeout, func() bool {
			return len(p.Rec.RoomMessages(chat.DefaultRoom)) == len(peers)
		}, "p%d has %d of %d messages", i, len(p.Rec.RoomMessages(chat.DefaultRoom)), len(peers))
	}
}
