package chat

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
	"golang.org/x/crypto/argon2"

	"github.com/hearsay-chat/hearsay/chat/order"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

// Memberlist profiles: the starting point of the memberlist configuration
// (memberlist.DefaultLANConfig, DefaultLocalConfig, DefaultWANConfig).
const (
	ProfileLAN   = "lan"
	ProfileLocal = "local"
	ProfileWAN   = "wan"
)

// DefaultRoom is the room a message goes to when no room is given.
const DefaultRoom = "lobby"

// Limits of the protocol. They are part of the wire contract: a receiver
// refuses anything larger, whatever its own Config says.
const (
	// MaxBodyBytes is the largest text body of a message (64 KiB).
	MaxBodyBytes = 64 << 10
	// MaxNickBytes is the longest nick.
	MaxNickBytes = 32
	// MaxRoomBytes is the longest room name.
	MaxRoomBytes = 64
	// MaxDeps is the most deps an envelope may carry. Senders name only
	// what is new since their previous message, at most
	// order.MaxDepsPerMessage (256) per envelope, so a room with any
	// number of authors stays within it.
	MaxDeps = 1024
	// MaxSeq bounds every seq, Lamport time, epoch, cut and global number
	// on the wire (order.MaxSeq, 2^62), so arithmetic on them never wraps.
	MaxSeq = order.MaxSeq
	// MaxStamped is the most messages one sequencer stamp may number.
	MaxStamped = 1024
	// MaxKVKeyBytes and MaxKVValueBytes bound one key/value entry, so that
	// its broadcast fits in a memberlist packet (a broadcast larger than
	// the space left in a packet never leaves the queue).
	MaxKVKeyBytes   = 64
	MaxKVValueBytes = 256
	// MaxKVEntries bounds the key/value state (live entries + tombstones).
	MaxKVEntries = 1024
	// MaxKVPerOrigin bounds the entries (tombstones included) one peer may
	// hold in the key/value state, so that no peer alone can fill it.
	MaxKVPerOrigin = 128
	// MaxKVStrangers bounds the entries, together, of origins this node
	// does not know as members (fresh keys cost nothing to make).
	MaxKVStrangers = MaxKVEntries / 4
	// MaxKVAhead is how far ahead of this node's clock a key/value
	// version (Unix milliseconds, see kv.go) may be: clocks differ a
	// little, but a version far ahead would own its key until then.
	MaxKVAhead = 10 * time.Minute
	// maxFrameBytes bounds one frame on a chat connection: a maximal
	// envelope (body, deps, keys) fits with room to spare.
	maxFrameBytes = MaxBodyBytes + (MaxDeps+MaxStamped)*(8+20) + 4096
)

