package chat

// Hot origins. In tree mode an anti-entropy round compares one slice of
// the room's version vector (statusSliceEntries origins) with one
// neighbour, the next slice each round: at 200 origins a sweep takes five
// rounds, and a given origin is compared with a given neighbour far less
// often. That is the safety net for what the tree and the gap pulls
// miss, and it was slow exactly where it mattered: the last messages of a
// burst, which no successor's gap pull repairs, missed by a peer whose
// tree link broke just then (its parent's pushes stopped, and a peer
// whose neighbours all push to it hears no announcement). At 200 peers
// under 20 % loss the last five to ten messages of a run were missing at
// one or two peers 5 s after the load.
//
// So a room remembers the few origins whose messages arrived over the
// tree or by push lately, and each round in tree mode also sends the
// round's partner its status of one of them (in turn) over the range of
// that origin alone (pullRange): one vector entry, about 70 bytes. It is
// answered as a round's status (isRound): the messages we lack that were
// stored more than inFlightAge intervals ago; and the partner's own
// status of the origin when we hold some it lacks, which it answers so in
// turn, or when the repair left out some we lack, still on their way,
// which we pull if they do not come (tailpull.go).
//
// Until this stop it sent the entry's digest, as the slice's: a partner
// that differed answered with its status and we with ours before the
// repair came, four frames each lost one time in five under the bench's
// loss, where the status itself takes two.

import "time"

// maxHotOrigins bounds the origins a room remembers as hot.
const maxHotOrigins = 8

// hotWindow, in anti-entropy intervals, is how long after its last
// message an origin stays hot.
const hotWindow = 10

// hotOrigins is a room's recently active origins. Guarded by room.mu.
type hotOrigins struct {
	origins [maxHotOrigins]string
	last    [maxHotOrigins]time.Time
	next    int // where the next round's choice starts
}

// note records a message of origin arriving at now: it takes the slot of
// the origin, else of the one longest quiet.
func (h *hotOrigins) note(origin string, now time.Time) {
	oldest := 0
	for i, o := range h.origins {
		if o == origin {
			h.last[i] = now
			return
		}
		if h.last[i].Before(h.last[oldest]) {
			oldest = i
		}
	}
	h.origins[oldest], h.last[oldest] = origin, now
}

// nextHotLocked returns the next origin in turn with a message in the
// last window before now, or "" if none. Caller holds r.mu.
func (r *room) nextHotLocked(now time.Time, window time.Duration) string {
	h := &r.hot
	for k := range maxHotOrigins {
		i := (h.next + k) % maxHotOrigins
		if h.origins[i] != "" && now.Sub(h.last[i]) < window {
			h.next = i + 1
			return h.origins[i]
		}
	}
	return ""
}
