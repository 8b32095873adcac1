package peerster

// The bridge joins a Peerster network to one hearsay room. It runs a
// gossiper (rumor mongering) inside a hearsay peer:
//
//   - a new rumor from Peerster is posted to the room by the hearsay peer,
//     as "name@peerster: text" (name is the rumor's origin);
//   - a message delivered in the room is rumored into Peerster under the
//     bridge's own origin name, as "nick@hearsay: text".
//
// What the bridge cannot guarantee: Peerster messages are not signed, so
// "name@peerster" is only what some datagram claimed. Anyone who can send
// UDP to the bridge's gossipers can speak under any Peerster name, and the
// hearsay room sees the post signed by the bridge's peer, which vouches
// for nothing but having relayed it. In the other direction, a Peerster
// node sees the bridge's origin name and the author's nick in the text,
// without any way to check either. Peerster delivery is best effort (a
// rumor store or peer list at its cap drops messages), and a message sent
// while the hearsay peer is not in the room is not bridged.
//
// No echo loops: the bridge forwards neither its own posts (nor any room
// message that looks like a bridged Peerster message, "x@peerster: …")
// back into Peerster, nor a rumor that looks like a bridged hearsay
// message ("x@hearsay: …") into the room; so several bridges between the
// same room and network do not feed each other (bridges do not chain).

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hearsay-chat/hearsay"
)

// Sender posts to a hearsay room; *chat.Node implements it.
type Sender interface {
	// Send sends text to room (without '#'); it blocks until the message
	// is stored locally.
	Send(ctx context.Context, room, text string) (hearsay.MsgID, error)
}

// BridgeConfig configures a Bridge.
type BridgeConfig struct {
	// Gossiper configures the bridge's gossiper: Name (its origin name
	// in Peerster), GossipAddr and Peers. It runs rumor mongering
	// (Simple is refused), and OnRumor is the bridge's.
	Gossiper Config
	// Room is the hearsay room, without '#'.
	Room string
	// Chat posts to the room.
	Chat Sender
	// Logf receives what went wrong (a failed post, a dropped message).
	Logf func(format string, args ...any)
}

// BridgeStats counts what crossed the bridge and what was dropped.
type BridgeStats struct {
	ToHearsay  uint64 // rumors posted to the room
	ToPeerster uint64 // room messages rumored into Peerster
	Dropped    uint64 // messages lost: a full queue or a failed send
}

// bridgeQueue bounds each direction's queue: a slow room or a busy
// gossiper drops (and counts) rather than stalling the other side.
const bridgeQueue = 256

// sendTimeout bounds one post to the room.
const sendTimeout = 10 * time.Second

// Markers of bridged text: "name@peerster: " and "nick@hearsay: ".
var (
	fromPeerster = regexp.MustCompile(`^\S+@peerster: `)
	fromHearsay  = regexp.MustCompile(`^\S+@hearsay: `)
)