// Config configures a Node. Build it with DefaultConfig and change what you
// need; New validates it and keeps a copy.
type Config struct {
	// Nick is the display name (1 to 32 bytes: letters, digits, '-', '_',
	// '.'). Nicks need not be unique.
	Nick string

	// DataDir holds the peer's identity (identity.key) and, with the bolt
	// message log, its history (messages.db and its write-ahead file). It
	// is created with mode 0700. Empty means an ephemeral identity that
	// lives only in memory (tests).
	DataDir string

	// BindAddr is the memberlist address "host:port"; port 0 picks a free
	// port. The chat TLS listener binds the same host on its own free
	// port (ChatPort).
	BindAddr string

	// AdvertiseHost, when set, is the host advertised to other peers for
	// both memberlist and chat (use it when binding 0.0.0.0).
	AdvertiseHost string

	// ChatPort is the port of the chat listener; 0 picks a free one.
	ChatPort int

	// ClusterKey enables memberlist encryption (AES-GCM keyring) when set:
	// 16, 24 or 32 bytes. Peers with a different key cannot join.
	// ClusterKeyFromPassphrase turns a passphrase into a key.
	ClusterKey []byte

	// ClusterLabel keeps groups apart on a shared network (memberlist
	// Label); peers with a different label ignore each other.
	ClusterLabel string

	// MemberlistProfile is ProfileLAN (default), ProfileLocal (fast
	// timers, for tests and one machine) or ProfileWAN.
	MemberlistProfile string

	// Memberlist, when not nil, replaces the profile's tunable settings
	// (timers, multipliers…); see MemberlistSettings. LoadMemberlistConfigJSON
	// sets it too.
	Memberlist *MemberlistSettings

	// TuneMemberlist, when not nil, is called on the final memberlist
	// configuration just before memberlist.Create, for anything
	// MemberlistSettings does not cover. It must not replace the
	// delegates, Name or Transport.
	TuneMemberlist func(*memberlist.Config)

	// TuneChatTransport, when not nil, is called on the TLS chat
	// transport's configuration just before the listener starts, for its
	// bounds (transport.TLSConfig's MaxHandshakes, MaxConns and their
	// per-address forms). It is not called when ChatTransport is set. It
	// must not replace the identity, protocol, PeerID or callbacks. `hearsay
	// bench` uses it: its peers all dial from 127.0.0.1, so a per-address
	// bound meant for one stranger would bound the whole group.
	TuneChatTransport func(*transport.TLSConfig)

	// MaxBodyBytes is the largest message this node lets its user send:
	// at most MaxBodyBytes (64 KiB), which receivers enforce whatever their
	// own setting.
	MaxBodyBytes int

	// LogOutput receives the node's and memberlist's logs. Nil discards
	// them: a library never writes to the terminal on its own.
	LogOutput io.Writer

	// EventBuffer is how many events may wait for the reader of Events.
	// When that many wait, new events are dropped (counted in
	// Stats.EventDrops) and an "error" event reports how many once there
	// is room again. Memory follows what waits: the channel itself has a
	// few slots, a burst beyond them is queued (eventqueue.go).
	EventBuffer int

	// SendQueue is the number of frames queued per peer connection. When a
	// queue is full the new frame is dropped (counted in Stats.QueueDrops):
	// the peer is slow or unreachable, and anti-entropy (issue 4) repairs
	// what it missed.
	SendQueue int

	// Faults, when not nil, enables fault injection on this node's traffic
	// (tests and experiments; see faults.go) with these initial settings.
	// Nil, the default, leaves the network path untouched.
	Faults *Faults

	// Observer, when not nil, receives the send → stored and receive →
	// delivered latencies (observer.go). Nil, the default, measures
	// nothing.
	Observer Observer

	// LeaveTimeout bounds a graceful Leave when the context has no
	// deadline.
	LeaveTimeout time.Duration

	// ChatTransport, when not nil, creates the chat transport for the
	// node's identity instead of the TLS listener on ChatPort (tests and
	// the simulator use transport.MemNetwork). The node closes it on
	// Shutdown.
	ChatTransport func(transport.Local) (transport.Transport, error)

	// MemberlistTransport, when not nil, creates the transport memberlist
	// sends its packets and streams on, instead of UDP and TCP on BindAddr
	// (the simulator in chat/sim runs memberlist in process with it). It is
	// called once per Start; memberlist shuts it down. It cannot be
	// combined with Faults, whose memberlist decorator wraps the network
	// transport.
	MemberlistTransport func() (memberlist.Transport, error)

	// HandshakeTimeout bounds the chat stream handshake.
	HandshakeTimeout time.Duration

	// MessageLog chooses where messages are stored: MessageLogBolt (a
	// bbolt file, DataDir/messages.db), MessageLogMemory (lost on exit), or
	// "" for bolt when DataDir is set and memory otherwise.
	MessageLog string

	// RetentionMaxAge and RetentionMaxCount bound what each room keeps in
	// the message log (by receive time, and messages per room; control
	// messages of the ordering modes count too). Zero means no limit.
	// Pruning runs every RetentionInterval.
	RetentionMaxAge   time.Duration
	RetentionMaxCount int
	RetentionInterval time.Duration

	// AntiEntropyInterval is how often the node compares version vectors
	// with one random live member of each joined room (and re-announces its
	// rooms). AntiEntropyBatch bounds the messages one repair round sends
	// to one peer (the rest follows in the next rounds).
	AntiEntropyInterval time.Duration
	AntiEntropyBatch    int

	// FanoutThreshold and Fanout shape eager push: in a room with at most
	// FanoutThreshold other live members the origin sends each message to
	// all of them; in a larger room it sends to Fanout random members and
	// every member forwards a message once, on first receipt, to Fanout
	// random members. Anti-entropy repairs whatever push misses.
	//
	// The default threshold, 64, covers the rooms a chat has (the group
	// sizes measured in docs/BENCHMARKS.md go to 50): pushing to every
	// member is one copy per member, no loss but what the network drops,
	// and latency of one hop. Random forwarding with Fanout 3 misses about
	// 2 % of (message, member) pairs, which wait for anti-entropy (and,
	// by per-origin order, hold the origin's later messages back), and
	// costs ~3.4 copies per member; the origin's 64 sends per message cost
	// less than that. Above 64 members the origin's send cost per message
	// grows with the room, and forwarding spreads it. Zero means the
	// default (as for Fanout).
	FanoutThreshold int
	Fanout          int

	// TreeThreshold switches a room's messages from direct push to the
	// overlay's broadcast tree (chat/overlaydrv.go): with more than
	// TreeThreshold live members in the group (this node included), an
	// origin broadcasts each message over the tree, which every member
	// relays, instead of pushing it to every room member. A negative value
	// never uses the tree (and keeps the forward-once gossip above
	// FanoutThreshold); 0 means the default. Every peer accepts both
	// paths at all times. The default comes from the switch-over measured
	// in docs/SCALE.md.
	TreeThreshold int

	// MaxHeld bounds, per room, the messages received but held back by the
	// ordering (order.Config.MaxHeld); beyond it they stay in the log and
	// are fed again later. MaxInFlight bounds our own undelivered messages
	// in total and sequencer rooms (Send returns an error beyond it).
	MaxHeld     int
	MaxInFlight int
	// FailedVoterTimeout bounds how long a room member that memberlist
	// declared failed (not one that left the group or parted the room)
	// still counts among the voters of a sequencer room. The sequencer role
	// is taken over, and stamps are issued, only by a side whose live
	// members are a strict majority of the voters (live plus failed), so
	// the minority side of a partition waits instead of ordering on its
	// own. Once a member has been failed this long it stops counting: a
	// lone survivor of a room whose others are gone for good goes on after
	// this bound, and a partition that lasts longer can give each side its
	// own sequencer again. Zero means the default (5 minutes).
	FailedVoterTimeout time.Duration
	// MaxHeldAhead bounds, per room and origin, how far beyond the
	// origin's contiguous seqs a received message is stored (held back on
	// disk until the gap fills). A message further ahead is dropped,
	// counted in Stats.HeldDiskDrops, and fetched again by anti-entropy
	// once the gap is filled: the log's held-back messages are bounded per
	// origin (about MaxHeldAhead × MaxBodyBytes) as the ordering's are in
	// memory. It should be at least AntiEntropyBatch, so that one repair
	// fits.
	MaxHeldAhead int

	// Direct configures direct messages (direct.go); zero fields mean
	// the defaults.
	Direct DirectConfig

	// linkIdle, when positive, replaces linkIdleTimeout (links.go): a test
	// hook, so a test can watch an idle link close without slowing
	// anti-entropy down to the same pace.
	linkIdle time.Duration
	// frameSent, when set, is called by a link's writer with each frame
	// it wrote and the peer it went to: a test hook, so a test can see
	// what a link carries.
	frameSent frameHook
	// frameReceived, when set, is called by a connection's reader with
	// each frame it decoded and the peer it came from: a test hook, so a
	// test can see which frames reach the node's handlers.
	frameReceived frameHook
	// beforeEnqueue, when set, is called by enqueue with each frame it
	// is about to push on the link to a peer, after it found the link
	// running: a test hook, so a test can drop the link at that instant.
	beforeEnqueue frameHook
	// roomSetTaking, when set, is called by takeRoomSet with a set's
	// origin between the section of roomsMu that judged the set stale or
	// not and the one that stores it: a test hook, so a test can forget
	// the origin's set at that instant.
	roomSetTaking func(origin string)
	// greetedHook, when set, is called by a link's writer once it has
	// written the greeting of the link's turn to kept number gen (its
	// keptGen) to the peer: a test hook, so a test can wait for it.
	greetedHook func(to string, gen uint64)
	// digestNow, when set, replaces time.Now for the rates of room set
	// digests and their requests (digestAnswerEvery, roomsetdigest.go):
	// a test hook, so a test can hold time still between two requests
	// instead of assuming they come within the rate's period.
	digestNow func() time.Time
}

