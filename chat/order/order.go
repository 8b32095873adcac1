// Package order is hearsay's per-room ordering and deduplication logic: a
// pure, deterministic state machine in the style of etcd-io/raft. It starts
// no goroutines, reads no clock and does no I/O. The caller feeds it events
// (messages received, local sends, membership changes) and acts on what it
// returns (messages to show, control messages to sign, store and send).
//
// # Streams
//
// Every origin numbers its messages 1, 2, 3, ... (seq). Data messages and
// the control messages this package generates (acks, stamps, syncs) share
// that one stream, so every control message is stored, forwarded and repaired
// by anti-entropy exactly like chat messages. A message is first accepted in
// per-origin seq order (FIFO, duplicates dropped and counted, messages that
// arrive ahead of a gap held in a bounded reorder buffer), then the room's
// mode decides when it is delivered.
//
// # Modes
//
//   - fifo: deliver on acceptance.
//   - causal (comuniGO "vectorial"): a data message from o carries Deps, the
//     entries of the sender's delivered vector that grew since its earlier
//     messages named them (the rest is implied, since o's messages are
//     delivered in seq order), at most MaxDepsPerMessage, the surplus in
//     acks numbered just before it; deliver m (or such an ack) when
//     m.seq == delivered[o]+1 and m.Deps[p] <= delivered[p] for every p.
//   - total (comuniGO "scalar"): Lamport timestamps and acks, behind the
//     causal stage. Data carries Deps as in causal mode (the sender's
//     data, not its acks: everyone acks everything) and a message (or an
//     ack carrying deps) goes on only once they are met. Pending data is
//     ordered by (lamport, origin, seq); the head is delivered once every
//     live member p has a later message in its stream as far as it passed
//     the causal stage, i.e. (lastLamport[p], p) > (head.lamport,
//     head.origin). Because each stream is FIFO and Lamport times grow
//     along a stream, nothing from p can precede the head afterwards.
//     Receiving data from another origin makes a member emit one ack (a
//     control message with a fresh Lamport time), unless its own last
//     message is already later; one ack covers a whole batch. A member
//     declared down stops counting, so it never stalls the room. A message
//     that arrives after the delivery order has passed its place (only
//     possible from a member that was declared down, or a joiner whose
//     clock was behind) is reported as Late, never delivered out of order.
//     The Deps keep what is shown causal across a failure: without them,
//     a message whose sender had shown a failed member's message could be
//     delivered before that message came (late, so shown after it). Late
//     messages wait for their Deps too. The two sides of a partition
//     still each order their own messages (no quorum rule in this mode).
//   - sequencer (comuniGO "sequencer"): see "Sequencer and takeover".
//
// Per-origin FIFO holds in every mode. Every seq, Lamport time, epoch,
// cut and global number is at most MaxSeq (2^62): larger received values
// are invalid, a larger floor is ignored and a larger restored counter is
// clamped, so no "+ 1" ever wraps around.
//
// # Sequencer and takeover
//
// The sequencer of epoch e stamps data with global numbers in stamp
// messages (Epoch e, Global = number of Stamped[0]). It stamps every data
// message it has accepted and not yet seen stamped, in (lamport, origin,
// seq) order, so per-origin order is preserved. Members deliver in global
// order. An epoch's sequencer is sticky: it keeps the role until it is
// declared down, even if an older member joins.
//
// When the sequencer S of the current epoch e is not live (or e == 0, when
// no epoch has started yet, or S closed e itself, see "Quorum") every
// member sends once a sync message
// (Epoch e, Prev S, Cut r, Candidate C) where r is the highest seq of S's
// stream it has accepted and C the oldest live member (smallest age, then
// id) in its view; from then on it applies S's stamps only up to r. C waits
// until the live members are a majority of the voters (see "Quorum") and
// it holds a sync for epoch e addressed to itself from every live
// member (a sync addressed to an earlier candidate is stale: its sender may
// have learned a newer epoch since; members send a new sync whenever the
// candidate in their view changes) and has accepted S's stream up to the highest reported r
// (anti-entropy brings the missing part from whoever reported it). That r is
// the cut: S's stamps up to the cut are valid everywhere, later ones are
// void. The new sequencer then opens epoch e+1 with a stamp message carrying
// (Prev S, Cut), numbers from one past the highest valid global, and stamps
// everything accepted but not validly stamped. Every later stamp of the epoch
// repeats (Prev, Cut), so a member that missed the opening still learns the
// cut. Nothing is lost (a stamp some live member applied is below the cut)
// and nothing is reordered (no global is stamped twice). If the candidate
// dies before opening the epoch the next oldest does the same with the
// syncs already sent.
//
// # Quorum
//
// The voters of a sequencer room are its live members and those declared
// down through failure (MemberDown), not those gone for good (MemberLeft:
// parted, left the group, or failed long enough ago that the caller
// forgot them). A member takes the sequencer role over only when the live
// members, itself included, are a strict majority of the voters, and the
// sequencer stamps only while it has such a majority. So of the two sides
// of a partition at most one orders: in a 2 | 2 split of four members
// neither does, and the messages sent meanwhile wait (pending, shown once
// stamped after the heal); in a 3 | 1 split the three go on, taking the
// role over if the sequencer is the one alone.
//
// A sequencer that loses its majority sends a sync for its own epoch
// (its report is its whole stream) and never stamps in that epoch again:
// the epoch is closed, every member syncs as if it had failed, and a
// majority opens the next one (the sequencer itself, if it is still the
// oldest once it has its majority back). It cannot simply resume: the
// others may have taken over meanwhile, and its stamps would then compete
// with the new epoch's. A sequencer that has its majority and sees another
// member's sync for its epoch (a member that declared it down for a while
// but had no majority to take over: it applies the epoch's stamps only up
// to its report) opens the next epoch itself at once, with the cut at its
// whole stream, so every stamp it issued stays valid and that member
// learns the cut.
//
// The trade-off is availability: a member whose voters are mostly failed
// waits until the caller forgets the failed ones (chat: after
// Config.FailedVoterTimeout), so a lone survivor of a two-member room goes
// on only then, and a partition that outlasts the caller's bound lets the
// minority forget the majority and order on its own again. Total mode is
// unchanged: a failed member stops counting for acks at once.
//
// Limits, documented rather than hidden: the takeover assumes membership
// views converge (memberlist) so that one candidate acts per epoch; a
// member that was declared down while it applied stamps beyond the cut
// may have shown a different order for those messages: a sequencer shows
// its own stamps at once, so between a partition (or a crash) and its
// failure detection it may show an order the majority voids (a commit
// rule, stamps shown only once a majority holds them, would close that
// window: not built). Asymmetric views (a majority on each side, as each
// counts) can still give two sequencers of one epoch, which members count
// and the node reports as conflicts. Messages whose stamps or data were
// pruned by retention before a member joined are skipped by that member.
//
// # Bounds
//
// The reorder buffer plus the causal wait queue (causal and total modes)
// hold at most Config.MaxHeld messages. When full, a message that cannot
// be delivered at once is refused (or evicts a held message further from
// its turn); refused IDs are returned in Output.Refused and the caller
// feeds them again later from its log (Want says where each origin
// stands). A message that can be delivered at once is always accepted, so
// the room never deadlocks. In the total and sequencer modes a member may
// have at most Config.MaxInFlight of its own data messages undelivered;
// Next returns ErrBusy beyond that, which bounds every member's pending
// queue by MaxInFlight per live member.
//
// # Wiring
//
// One Machine per joined room, with the room's mode; the caller serialises
// calls. Seqs are per (room, origin) and contiguous: the Machine numbers
// ours (Next and the control messages in Output.Send) and each is stored
// (chat/msglog Append) before it is sent, so a restart (Restore) never
// reuses one. A counter shared across rooms, or one that skips numbers,
// leaves gaps that stall every member's FIFO stage and version vector.
// The envelope carries Meta's fields: origin, seq, kind, lamport, deps, and
// in sequencer rooms epoch, prev, cut, global, stamped and candidate. On
// receipt: verify, store, and Receive what the log says is new. Deliver is
// shown; Send is signed, stored and sent to the room; Late is shown flagged
// (or not); Refused is fed again later from the log, from Want on.
// MemberUp, MemberDown and MemberLeft follow the room's membership
// (ourselves included, with our age): live, failed (still a voter), gone
// for good. Stats and HeldBack feed /stats.
package order