// Bridge relays between a Peerster network and a hearsay room. Its
// methods are safe for concurrent use.
type Bridge struct {
	cfg    BridgeConfig
	g      *Gossiper
	rumors chan RumorMessage  // from Peerster; read by run
	events chan hearsay.Event // from the room; read by run

	toHearsay, toPeerster, dropped atomic.Uint64

	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// NewBridge starts the bridge's gossiper and its relay goroutine. Feed it
// the hearsay peer's events with HandleEvent (through Tap); Close stops
// it.
func NewBridge(cfg BridgeConfig) (*Bridge, error) {
	if cfg.Chat == nil || cfg.Room == "" {
		return nil, errors.New("bridge: a room and a sender are required")
	}
	if cfg.Gossiper.Simple {
		return nil, errors.New("bridge: simple mode has no message IDs to bridge")
	}
	b := &Bridge{
		cfg:    cfg,
		rumors: make(chan RumorMessage, bridgeQueue),
		events: make(chan hearsay.Event, bridgeQueue),
		done:   make(chan struct{}),
	}
	gcfg := cfg.Gossiper
	gcfg.OnRumor = b.onRumor
	if gcfg.Logf == nil {
		gcfg.Logf = cfg.Logf
	}
	g, err := New(gcfg)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	b.g = g
	b.wg.Add(1)
	go b.run()
	return b, nil
}

// Gossiper returns the bridge's gossiper (its address, peers, messages).
func (b *Bridge) Gossiper() *Gossiper { return b.g }

// Stats returns the bridge's counters.
func (b *Bridge) Stats() BridgeStats {
	return BridgeStats{ToHearsay: b.toHearsay.Load(), ToPeerster: b.toPeerster.Load(), Dropped: b.dropped.Load()}
}

// Close stops the relay and the gossiper. It is idempotent. HandleEvent
// ignores events after Close.
func (b *Bridge) Close() error {
	b.closeOnce.Do(func() {
		close(b.done)
		b.wg.Wait()
		b.g.Close()
	})
	return nil
}

// onRumor is the gossiper's OnRumor: called with its lock held, so it
// only queues.
func (b *Bridge) onRumor(r RumorMessage) {
	if fromHearsay.MatchString(r.Text) {
		return // another bridge's relay of a hearsay message
	}
	select {
	case b.rumors <- r:
	default:
		b.dropped.Add(1)
		b.logf("bridge: queue to #%s full, rumor %s/%d dropped", b.cfg.Room, r.Origin, r.ID)
	}
}

// HandleEvent offers a hearsay event to the bridge without blocking: a
// message delivered in the bridged room is rumored into Peerster.
func (b *Bridge) HandleEvent(ev hearsay.Event) {
	if ev.Type != hearsay.EventMessage || ev.Room != b.cfg.Room || fromPeerster.MatchString(ev.Text) {
		return
	}
	select {
	case <-b.done:
		return
	default:
	}
	select {
	case b.events <- ev:
	default:
		b.dropped.Add(1)
		b.logf("bridge: queue to Peerster full, message %s dropped", ev.ID)
	}
}

// Tap returns a channel that carries every event of in, in order, after
// handing it to offer (Bridge.HandleEvent, which never blocks): the
// hearsay peer's single event reader (the REPL) reads the returned channel
// instead of in. A send on it blocks like the node's own channel would
// fill: while the reader lags, the node's bounded channel takes the
// backlog and drops (and reports) what does not fit. The goroutine ends,
// and the returned channel closes, when in closes (the node's Shutdown);
// once stop is closed it stops forwarding and only drains in, so a reader
// that went away cannot hold it (stop may be nil for a reader that reads
// to the end).
func Tap(in <-chan hearsay.Event, offer func(hearsay.Event), stop <-chan struct{}) <-chan hearsay.Event {
	out := make(chan hearsay.Event, cap(in))
	go func() {
		defer close(out)
		forward := true
		for ev := range in {
			offer(ev)
			if !forward {
				continue
			}
			select {
			case out <- ev:
			case <-stop:
				forward = false
			}
		}
	}()
	return out
}

// run relays until Close.
func (b *Bridge) run() {
	defer b.wg.Done()
	for {
		select {
		case <-b.done:
			return
		case r := <-b.rumors:
			b.post(r)
		case ev := <-b.events:
			b.rumor(ev)
		}
	}
}

// post sends a Peerster rumor to the room.
func (b *Bridge) post(r RumorMessage) {
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	defer cancel()
	go func() { // Close cuts a post short
		select {
		case <-b.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	text := bridgeName(r.Origin) + "@peerster: " + r.Text
	if _, err := b.cfg.Chat.Send(ctx, b.cfg.Room, text); err != nil {
		b.dropped.Add(1)
		b.logf("bridge: post %s/%d to #%s: %v", r.Origin, r.ID, b.cfg.Room, err)
		return
	}
	b.toHearsay.Add(1)
}

// rumor sends a room message into Peerster.
func (b *Bridge) rumor(ev hearsay.Event) {
	text := truncate(bridgeName(ev.From)+"@hearsay: "+ev.Text, b.g.cfg.MaxTextBytes)
	if _, err := b.g.SendClient(text); err != nil {
		b.dropped.Add(1)
		b.logf("bridge: rumor %s: %v", ev.ID, err)
		return
	}
	b.toPeerster.Add(1)
}

func (b *Bridge) logf(format string, args ...any) {
	if b.cfg.Logf != nil {
		b.cfg.Logf(format, args...)
	}
}

// bridgeName makes a name one printable word, so the marker that
// attributes a message stays unambiguous.
func bridgeName(s string) string {
	s = printable(s, true)
	if s == "" {
		return "?"
	}
	return s
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := max(n-len(mark), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "") + mark
}