// Message log choices (Config.MessageLog).
const (
	MessageLogBolt   = "bolt"
	MessageLogMemory = "memory"
)

// MessageLogFile is the message log's file name in the data directory.
const MessageLogFile = "messages.db"

// DefaultConfig returns the default configuration: nick "anon", LAN
// memberlist profile on 127.0.0.1 with free ports, no encryption, logs
// discarded.
func DefaultConfig() Config {
	return Config{
		Nick:              "anon",
		BindAddr:          "127.0.0.1:0",
		MemberlistProfile: ProfileLAN,
		MaxBodyBytes:      MaxBodyBytes,
		EventBuffer:       1024,
		SendQueue:         1024,
		LeaveTimeout:      5 * time.Second,
		HandshakeTimeout:  5 * time.Second,

		RetentionMaxAge:     30 * 24 * time.Hour,
		RetentionMaxCount:   100_000,
		RetentionInterval:   time.Minute,
		AntiEntropyInterval: time.Second,
		AntiEntropyBatch:    1024,
		FanoutThreshold:     64,
		Fanout:              3,
		TreeThreshold:       DefaultTreeThreshold,
		MaxHeld:             4096,
		MaxHeldAhead:        1024,
		MaxInFlight:         256,
		FailedVoterTimeout:  5 * time.Minute,
	}
}