import (
	"errors"
	"fmt"

	"github.com/hearsay-chat/hearsay"
)

// Mode is a room's ordering mode: the domain type, so that the names and
// their parsing are declared once (hearsay.ParseOrderMode).
type Mode = hearsay.OrderMode

// The ordering modes.
const (
	FIFO      = hearsay.OrderFIFO
	Causal    = hearsay.OrderCausal
	Total     = hearsay.OrderTotal
	Sequencer = hearsay.OrderSequencer
)

// Kind says what a message in an origin's stream is.
type Kind uint8

// Message kinds. Only KindData is ever delivered; the others are control
// messages this package generates and consumes.
const (
	KindData  Kind = iota + 1
	KindAck        // total mode: "my clock is past what I received"
	KindStamp      // sequencer mode: global numbers for data messages
	KindSync       // sequencer mode: report for a takeover
)

func (k Kind) String() string {
	switch k {
	case KindData:
		return "data"
	case KindAck:
		return "ack"
	case KindStamp:
		return "stamp"
	case KindSync:
		return "sync"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ID names one message: its origin and its seq in that origin's stream.
type ID struct {
	Origin string
	Seq    uint64
}

func (id ID) String() string { return fmt.Sprintf("%s:%d", id.Origin, id.Seq) }

// Meta holds the envelope fields the ordering needs. The caller carries
// them in its signed envelope unchanged.
type Meta struct {
	Origin string
	Seq    uint64 // 1, 2, ... per origin
	Kind   Kind
	// Lamport is the origin's Lamport time when it sent the message. It must
	// grow along the origin's stream; a message that does not is given
	// its predecessor's time + 1 (the same on every member), so a delivered
	// Meta may show the corrected time.
	Lamport uint64
	// Deps (causal and total data, and the acks that carry their
	// surplus): the sender's delivered vector at send time, origin ->
	// highest seq delivered, compacted (see MaxDepsPerMessage); the
	// sender itself is omitted.
	Deps map[string]uint64

	// Sequencer fields (KindStamp and KindSync).
	Epoch   uint64 // stamp: the stamping epoch; sync: the epoch being closed
	Prev    string // the sequencer of the epoch before (stamp) / being closed (sync)
	Cut     uint64 // stamp: the agreed cut of Prev's stream; sync: the reporter's highest seq of Prev's stream
	Global  uint64 // stamp: global number of Stamped[0]; delivered data: its global number
	Stamped []ID   // stamp: data messages numbered Global, Global+1, ...
	// Candidate (sync): the member the reporter expects to take over; a
	// candidate counts only syncs addressed to it, so reports made before
	// the failure it replaces never count.
	Candidate string

	// Late is set on the data of Output.Show that is late (see
	// Output.Late); it is never sent.
	Late bool
}

// ID returns the message's (origin, seq).
func (m Meta) ID() ID { return ID{m.Origin, m.Seq} }

// Errors returned by the Machine.
var (
	// ErrBusy: too many of our own messages are not yet delivered (total
	// and sequencer modes); retry after deliveries.
	ErrBusy = errors.New("too many undelivered messages of our own; wait for acks or stamps")
	// ErrInvalid wraps every validation failure of a received Meta.
	ErrInvalid = errors.New("invalid message metadata")
	// ErrExhausted: our seq or Lamport counter reached MaxSeq (only a
	// damaged log can get there: 2^62 messages are never sent).
	ErrExhausted = errors.New("sequence numbers exhausted for this room")
)

// MaxSeq bounds every seq, Lamport time, cut and global number a Machine
// takes (2^62). Received values above it are invalid, so every "+ 1" on
// them stays far from overflowing a uint64, and a hostile or damaged
// value can never make a counter wrap around to 0.
const MaxSeq uint64 = 1 << 62

// MaxDepsPerMessage is the default of Config.DepsPerMessage: it bounds
// the Deps entries the Machine puts in one of our messages (causal and
// total modes). Deps are compacted: a message names only what
// was delivered since our previous message (the rest is implied, since
// our messages are delivered in seq order); when more origins than this
// spoke since then, the surplus goes in control messages (acks carrying
// Deps) numbered just before the data message, which wait for their Deps
// like data. So a room with any number of authors keeps working.
const MaxDepsPerMessage = 256

// Config configures a Machine.
type Config struct {
	Self string // our peer ID (required)
	Mode Mode   // the room's ordering mode (required)
	// MaxHeld bounds the messages held back in the reorder buffer and the
	// causal wait queue together (see "Bounds").
	MaxHeld int
	// MaxInFlight bounds our own undelivered data messages in the total and
	// sequencer modes; Next returns ErrBusy beyond it.
	MaxInFlight int
	// MaxStampBatch bounds the IDs in one stamp message.
	MaxStampBatch int
	// MaxEntries bounds the Deps and Stamped entries accepted in a received
	// message; larger messages are rejected as invalid.
	MaxEntries int
	// DepsPerMessage bounds the Deps entries of one of our messages
	// (causal, total); the surplus goes in acks just before it (see
	// MaxDepsPerMessage). At most MaxEntries.
	DepsPerMessage int
}

// DefaultConfig returns a Config for self and mode with default bounds.
func DefaultConfig(self string, mode Mode) Config {
	return Config{
		Self:          self,
		Mode:          mode,
		MaxHeld:       4096,
		MaxInFlight:   256,
		MaxStampBatch: 256,
		MaxEntries:    4096,

		DepsPerMessage: MaxDepsPerMessage,
	}
}

func (c Config) validate() error {
	if c.Self == "" {
		return errors.New("order config: empty Self")
	}
	if c.Mode < FIFO || c.Mode > Sequencer {
		return fmt.Errorf("order config: invalid mode %d", c.Mode)
	}
	if c.MaxHeld < 1 || c.MaxInFlight < 1 || c.MaxStampBatch < 1 || c.MaxEntries < 1 || c.DepsPerMessage < 1 {
		return errors.New("order config: bounds must be positive")
	}
	if c.DepsPerMessage > c.MaxEntries {
		return fmt.Errorf("order config: %d deps per message, over MaxEntries %d", c.DepsPerMessage, c.MaxEntries)
	}
	return nil
}

func (c Config) validateMeta(m Meta) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, m.ID(), fmt.Sprintf(format, a...))
	}
	if m.Origin == "" {
		return fmt.Errorf("%w: empty origin", ErrInvalid)
	}
	if m.Seq == 0 {
		return bad("seq 0")
	}
	if m.Seq > MaxSeq || m.Lamport > MaxSeq || m.Cut > MaxSeq || m.Global > MaxSeq || m.Epoch > MaxSeq {
		return bad("counter over %d", MaxSeq)
	}
	if len(m.Deps) > c.MaxEntries || len(m.Stamped) > c.MaxEntries {
		return bad("%d deps, %d stamped: more than %d", len(m.Deps), len(m.Stamped), c.MaxEntries)
	}
	switch m.Kind {
	case KindData, KindAck:
	case KindStamp:
		if m.Epoch == 0 {
			return bad("stamp with epoch 0")
		}
		if len(m.Stamped) > 0 && m.Global == 0 {
			return bad("stamp with global 0")
		}
		if m.Global > ^uint64(0)-uint64(len(m.Stamped)) {
			return bad("global overflows")
		}
		for _, id := range m.Stamped {
			if id.Origin == "" || id.Seq == 0 || id.Seq > MaxSeq {
				return bad("stamped id %s invalid", id)
			}
		}
	case KindSync:
		if m.Candidate == "" {
			return bad("sync without candidate")
		}
	default:
		return bad("unknown kind %d", m.Kind)
	}
	for o, s := range m.Deps {
		if o == "" || s == 0 || s > MaxSeq {
			return bad("dep %q:%d invalid", o, s)
		}
	}
	return nil
}

// Output is what one call produced. The caller handles Send before showing
// Deliver if it wants the room to progress fast; the order between the two
// does not matter for correctness.
type Output struct {
	// Deliver: data messages to show now, in this order. For sequencer
	// rooms Global holds the message's global number.
	Deliver []Meta
	// Send: control messages originated by us (acks, stamps, syncs). They
	// are already applied locally; sign them, store them (before sending)
	// and send them to the room like chat messages.
	Send []Meta
	// Late: total-order data that arrived after the delivery order had
	// passed its place. They are never in Deliver; show them flagged or not
	// at all.
	Late []Meta
	// Show: Deliver and Late merged in the order the machine produced
	// them, late ones flagged Meta.Late. A caller that shows both must
	// show this list: shown Deliver first and Late after, an origin's late
	// seq 5 would appear after its seq 8 delivered in the same call.
	Show []Meta
	// Refused: messages not taken because the held-back space is full. They
	// stay in the caller's log; feed them again later.
	Refused []ID
}
