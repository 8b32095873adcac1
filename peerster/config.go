package peerster

import (
	"io"
	"time"
)

// Config configures a Gossiper. Start from DefaultConfig: its limits are
// the documented caps (README.md).
type Config struct {
	// Name is the gossiper's origin name (-name). Required.
	Name string
	// GossipAddr is the udp4 ip:port to gossip on (-gossipAddr); port 0
	// picks a free one (see Gossiper.Addr).
	GossipAddr string
	// UIAddr is the ip:port of the client interface (-UIPort on
	// 127.0.0.1): client messages arrive there over UDP, and the GUI is
	// served there over HTTP when GUI is set. Empty: no client
	// interface (the bridge uses none).
	UIAddr string
	// GUI serves the part 3 web GUI on UIAddr (TCP).
	GUI bool
	// Peers are the bootstrap peers (-peers), udp4 ip:port each.
	Peers []string
	// Simple runs simple broadcast mode (-simple) instead of rumor
	// mongering.
	Simple bool

	// Output receives the protocol lines the handout specifies (CLIENT
	// MESSAGE, RUMOR, PEERS…), one Write per line. nil discards them.
	Output io.Writer
	// Logf receives diagnostics (never protocol lines). nil discards them.
	Logf func(format string, args ...any)
	// OnRumor, when set, is called with every new rumor from another
	// origin, in ID order per origin, and with every simple message from
	// another origin in simple mode (ID 0). It is called with the
	// gossiper's lock held, so it must not block or call the gossiper:
	// hand the message to a bounded queue.
	OnRumor func(RumorMessage)

	// RumorTimeout is how long a mongering waits for the status that
	// acknowledges its rumor before the coin flip (the handout: 1 s).
	RumorTimeout time.Duration
	// AntiEntropy is the period of the status sent to a random peer (the
	// handout: 1 s).
	AntiEntropy time.Duration

	// MaxPacketBytes bounds a datagram; larger ones are counted as
	// oversized and dropped. It also bounds what the gossiper sends.
	MaxPacketBytes int
	// MaxNameBytes bounds an origin name or status identifier, and
	// MaxAddrBytes a relay address; packets with longer ones are dropped
	// as oversized.
	MaxNameBytes int
	MaxAddrBytes int
	// MaxTextBytes bounds a message text; longer ones are dropped as
	// oversized.
	MaxTextBytes int
	// MaxPeers caps the peer list: peers beyond it are not learned
	// (Stats.PeersRefused).
	MaxPeers int
	// MaxOrigins, MaxRumors and MaxStoreBytes cap the rumor store: the
	// origins it tracks, the rumors it keeps, and their text bytes.
	// Rumors beyond a cap are not stored (Stats.RumorsRefused) and are
	// not asked for again.
	MaxOrigins    int
	MaxRumors     int
	MaxStoreBytes int
	// MaxLog caps the messages the GUI lists (the oldest go first).
	MaxLog int
	// SendRate bounds the bytes per second sent to any one IP address, with
	// bursts of SendBurst bytes; beyond it packets are not sent
	// (Stats.SendLimited). Peerster has no handshake, so a datagram with
	// a forged source address makes a gossiper answer a third party with
	// a status or rumor many times its size; this bounds what one
	// gossiper can be made to send a victim.
	SendRate  int
	SendBurst int

	// DropRate is fault injection for tests: the fraction (0 to 1) of
	// received gossip datagrams dropped before they are decoded, counted
	// in Stats.Dropped. Client messages are never dropped.
	DropRate float64
}

// DefaultConfig returns the handout's timers and the documented caps.
// MaxOrigins × MaxNameBytes is chosen so that the gossiper's own status
// packet always fits MaxPacketBytes.
func DefaultConfig() Config {
	return Config{
		RumorTimeout:   time.Second,
		AntiEntropy:    time.Second,
		MaxPacketBytes: 16 << 10,
		MaxNameBytes:   64,
		MaxAddrBytes:   64,
		MaxTextBytes:   4 << 10,
		MaxPeers:       256,
		MaxOrigins:     128,
		MaxRumors:      100_000,
		MaxStoreBytes:  64 << 20,
		MaxLog:         1000,
		SendRate:       256 << 10,
		SendBurst:      256 << 10,
	}
}