// ClusterKeyFromPassphrase derives the 32-byte cluster key (memberlist's
// AES key, and the key of the chat connections' cluster proof) from a
// passphrase with argon2id, so users can type words instead of base64 and
// a captured packet does not allow fast offline guessing. The salt is
// fixed and versioned (every peer must derive the same key without
// talking first); changing the parameters needs a new salt version.
// RFC 9106's second recommended setting: 3 passes over 64 MiB; about a
// quarter of a second here, once per start.
func ClusterKeyFromPassphrase(pass string) []byte {
	return argon2.IDKey([]byte(pass), []byte(clusterKeySalt), 3, 64<<10, 4, 32)
}

// clusterKeySalt versions ClusterKeyFromPassphrase (v1 was one SHA-256).
const clusterKeySalt = "hearsay/cluster-key/v2/argon2id"

// validate checks the configuration and fills zero values with defaults.
func (c *Config) validate() error {
	def := DefaultConfig()
	if c.Nick == "" {
		c.Nick = def.Nick
	}
	if err := ValidateNick(c.Nick); err != nil {
		return err
	}
	if c.BindAddr == "" {
		c.BindAddr = def.BindAddr
	}
	host, port, err := net.SplitHostPort(c.BindAddr)
	if err != nil {
		return fmt.Errorf("bind address %q: want host:port: %w", c.BindAddr, err)
	}
	if net.ParseIP(host) == nil {
		return fmt.Errorf("bind address %q: host must be an IP address", c.BindAddr)
	}
	if _, err := parsePort(port); err != nil {
		return fmt.Errorf("bind address %q: %w", c.BindAddr, err)
	}
	if c.AdvertiseHost != "" && net.ParseIP(c.AdvertiseHost) == nil {
		return fmt.Errorf("advertise host %q: not an IP address", c.AdvertiseHost)
	}
	if c.ChatPort < 0 || c.ChatPort > 65535 {
		return fmt.Errorf("chat port %d: out of range", c.ChatPort)
	}
	switch len(c.ClusterKey) {
	case 0, 16, 24, 32:
	default:
		return fmt.Errorf("cluster key is %d bytes: want 16, 24 or 32 (or use ClusterKeyFromPassphrase)", len(c.ClusterKey))
	}
	if c.MemberlistProfile == "" {
		c.MemberlistProfile = def.MemberlistProfile
	}
	if _, err := profileConfig(c.MemberlistProfile); err != nil {
		return err
	}
	if c.Memberlist != nil {
		if err := c.Memberlist.validate(); err != nil {
			return err
		}
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = MaxBodyBytes
	}
	if c.MaxBodyBytes < 1 || c.MaxBodyBytes > MaxBodyBytes {
		return fmt.Errorf("max body %d bytes: want 1 to %d", c.MaxBodyBytes, MaxBodyBytes)
	}
	if c.Faults != nil {
		if err := c.Faults.validate(); err != nil {
			return err
		}
		if c.MemberlistTransport != nil {
			return errors.New("fault injection needs memberlist's network transport: unset MemberlistTransport or Faults")
		}
	}
	if c.LogOutput == nil {
		c.LogOutput = io.Discard
	}
	if c.EventBuffer <= 0 {
		c.EventBuffer = def.EventBuffer
	}
	if c.SendQueue <= 0 {
		c.SendQueue = def.SendQueue
	}
	if c.LeaveTimeout <= 0 {
		c.LeaveTimeout = def.LeaveTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = def.HandshakeTimeout
	}
	switch c.MessageLog {
	case "", MessageLogBolt, MessageLogMemory:
	default:
		return fmt.Errorf("message log %q: want %q or %q", c.MessageLog, MessageLogBolt, MessageLogMemory)
	}
	if c.MessageLog == MessageLogBolt && c.DataDir == "" {
		return errors.New("message log bolt needs a data directory")
	}
	if c.RetentionMaxAge < 0 || c.RetentionMaxCount < 0 {
		return errors.New("retention limits must not be negative")
	}
	if c.RetentionInterval <= 0 {
		c.RetentionInterval = def.RetentionInterval
	}
	if c.AntiEntropyInterval <= 0 {
		c.AntiEntropyInterval = def.AntiEntropyInterval
	}
	if c.AntiEntropyBatch <= 0 {
		c.AntiEntropyBatch = def.AntiEntropyBatch
	}
	if c.FanoutThreshold < 0 || c.Fanout < 0 {
		return errors.New("fan-out settings must not be negative")
	}
	if c.FanoutThreshold == 0 { // 0 is "the default", as for the other limits
		c.FanoutThreshold = def.FanoutThreshold
	}
	if c.Fanout == 0 {
		c.Fanout = def.Fanout
	}
	if c.TreeThreshold == 0 {
		c.TreeThreshold = def.TreeThreshold
	}
	if c.MaxHeldAhead <= 0 {
		c.MaxHeldAhead = def.MaxHeldAhead
	}
	if c.MaxHeld <= 0 {
		c.MaxHeld = def.MaxHeld
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = def.MaxInFlight
	}
	if c.FailedVoterTimeout < 0 {
		return fmt.Errorf("failed voter timeout %v: must not be negative", c.FailedVoterTimeout)
	}
	if c.FailedVoterTimeout == 0 {
		c.FailedVoterTimeout = def.FailedVoterTimeout
	}
	return nil
}

