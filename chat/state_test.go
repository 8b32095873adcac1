package chat

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
	"golang.org/x/text/unicode/norm"
	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

func TestMetaRoundTripAndLimits(t *testing.T) {
	id := testIdentity(t)
	m := peerMeta{Protocol: ProtocolVersion, ID: id.ID, Nick: strings.Repeat("n", MaxNickBytes), Pub: id.Pub,
		ChatAddr: "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535"}
	b, err := encodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > memberlist.MetaMaxSize/2 {
		t.Errorf("largest meta is %d bytes: keep well under %d", len(b), memberlist.MetaMaxSize)
	}
	got, err := decodeMeta(b, id.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != m.ID || got.Nick != m.Nick || got.ChatAddr != m.ChatAddr || !bytes.Equal(got.Pub, m.Pub) {
		t.Errorf("round trip: %+v, want %+v", got, m)
	}
	other := testIdentity(t)
	bad := []struct {
		name string
		meta *chatpb.NodeMeta
		node string
	}{
		{"wrong node name", &chatpb.NodeMeta{Protocol: ProtocolVersion, PeerId: id.ID, Nick: "a", PublicKey: id.Pub, ChatAddr: "127.0.0.1:1"}, other.ID},
		{"key of another", &chatpb.NodeMeta{Protocol: ProtocolVersion, PeerId: id.ID, Nick: "a", PublicKey: other.Pub, ChatAddr: "127.0.0.1:1"}, id.ID},
		{"no protocol", &chatpb.NodeMeta{PeerId: id.ID, Nick: "a", PublicKey: id.Pub, ChatAddr: "127.0.0.1:1"}, id.ID},
		{"plaintext protocol 2", &chatpb.NodeMeta{Protocol: 2, PeerId: id.ID, Nick: "a", PublicKey: id.Pub, ChatAddr: "127.0.0.1:1"}, id.ID},
		{"bad nick", &chatpb.NodeMeta{Protocol: ProtocolVersion, PeerId: id.ID, Nick: "a#b", PublicKey: id.Pub, ChatAddr: "127.0.0.1:1"}, id.ID},
		{"invisible nick", &chatpb.NodeMeta{Protocol: ProtocolVersion, PeerId: id.ID, Nick: "\u3164", PublicKey: id.Pub, ChatAddr: "127.0.0.1:1"}, id.ID},
		{"mixed-script nick", &chatpb.NodeMeta{Protocol: ProtocolVersion, PeerId: id.ID, Nick: "bоb", PublicKey: id.Pub, ChatAddr: "127.0.0.1:1"}, id.ID},
		{"zero-width nick", &chatpb.NodeMeta{Protocol: ProtocolVersion, PeerId: id.ID, Nick: "bo\u200bb", PublicKey: id.Pub, ChatAddr: "127.0.0.1:1"}, id.ID},
		{"host name", &chatpb.NodeMeta{Protocol: ProtocolVersion, PeerId: id.ID, Nick: "a", PublicKey: id.Pub, ChatAddr: "example.com:1"}, id.ID},
		{"port 0", &chatpb.NodeMeta{Protocol: ProtocolVersion, PeerId: id.ID, Nick: "a", PublicKey: id.Pub, ChatAddr: "127.0.0.1:0"}, id.ID},
		{"short key", &chatpb.NodeMeta{Protocol: ProtocolVersion, PeerId: id.ID, Nick: "a", PublicKey: id.Pub[:31], ChatAddr: "127.0.0.1:1"}, id.ID},
	}
	for _, tc := range bad {
		raw, _ := proto.Marshal(tc.meta)
		if _, err := decodeMeta(raw, tc.node); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if _, err := decodeMeta(bytes.Repeat([]byte{1}, 600), id.ID); err == nil {
		t.Error("oversized meta accepted")
	}
}

func TestValidateNick(t *testing.T) {
	for _, ok := range []string{"alice", "Bob_2", "x.y-z", "Zoë", strings.Repeat("a", 32),
		"борис", "Ελένη", "山田太郎", "やまだ", "Yamada山田", "김민준", "Łukasz", "Nguyễn"} {
		if err := ValidateNick(ok); err != nil {
			t.Errorf("ValidateNick(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a#b", "/nick", "#room", "a\x1b[31m", strings.Repeat("a", 33), "\xff",
		"\u3164", "\u3164\u3164", "a\u3164", "\uffa0", "\u115f\u1160", // Hangul fillers: letters that draw blank
		"a\u200bb", "a\u200db", "a\u00adb", "a\u2060b", "\ufeffa", "a\U000E0041", "a\u2028", "a\u202eb", // zero-width, format, tags, separators
		"a\u034fb", "Zoe\u0308", // a default-ignorable mark; combining instead of precomposed
		"ａｌｉｃｅ", "ﬁx", "ℌal", // compatibility forms (NFKC changes them)
		"bоb", "pаypal", "Αlice", // Latin mixed with Cyrillic or Greek
	} {
		if err := ValidateNick(bad); err == nil {
			t.Errorf("ValidateNick(%q) accepted", bad)
		}
	}
}

func TestSkeleton(t *testing.T) {
	alike := [][2]string{
		{"alice", "Alice"}, {"alice", "ALICE"}, {"bob", "ВОВ"}, {"alice", "аlice"}, {"paypal", "раураl"},
		{"ocean", "осеаn"}, {"Ian", "lan"}, {"bill", "b1ll"}, {"modern", "rnodern"}, {"wave", "vvave"}, {"bob", "b0b"},
		{"ΚΑΤΕ", "kate"}, {"alice", "ａｌｉｃｅ"},
	}
	for _, p := range alike {
		if skeleton(p[0]) != skeleton(p[1]) {
			t.Errorf("skeleton(%q) = %q, skeleton(%q) = %q: want equal", p[0], skeleton(p[0]), p[1], skeleton(p[1]))
		}
	}
	for _, p := range [][2]string{{"alice", "alicia"}, {"bob", "bab"}, {"dan", "don"}, {"борис", "boris"}} {
		if skeleton(p[0]) == skeleton(p[1]) {
			t.Errorf("skeleton(%q) = skeleton(%q) = %q: want different", p[0], p[1], skeleton(p[0]))
		}
	}
}

// FuzzValidateNick: a nick ValidateNick accepts is short, valid UTF-8,
// in its normal form, without invisible or format characters, and the
// skeleton of any string never panics.
func FuzzValidateNick(f *testing.F) {
	for _, s := range []string{"alice", "bоb", "\u3164", "Zoë", "ａｌｉｃｅ", "a\u200bb", "山田", "a.b-c_d", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, nick string) {
		_ = skeleton(nick)
		if ValidateNick(nick) != nil {
			return
		}
		if len(nick) == 0 || len(nick) > MaxNickBytes || !utf8.ValidString(nick) {
			t.Fatalf("accepted %q", nick)
		}
		if nick != norm.NFKC.String(nick) {
			t.Fatalf("accepted %q, not in NFKC", nick)
		}
		for _, r := range nick {
			if unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Zs, unicode.M, unicode.C, unicode.Other_Default_Ignorable_Code_Point) ||
				r == 0x3164 || r == 0xffa0 || r == 0x115f || r == 0x1160 {
				t.Fatalf("accepted %q with %U", nick, r)
			}
		}
	})
}

func TestIdentityPersisted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profile")
	a, err := LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || !hearsay.ValidPeerID(a.ID) || a.ID != PeerIDFromKey(a.Pub) {
		t.Fatalf("ids %q and %q", a.ID, b.ID)
	}
	st, err := os.Stat(filepath.Join(dir, identityFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("identity mode %v, want 0600", st.Mode().Perm())
	}
	if err := os.Chmod(filepath.Join(dir, identityFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateIdentity(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key: err %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, identityFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateIdentity(dir); err == nil {
		t.Error("garbage identity accepted")
	}
}

func TestMemberlistSettingsJSON(t *testing.T) {
	base, _ := profileConfig(ProfileLocal)
	s := settingsFrom(ProfileLocal, base)
	js, err := jsonIndent(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"probe_interval": "1s"`) {
		t.Errorf("durations not written as strings:\n%s", js)
	}
	back, err := DecodeMemberlistSettings(js)
	if err != nil {
		t.Fatal(err)
	}
	if back != s {
		t.Errorf("round trip:\n%+v\nwant\n%+v", back, s)
	}
	partial, err := DecodeMemberlistSettings([]byte(`{"profile":"lan","gossip_interval":"50ms"}`))
	if err != nil {
		t.Fatal(err)
	}
	if time := partial.GossipInterval; time != Duration(50e6) || partial.ProbeInterval != Duration(1e9) {
		t.Errorf("partial: %+v", partial)
	}
	for _, bad := range []string{
		`{"gossip_intervall":"1s"}`, `{"probe_interval":"soon"}`, `{"probe_interval":"-1s"}`,
		`{"profile":"moon"}`, `{"probe_timeout":"5s","probe_interval":"1s"}`, `{"gossip_nodes":0}`,
		`{"udp_buffer_size":10}`, `[1,2]`, `{`,
	} {
		if _, err := DecodeMemberlistSettings([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"nick":        func(c *Config) { c.Nick = "a b" },
		"bind":        func(c *Config) { c.BindAddr = "localhost" },
		"bind host":   func(c *Config) { c.BindAddr = "example.com:0" },
		"bind port":   func(c *Config) { c.BindAddr = "127.0.0.1:70000" },
		"key length":  func(c *Config) { c.ClusterKey = []byte("short") },
		"profile":     func(c *Config) { c.MemberlistProfile = "moon" },
		"chat port":   func(c *Config) { c.ChatPort = -1 },
		"advertise":   func(c *Config) { c.AdvertiseHost = "host" },
		"ml settings": func(c *Config) { c.Memberlist = &MemberlistSettings{} },
		"max body":    func(c *Config) { c.MaxBodyBytes = MaxBodyBytes + 1 },
		"voters":      func(c *Config) { c.FailedVoterTimeout = -time.Second },
	} {
		c := DefaultConfig()
		mut(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := DefaultConfig()
	c.Nick, c.EventBuffer, c.LogOutput, c.FailedVoterTimeout = "", 0, nil, 0
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.Nick != "anon" || c.EventBuffer == 0 || c.LogOutput == nil || c.FailedVoterTimeout != 5*time.Minute {
		t.Errorf("defaults not filled: %+v", c)
	}
}

func TestKVEntryChecks(t *testing.T) {
	id := testIdentity(t)
	mk := func(key, value string, version uint64) *chatpb.KVEntry {
		e := &chatpb.KVEntry{Key: key, Value: value, Version: version, Origin: id.ID, OriginKey: id.Pub}
		e.Signature = id.Sign(kvSigningBytes(e))
		return e
	}
	good := mk("topic", "x", 1)
	raw, _ := proto.Marshal(good)
	if _, err := DecodeKVEntry(raw); err != nil {
		t.Fatalf("genuine entry: %v", err)
	}
	altered := mk("topic", "x", 1)
	altered.Value = "y"
	tomb := mk("topic", "", 2)
	tomb.Deleted = true // not re-signed: deleted is covered
	for name, e := range map[string]*chatpb.KVEntry{
		"altered":    altered,
		"tombstone":  tomb,
		"version 0":  mk("topic", "x", 0),
		"long key":   mk(strings.Repeat("k", 65), "x", 1),
		"space key":  mk("a b", "x", 1),
		"long value": mk("k", strings.Repeat("v", 257), 1),
		"not utf8":   mk("k", "\xff", 1),
	} {
		if err := checkKVEntry(e); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Conflict resolution is a total order: version, then origin.
	a := &chatpb.KVEntry{Version: 2, Origin: "0000000000000001"}
	b := &chatpb.KVEntry{Version: 2, Origin: "0000000000000002"}
	c := &chatpb.KVEntry{Version: 3, Origin: "0000000000000001"}
	if kvNewer(a, b) || !kvNewer(b, a) || !kvNewer(c, b) || kvNewer(a, a) {
		t.Error("kvNewer is not the (version, origin) order")
	}
}

func TestDisplayNames(t *testing.T) {
	n, err := New(Config{Nick: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	n.members["aaaa000000000001"] = &memberInfo{ID: "aaaa000000000001", Nick: "bob", State: hearsay.StateAlive, Valid: true}
	n.members["aaaa000000000002"] = &memberInfo{ID: "aaaa000000000002", Nick: "bob", State: hearsay.StateAlive, Valid: true}
	n.members["bbbb000000000003"] = &memberInfo{ID: "bbbb000000000003", Nick: "alice", State: hearsay.StateDead, Valid: true}
	n.members["cccc000000000004"] = &memberInfo{ID: "cccc000000000004", Nick: "carol", State: hearsay.StateAlive, Valid: true}
	for id, want := range map[string]string{
		"aaaa000000000001": "bob#aaaa000000000001", // the suffix grows until it tells the two bobs apart
		"cccc000000000004": "carol",
		n.ID():             "alice", // the dead alice does not count
	} {
		if got := n.displayName(id, ""); got != want {
			t.Errorf("displayName(%s) = %q, want %q", id, got, want)
		}
	}
	if _, err := n.resolvePeer("bob"); err == nil {
		t.Error("ambiguous nick resolved")
	}
	if m, err := n.resolvePeer("carol"); err != nil || m.ID != "cccc000000000004" {
		t.Errorf("resolve carol: %v %v", m, err)
	}
	if m, err := n.resolvePeer("bob#aaaa000000000002"); err != nil || m.ID != "aaaa000000000002" {
		t.Errorf("resolve bob#…2: %v %v", m, err)
	}

	// Look-alikes: a Cyrillic "саrol" and an upper-case "CAROL" make the
	// three carols show suffixes; a message from a stranger, or from a
	// member that is offline, always shows one, whatever its nick.
	n.members["dddd000000000005"] = &memberInfo{ID: "dddd000000000005", Nick: "саrol", State: hearsay.StateAlive, Valid: true}
	n.members["eeee000000000006"] = &memberInfo{ID: "eeee000000000006", Nick: "CAROL", State: hearsay.StateSuspect, Valid: true}
	n.members["ffff000000000007"] = &memberInfo{ID: "ffff000000000007", Nick: "dave", State: hearsay.StateLeft, Valid: true}
	for _, tc := range []struct{ id, nick, want string }{
		{"cccc000000000004", "", "carol#cccc"},
		{"dddd000000000005", "", "саrol#dddd"},
		{"eeee000000000006", "", "CAROL#eeee"},
		{"9999000000000009", "alice", "alice#9999"},   // a stranger using this node's nick
		{"9999000000000009", "zed", "zed#9999"},       // a stranger with a nick nobody has
		{"bbbb000000000003", "ignored", "alice#bbbb"}, // the dead alice, by her member nick
		{"ffff000000000007", "", "dave#ffff"},         // a member that left
		{n.ID(), "", "alice"},                         // this node: live
	} {
		if got := n.displayName(tc.id, tc.nick); got != tc.want {
			t.Errorf("displayName(%s, %q) = %q, want %q", tc.id, tc.nick, got, tc.want)
		}
	}
	n.members["aaaa000000000008"] = &memberInfo{ID: "aaaa000000000008", Nick: "аlice", State: hearsay.StateAlive, Valid: true}
	if got, want := n.displayName(n.ID(), ""), "alice#"+n.ID()[:4]; got != want {
		t.Errorf("this node beside a Cyrillic look-alike: %q, want %q", got, want)
	}
}
