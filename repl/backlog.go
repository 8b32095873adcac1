package repl

// The backlog marker. Messages that arrive through catch-up (Event.Backlog:
// after a restart or a late join) are not printed as if they were said
// now: the event pump gathers them until the catch-up pauses
// (backlogQuiet), another event arrives or backlogMax are waiting, then
// prints "-- 52 messages from while you were away --" per room, and the
// messages with history timestamps (the date when not today).

import (
	"time"

	"github.com/hearsay-chat/hearsay"
)

const (
	backlogQuiet = 150 * time.Millisecond
	backlogMax   = 1000
)

// backlog is the pump's waiting catch-up messages. Only the event pump
// uses it.
type backlog struct {
	evs   []hearsay.Event
	timer *time.Timer
}

// add queues ev and reports whether the queue is full (flush now).
func (b *backlog) add(ev hearsay.Event) bool {
	b.evs = append(b.evs, ev)
	if b.timer == nil {
		b.timer = time.NewTimer(backlogQuiet)
	} else {
		b.timer.Reset(backlogQuiet)
	}
	return len(b.evs) >= backlogMax
}

// quiet fires when the catch-up paused (nil channel when nothing waits).
func (b *backlog) quiet() <-chan time.Time {
	if b.timer == nil || len(b.evs) == 0 {
		return nil
	}
	return b.timer.C
}

func (b *backlog) stop() {
	if b.timer != nil {
		b.timer.Stop()
	}
}

// flushBacklog prints the waiting catch-up messages under their marker,
// room by room in the order the rooms first appear.
func (r *REPL) flushBacklog(b *backlog) {
	if len(b.evs) == 0 {
		return
	}
	evs := b.evs
	b.evs = nil
	var rooms []string
	byRoom := map[string][]hearsay.Event{}
	for _, ev := range evs {
		if _, ok := byRoom[ev.Room]; !ok {
			rooms = append(rooms, ev.Room)
		}
		byRoom[ev.Room] = append(byRoom[ev.Room], ev)
	}
	for _, room := range rooms {
		// In the order the node delivered them: the room's order (total,
		// sequencer, causal), which sorting by send time would break.
		list := byRoom[room]
		where := ""
		if room != r.Room() {
			where = " in #" + Sanitize(room)
		}
		r.Printf("-- %s%s from while you were away --", plural(len(list), "message"), where)
		for _, ev := range list {
			shown := ev
			if !r.cfg.JSON {
				shown.Type = hearsay.EventHistory // history timestamps
			}
			r.p.emit(shown)
			r.noteEvent(ev)
		}
	}
}