func parsePort(s string) (int, error) {
	var p int
	if _, err := fmt.Sscanf(s, "%d", &p); err != nil || p < 0 || p > 65535 || fmt.Sprint(p) != s {
		return 0, fmt.Errorf("port %q: want a number from 0 to 65535", s)
	}
	return p, nil
}

// profileConfig returns memberlist's default configuration for a
// profile, with compression off in the LAN and local ones: memberlist
// compresses every UDP packet it sends (probes, acks, gossip) with a new
// LZW writer whose tables (64 KiB) are allocated and cleared per packet,
// which cost a quarter of the CPU of 50 peers under load in one process
// (docs/BENCHMARKS.md, "Issue 16, fourth stop") to save a few hundred
// bytes a packet where bandwidth is cheapest. A receiver decodes
// compressed and plain packets alike, whatever its own setting, so peers
// with either setting work together. WAN keeps memberlist's default.
func profileConfig(profile string) (*memberlist.Config, error) {
	switch profile {
	case ProfileLAN:
		c := memberlist.DefaultLANConfig()
		c.EnableCompression = false
		return c, nil
	case ProfileLocal:
		c := memberlist.DefaultLocalConfig()
		c.EnableCompression = false
		return c, nil
	case ProfileWAN:
		return memberlist.DefaultWANConfig(), nil
	}
	return nil, fmt.Errorf("memberlist profile %q: want %q, %q or %q", profile, ProfileLAN, ProfileLocal, ProfileWAN)
}
