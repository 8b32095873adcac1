package hearsay

import "time"

// Stats are the node's counters since Start. Every frame or message that is
// refused is counted in exactly one of the drop counters.
type Stats struct {
	Sent       uint64 `json:"sent"`        // messages this node originated
	Received   uint64 `json:"received"`    // envelopes received from peers (before checks)
	Delivered  uint64 `json:"delivered"`   // messages whose ordering condition held (shown; own included)
	Duplicates uint64 `json:"duplicates"`  // valid envelopes already seen, dropped
	Forged     uint64 `json:"forged"`      // envelopes with a bad signature or key, dropped
	Invalid    uint64 `json:"invalid"`     // envelopes breaking a limit or rule, dropped
	BadFrames  uint64 `json:"bad_frames"`  // undecodable or unexpected frames and packets, bad node meta
	Refused    uint64 `json:"refused"`     // inbound chat streams refused at the handshake
	MLRefused  uint64 `json:"ml_refused"`  // memberlist streams the port guard refused or cut (bounds, announced sizes)
	QueueDrops uint64 `json:"queue_drops"` // frames dropped because a peer's send queue was full
	FaultDrops uint64 `json:"fault_drops"` // frames and packets dropped by fault injection (tests only)
	EventDrops uint64 `json:"event_drops"` // events dropped because Events was full
	FramesOut  uint64 `json:"frames_out"`  // frames written to peer streams
	BatchesOut uint64 `json:"batches_out"` // of FramesOut, Batch frames carrying several envelopes
	KVUpdates  uint64 `json:"kv_updates"`  // key/value changes applied (local and remote)
	KVDrops    uint64 `json:"kv_drops"`    // key/value entries refused (invalid, forged, full)
	Streams    int    `json:"streams"`     // chat links currently established (one connection per pair of peers)
	// KeptLinks counts the links this node keeps open (to every live
	// member in a small group, to its overlay neighbours in a large one;
	// others are made on demand and close when idle); KeptDown those of
	// them not established right now.
	KeptLinks int `json:"kept_links"`
	KeptDown  int `json:"kept_down"`
	// LinkSwaps counts chat connections retired because the pair had
	// another: both peers dialed at once (each keeps the one dialed by
	// the smaller peer ID) or one redialed.
	LinkSwaps uint64 `json:"link_swaps"`
	// ChatConns is the number of open chat connections the transport
	// counts, dialed and accepted (retired ones until they close); 0 when
	// the transport does not count them.
	ChatConns int `json:"chat_conns"`
	// LinkDials counts the chat connections this node dialed, each a TLS
	// handshake (about 3.8 KB on the wire with both ends' shares).
	LinkDials uint64 `json:"link_dials"`
	// FrameBytes counts the bytes this node's links wrote, by frame kind
	// ("envelope", "room_set", "overlay_ihave"…: chat/framebytes.go):
	// each frame's protobuf encoding, its 4-byte length prefix and its
	// TLS records' overhead. Kinds with no bytes are left out; nil when
	// none were written.
	FrameBytes map[string]uint64 `json:"frame_bytes,omitempty"`

	// Stored counts messages stored in the log since Start: "received" in
	// the ordering sense (data and control messages, own included).
	Stored uint64 `json:"stored"`
	// HeldBack is how many stored messages wait for their ordering
	// condition now, over all joined rooms (per room: Rooms()).
	HeldBack int `json:"held_back"`
	// ControlSent counts ordering control messages (acks, stamps, syncs)
	// this node originated.
	ControlSent uint64 `json:"control_sent"`
	// Late counts total-order messages shown out of the common sequence.
	Late uint64 `json:"late"`
	// Unjoined counts valid envelopes for rooms this node has not joined
	// (dropped: a peer had a stale view of our rooms).
	Unjoined uint64 `json:"unjoined"`
	// HeldDrops counts messages the ordering could not hold (held-back
	// space full); they stay in the log and are fed again later.
	HeldDrops uint64 `json:"held_drops"`
	// HeldDiskDrops counts valid messages not stored because they were
	// too far ahead of their origin's contiguous seqs (chat
	// Config.MaxHeldAhead); anti-entropy fetches them again later.
	HeldDiskDrops uint64 `json:"held_disk_drops"`
	// StatusSent and StatusReceived count anti-entropy digests.
	StatusSent     uint64 `json:"status_sent"`
	StatusReceived uint64 `json:"status_received"`
	// RepairSent counts messages this node sent in repairs; Repaired the
	// new ones it stored from repairs.
	RepairSent uint64 `json:"repair_sent"`
	Repaired   uint64 `json:"repaired"`
	// AntiEntropyBytes counts the bytes of status, room set and room
	// set digest frames the links wrote (their encodings, framing
	// excluded): the cost of anti-entropy when nothing is missing.
	AntiEntropyBytes uint64 `json:"anti_entropy_bytes"`
	// Reconnects counts addresses the peer's discovery agent joined again
	// because they were not live members (failed members, registered
	// contacts): package discovery owns rejoining, so chat.Node leaves it
	// zero and cmd/hearsay fills it from the agent.
	Reconnects uint64 `json:"reconnects"`
	// Forwarded counts messages this node forwarded on first receipt
	// (rooms above the fan-out threshold).
	Forwarded uint64 `json:"forwarded"`
	// GapPulls counts statuses sent at once to the origin (or the sender)
	// of a message that showed a gap in its origin's seqs, instead of
	// waiting for the next anti-entropy round.
	GapPulls uint64 `json:"gap_pulls"`
	// TailPulls counts pulls of an origin's last messages that a peer's
	// status showed this node lacked and that had not come half an
	// anti-entropy interval later (chat/tailpull.go).
	TailPulls uint64 `json:"tail_pulls"`
	// BadFloors counts retention floors refused or cut short because no
	// signed envelope backs them (or they named this node's own stream).
	BadFloors uint64 `json:"bad_floors"`
	// Strangers counts envelopes dropped because their origin is not and
	// never was a member of the group seen by this node.
	Strangers uint64 `json:"strangers"`

	// Direct messages (chat/direct.go): DirectSent counts those this node
	// wrote, DirectReceived the new ones it accepted as their recipient,
	// DirectHeld the ones it holds for offline recipients now.
	DirectSent     uint64 `json:"direct_sent"`
	DirectReceived uint64 `json:"direct_received"`
	DirectHeld     int    `json:"direct_held"`
	// DirectForged counts direct messages, receipts and encryption keys
	// that did not decrypt or verify; DirectInvalid those breaking a rule
	// (size, form, unknown origin); DirectMisaddressed those for another
	// peer or from a peer they do not concern; DirectReplays copies of a
	// message, receipt or ack already accepted (resends after a lost or
	// slow ack, copies from several holders, replays).
	DirectForged       uint64 `json:"direct_forged"`
	DirectInvalid      uint64 `json:"direct_invalid"`
	DirectMisaddressed uint64 `json:"direct_misaddressed"`
	DirectReplays      uint64 `json:"direct_replays"`
	// DirectHoldRefused counts messages this node refused to hold (a
	// quota was full).
	DirectHoldRefused uint64 `json:"direct_hold_refused"`
	// DirectDeferred counts direct messages answered "not now" because
	// their sender had not acked the receipts of earlier ones
	// (chat.DirectConfig.MaxReceiptsPerSender).
	DirectDeferred uint64 `json:"direct_deferred"`

	// The overlay (chat/overlaydrv.go: the broadcast tree large groups use
	// for room messages). OverlayNeighbors is the active view's size now;
	// OverlayBroadcasts counts our messages sent over the tree instead of
	// pushed to each member; OverlayPayloads the broadcast payloads
	// received (copies included), OverlayDelivered the first copies,
	// OverlayDuplicates the further copies (each prunes a tree link);
	// OverlayRelayed the first copies of rooms this node has not joined
	// (passed on, never stored); OverlayIHave and OverlayGrafts the
	// announcements and grafts sent, OverlayPrunes the prunes sent;
	// OverlayInvalid the overlay frames dropped by a check (a bound, a
	// peer that is not a member, a payload that is not a valid signed
	// envelope: never relayed); OverlayDrops the frames dropped because
	// one of the overlay's input queues was full. OverlayGraftTimer is
	// how long a message announced now would wait for the tree before
	// its first graft (it adapts to how late the tree's payloads come:
	// chat/overlay/graft.go). OverlayGraftRefused counts the message IDs
	// of grafts received and not answered though their payloads were
	// cached (never announced to the grafting neighbour, or answered
	// often enough already: overlay.Stats.GraftRefused).
	OverlayNeighbors    int           `json:"overlay_neighbors"`
	OverlayGraftTimer   time.Duration `json:"overlay_graft_timer_ns"`
	OverlayBroadcasts   uint64        `json:"overlay_broadcasts"`
	OverlayPayloads     uint64        `json:"overlay_payloads"`
	OverlayDelivered    uint64        `json:"overlay_delivered"`
	OverlayDuplicates   uint64        `json:"overlay_duplicates"`
	OverlayRelayed      uint64        `json:"overlay_relayed"`
	OverlayIHave        uint64        `json:"overlay_ihave"`
	OverlayGrafts       uint64        `json:"overlay_grafts"`
	OverlayGraftRefused uint64        `json:"overlay_graft_refused"`
	OverlayPrunes       uint64        `json:"overlay_prunes"`
	OverlayInvalid      uint64        `json:"overlay_invalid"`
	OverlayDrops        uint64        `json:"overlay_drops"`
}
