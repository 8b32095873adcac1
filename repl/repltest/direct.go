package repltest

import (
	"context"
	"fmt"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/repl"
)

var _ repl.Direct = (*Peer)(nil)

// directFake is the fake peer's direct messages: what was sent and shown,
// and the conversations marked read. Guarded by Peer.mu.
type directFake struct {
	msgs  []hearsay.Event // own and received direct messages, in order
	reads []string        // peer IDs given to MarkDirectRead
	seq   int
}

// resolveLocked finds a member by nick or ID. Caller holds p.mu.
func (p *Peer) resolveLocked(who string) (hearsay.Member, error) {
	for _, m := range p.members {
		if m.ID != p.id && (m.Nick == who || m.ID == who) {
			return m, nil
		}
	}
	return hearsay.Member{}, fmt.Errorf("unknown peer: nobody is called %q", who)
}

// ResolveDirect implements repl.Direct.
func (p *Peer) ResolveDirect(who string) (string, string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, err := p.resolveLocked(who)
	return m.ID, m.Nick, err
}

// SendDirect implements repl.Direct: it records the message as pending
// and, with SetEmitOwn, emits it.
func (p *Peer) SendDirect(_ context.Context, who, text string) (string, error) {
	return p.sendDirect(who, text, false)
}

// SendDirectAction implements repl.Direct.
func (p *Peer) SendDirectAction(_ context.Context, who, text string) (string, error) {
	return p.sendDirect(who, text, true)
}

func (p *Peer) sendDirect(who, text string, action bool) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sendErr != nil {
		return "", p.sendErr
	}
	m, err := p.resolveLocked(who)
	if err != nil {
		return "", err
	}
	p.direct.seq++
	ev := hearsay.Event{Type: hearsay.EventDirect, Time: p.now(), From: p.nick, FromID: p.id, To: m.Nick, ToID: m.ID,
		ID: fmt.Sprintf("dm%d", p.direct.seq), Text: text, Self: true, State: hearsay.StatePending, Action: action}
	p.direct.msgs = append(p.direct.msgs, ev)
	if p.emitOwn {
		select {
		case p.events <- ev:
		default:
		}
	}
	return ev.ID, nil
}

// ReceiveDirect records and emits a direct message from peer fromID.
func (p *Peer) ReceiveDirect(fromID, from, text string) {
	p.mu.Lock()
	p.direct.seq++
	ev := hearsay.Event{Type: hearsay.EventDirect, Time: p.now(), From: from, FromID: fromID, To: p.nick, ToID: p.id,
		ID: fmt.Sprintf("dm%d", p.direct.seq), Text: text}
	p.direct.msgs = append(p.direct.msgs, ev)
	p.mu.Unlock()
	p.Emit(ev)
}

// SetDirectState moves the state of the last own direct message and
// emits a state event; it reports false when there is none.
func (p *Peer) SetDirectState(state string) bool {
	p.mu.Lock()
	i := len(p.direct.msgs) - 1
	for ; i >= 0 && !p.direct.msgs[i].Self; i-- {
	}
	if i < 0 {
		p.mu.Unlock()
		return false
	}
	p.direct.msgs[i].State = state
	m := p.direct.msgs[i]
	p.mu.Unlock()
	p.Emit(hearsay.Event{Type: hearsay.EventState, Time: p.now(), ID: m.ID, To: m.To, ToID: m.ToID, State: state, Text: state})
	return true
}

// DirectHistory implements repl.Direct.
func (p *Peer) DirectHistory(who string, limit int) ([]hearsay.Event, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, err := p.resolveLocked(who)
	if err != nil {
		return nil, err
	}
	var out []hearsay.Event
	for _, ev := range p.direct.msgs {
		if ev.ToID == m.ID || ev.FromID == m.ID {
			out = append(out, ev)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}

// Undelivered implements repl.Direct.
func (p *Peer) Undelivered() []hearsay.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []hearsay.Event
	for _, ev := range p.direct.msgs {
		if ev.Self && (ev.State == hearsay.StatePending || ev.State == hearsay.StateSent) {
			out = append(out, ev)
		}
	}
	return out
}

// MarkDirectRead implements repl.Direct: it records who.
func (p *Peer) MarkDirectRead(who string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.direct.reads = append(p.direct.reads, who)
	return nil
}

// DirectReads returns what MarkDirectRead was given, in order.
func (p *Peer) DirectReads() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.direct.reads...)
}

// DirectMessages returns the direct messages so far.
func (p *Peer) DirectMessages() []hearsay.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]hearsay.Event(nil), p.direct.msgs...)
}
