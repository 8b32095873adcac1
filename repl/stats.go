package repl

import (
	"strconv"

	"github.com/hearsay-chat/hearsay"
)

// statLine is one line of /stats: a label and its value, formatted.
type statLine struct {
	name, value string
}

// statLines labels the peer's counters for /stats, in display order;
// members and health are the peer's member count and health score.
func statLines(s hearsay.Stats, members, health int) []statLine {
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	lines := []statLine{
		{"sent", u(s.Sent)},
		{"received (envelopes from peers)", u(s.Received)},
		{"stored (received, all rooms)", u(s.Stored)},
		{"delivered (shown, all rooms)", u(s.Delivered)},
		{"held back now (all rooms)", strconv.Itoa(s.HeldBack)},
		{"late (total order, shown out of sequence)", u(s.Late)},
		{"ordering control sent", u(s.ControlSent)},
		{"anti-entropy digests sent/received", u(s.StatusSent) + "/" + u(s.StatusReceived)},
		{"anti-entropy bytes sent", u(s.AntiEntropyBytes)},
		{"repairs sent / new from repairs", u(s.RepairSent) + "/" + u(s.Repaired)},
		{"held-back overflow (refed later)", u(s.HeldDrops)},
		{"too far ahead (not stored, repaired)", u(s.HeldDiskDrops)},
		{"for rooms not joined (dropped)", u(s.Unjoined)},
		{"rejoin attempts", u(s.Reconnects)},
		{"duplicates", u(s.Duplicates)},
		{"forged (dropped)", u(s.Forged)},
		{"invalid (dropped)", u(s.Invalid)},
		{"bad frames", u(s.BadFrames)},
		{"refused streams", u(s.Refused)},
		{"refused memberlist streams", u(s.MLRefused)},
		{"floors not honoured", u(s.BadFloors)},
		{"from non-members (dropped)", u(s.Strangers)},
		{"fault-injection drops", u(s.FaultDrops)},
		{"send-queue drops", u(s.QueueDrops)},
		{"event drops", u(s.EventDrops)},
		{"frames out", u(s.FramesOut)},
		{"batch frames out", u(s.BatchesOut)},
		{"kv updates", u(s.KVUpdates)},
		{"kv refused", u(s.KVDrops)},
		{"chat streams", strconv.Itoa(s.Streams)},
		{"members", strconv.Itoa(members)},
		{"health score", strconv.Itoa(health)},
	}
	// Direct messages, once this peer has used or seen any: a peer that
	// never did keeps the shorter table.
	if s.DirectSent+s.DirectReceived+uint64(s.DirectHeld)+s.DirectForged+s.DirectInvalid+
		s.DirectMisaddressed+s.DirectReplays+s.DirectHoldRefused+s.DirectDeferred > 0 {
		lines = append(lines,
			statLine{"direct sent/received", u(s.DirectSent) + "/" + u(s.DirectReceived)},
			statLine{"direct held for offline peers", strconv.Itoa(s.DirectHeld)},
			statLine{"direct refused to hold (quota)", u(s.DirectHoldRefused)},
			statLine{"direct deferred (receipts unacked)", u(s.DirectDeferred)},
			statLine{"direct forged/invalid (dropped)", u(s.DirectForged) + "/" + u(s.DirectInvalid)},
			statLine{"direct misaddressed/replayed (dropped)", u(s.DirectMisaddressed) + "/" + u(s.DirectReplays)},
		)
	}
	// The overlay (the broadcast tree of large groups), once this peer
	// has a neighbour or has seen overlay traffic.
	if uint64(s.OverlayNeighbors)+s.OverlayBroadcasts+s.OverlayPayloads+s.OverlayInvalid+s.OverlayDrops > 0 {
		lines = append(lines,
			statLine{"overlay neighbours", strconv.Itoa(s.OverlayNeighbors)},
			statLine{"overlay broadcasts (own, over the tree)", u(s.OverlayBroadcasts)},
			statLine{"overlay payloads received/delivered/duplicates", u(s.OverlayPayloads) + "/" + u(s.OverlayDelivered) + "/" + u(s.OverlayDuplicates)},
			statLine{"overlay relayed (rooms not joined)", u(s.OverlayRelayed)},
			statLine{"overlay ihave/graft/prune sent", u(s.OverlayIHave) + "/" + u(s.OverlayGrafts) + "/" + u(s.OverlayPrunes)},
			statLine{"overlay invalid/queue full (dropped)", u(s.OverlayInvalid) + "/" + u(s.OverlayDrops)},
		)
	}
	return lines
}
