package repl

// Direct messages and the habits of IRC clients around them: /msg, /query,
// /receipts, /me, /topic; the conversation as a target like a room (the
// current target is "@bob" in a conversation, "lobby" in a room: the
// prompt shows [@bob] or [#lobby], plain text goes there, /switch and
// /history know both); the activity list of targets with unread messages;
// read receipts when a conversation's messages are shown in the active
// target.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/hearsay-chat/hearsay"
)

// Direct is what the direct-message commands need from the chat peer.
// Implementations must be safe for concurrent use.
type Direct interface {
	// SendDirect sends an end-to-end encrypted message to one peer and
	// returns its ID; it blocks until the message is stored locally.
	SendDirect(ctx context.Context, who, text string) (string, error)
	// SendDirectAction sends a /me action to one peer.
	SendDirectAction(ctx context.Context, who, text string) (string, error)
	// ResolveDirect names the peer who (nick, ID, prefix) would be: its
	// peer ID and display name.
	ResolveDirect(who string) (id, name string, err error)
	// DirectHistory returns up to limit past messages with who, oldest
	// first.
	DirectHistory(who string, limit int) ([]hearsay.Event, error)
	// Undelivered returns own direct messages not yet delivered.
	Undelivered() []hearsay.Event
	// MarkDirectRead tells the peer that the conversation with who was
	// shown (it sends read receipts unless they are off).
	MarkDirectRead(who string) error
}

// errNoDirect is returned by the direct commands when the peer has none.
var errNoDirect = errors.New("direct messages are not available in this peer")

// actionPrefix and actionSuffix mark a /me action in a room message's
// text (the CTCP ACTION convention of IRC): the room protocol carries
// text only, and a client that does not know the convention shows the
// text without the markers.
const (
	actionPrefix = "\x01ACTION "
	actionSuffix = "\x01"
)

// RoomAction returns the room message text of a /me action.
func RoomAction(text string) string { return actionPrefix + text + actionSuffix }

// ParseAction reports whether a room message's text is a /me action and
// returns the action.
func ParseAction(text string) (string, bool) {
	if len(text) > len(actionPrefix) && strings.HasPrefix(text, actionPrefix) && strings.HasSuffix(text, actionSuffix) {
		return text[len(actionPrefix) : len(text)-len(actionSuffix)], true
	}
	return "", false
}

// maxConversations bounds the conversations the REPL tracks by peer ID
// (an incoming message from a new peer opens one); beyond it the
// activity list stops counting new ones.
const maxConversations = 1024

// activity is the REPL's view of conversations and unread counts. Safe
// for concurrent use (the event pump writes, the prompt reads).
type activity struct {
	mu     sync.Mutex
	convID map[string]string // conversation target ("@bob") → peer ID
	byID   map[string]string // peer ID → target
	unread map[string]int    // target ("#lobby", "@bob") → unread messages
}

func newActivity() *activity {
	return &activity{convID: map[string]string{}, byID: map[string]string{}, unread: map[string]int{}}
}

// conversation returns the target of the conversation with peer id,
// opening one named after name when there is none.
func (a *activity) conversation(id, name string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.byID[id]; ok {
		return t
	}
	t := "@" + name
	if other, taken := a.convID[t]; (taken && other != id) || len(a.byID) >= maxConversations {
		t = "@" + id // two peers shown with one name: the ID tells them apart
	}
	if len(a.byID) < maxConversations {
		a.byID[id], a.convID[t] = t, id
	}
	return t
}

// peerOf returns the peer ID of a conversation target.
func (a *activity) peerOf(target string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id, ok := a.convID[target]
	return id, ok
}

// targets returns the open conversations, sorted.
func (a *activity) targets() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.convID))
	for t := range a.convID {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func (a *activity) add(target string) {
	a.mu.Lock()
	if _, ok := a.unread[target]; ok || len(a.unread) < maxConversations {
		a.unread[target]++
	}
	a.mu.Unlock()
}

func (a *activity) clear(target string) {
	a.mu.Lock()
	delete(a.unread, target)
	a.mu.Unlock()
}

// list is the prompt's activity list: "[3 #lobby, 1 @bob]", or "" when
// nothing is unread.
func (a *activity) list() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.unread) == 0 {
		return ""
	}
	keys := make([]string, 0, len(a.unread))
	for k := range a.unread {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", a.unread[k], Sanitize(k))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// isConversation reports whether a target is a conversation ("@bob").
func isConversation(target string) bool { return strings.HasPrefix(target, "@") }

// targetLabel is how a target is shown: "#lobby" or "@bob".
func targetLabel(target string) string {
	if isConversation(target) {
		return target
	}
	return "#" + target
}

// eventTarget returns the target an event belongs to ("" for none) and
// whether it is a message someone else wrote.
func (r *REPL) eventTarget(ev hearsay.Event) (string, bool) {
	switch ev.Type {
	case hearsay.EventMessage:
		return ev.Room, !ev.Self && ev.FromID != r.cfg.Peer.ID()
	case hearsay.EventDirect:
		if ev.Self {
			return r.act.conversation(ev.ToID, Sanitize(ev.To)), false
		}
		return r.act.conversation(ev.FromID, Sanitize(ev.From)), true
	}
	return "", false
}

// noteEvent updates the activity list for an event the pump printed, and
// sends a read receipt for a direct message shown in the active
// conversation.
func (r *REPL) noteEvent(ev hearsay.Event) {
	target, incoming := r.eventTarget(ev)
	if target == "" || !incoming {
		return
	}
	if target != r.Room() {
		r.act.add(targetLabel(target))
		return
	}
	if ev.Type == hearsay.EventDirect && r.cfg.Direct != nil {
		_ = r.cfg.Direct.MarkDirectRead(ev.FromID) // best effort: the next shown message retries
	}
}

// openConversation resolves who and makes it the current target.
func (r *REPL) openConversation(who string) (string, error) {
	d := r.cfg.Direct
	if d == nil {
		return "", errNoDirect
	}
	id, name, err := d.ResolveDirect(strings.TrimPrefix(who, "@"))
	if err != nil {
		return "", err
	}
	target := r.act.conversation(id, Sanitize(name))
	r.SetRoom(target)
	if err := d.MarkDirectRead(id); err != nil {
		return target, fmt.Errorf("mark %s read: %w", target, err)
	}
	return target, nil
}

// peerFor returns the peer a conversation target talks to.
func (r *REPL) peerFor(target string) string {
	if id, ok := r.act.peerOf(target); ok {
		return id
	}
	return strings.TrimPrefix(target, "@")
}

// sendDirect sends text (or an action) in a conversation target.
func (r *REPL) sendDirect(ctx context.Context, target, text string, action bool) error {
	d := r.cfg.Direct
	if d == nil {
		return errNoDirect
	}
	send := d.SendDirect
	if action {
		send = d.SendDirectAction
	}
	if _, err := send(ctx, r.peerFor(target), text); err != nil {
		return fmt.Errorf("message not sent to %s: %w", target, err)
	}
	return nil
}

func directCommands() []*Command {
	hasDirect := func(r *REPL) bool { return r.cfg.Direct != nil }
	cmds := []*Command{cmdMsg(), cmdQuery(), cmdReceipts()}
	for _, c := range cmds {
		c.Available = hasDirect
	}
	return append(cmds, cmdMe(), cmdTopic())
}

func cmdMsg() *Command {
	return &Command{
		Name: "msg", Aliases: []string{"m"}, Args: "NICK TEXT", MinArgs: 2, MaxArgs: -1,
		Summary: "send one end-to-end encrypted message to a peer",
		Help: "Only you and NICK can read it; if NICK is offline, a few other peers hold it,\n" +
			"sealed, until NICK is back. Its state follows it: pending, sent, delivered, read.\n" +
			"/query NICK opens a conversation that plain text then goes to.",
		Complete: completeNick,
		Run: func(ctx context.Context, r *REPL, inv *Invocation) error {
			who, text := splitFirst(inv.Rest)
			if text == "" {
				return usagef("/msg: no text")
			}
			if n := len(text); n > r.cfg.MaxMessageBytes {
				return fmt.Errorf("message not sent: it is %d bytes, the limit is %d bytes", n, r.cfg.MaxMessageBytes)
			}
			d := r.cfg.Direct
			if d == nil {
				return errNoDirect
			}
			id, name, err := d.ResolveDirect(strings.TrimPrefix(who, "@"))
			if err != nil {
				return fmt.Errorf("message not sent: %w", err)
			}
			return r.sendDirect(ctx, r.act.conversation(id, Sanitize(name)), text, false)
		},
	}
}

// splitFirst splits "bob hello there" into "bob" and "hello there".
func splitFirst(s string) (string, string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i+1:], " \t")
}

func cmdQuery() *Command {
	return &Command{
		Name: "query", Aliases: []string{"q"}, Args: "NICK", MinArgs: 1, MaxArgs: 1,
		Summary:  "open a conversation with a peer: plain text then goes to it",
		Help:     "The prompt shows [@NICK]. /switch #room goes back to a room, /part closes it.",
		Complete: completeNick,
		Run: func(_ context.Context, r *REPL, inv *Invocation) error {
			target, err := r.openConversation(inv.Args[0])
			if err != nil {
				return err
			}
			r.Printf("talking to %s (direct, end-to-end encrypted); /switch #lobby to go back", Sanitize(target))
			return nil
		},
	}
}

func cmdReceipts() *Command {
	return &Command{
		Name: "receipts", MaxArgs: 0,
		Summary: "your direct messages not delivered yet, with their state",
		Run: func(_ context.Context, r *REPL, _ *Invocation) error {
			evs := r.cfg.Direct.Undelivered()
			if len(evs) == 0 {
				r.Printf("every direct message you sent was delivered")
				return nil
			}
			var b strings.Builder
			fmt.Fprintf(&b, "%s not delivered yet:", plural(len(evs), "message"))
			for _, ev := range evs {
				fmt.Fprintf(&b, "\n  [%s] to %s (%s): %s", ev.Time.In(r.cfg.Location).Format("2006-01-02 15:04:05"),
					Sanitize(ev.To), Sanitize(ev.State), snippet(ev.Text))
			}
			r.Printf("%s", b.String())
			return nil
		},
	}
}

// snippet shortens a message for state lines and lists.
func snippet(text string) string {
	s := Sanitize(strings.ReplaceAll(text, "\n", " "))
	if r := []rune(s); len(r) > 30 {
		s = string(r[:29]) + "…"
	}
	return "\"" + s + "\""
}

func cmdMe() *Command {
	return &Command{
		Name: "me", Args: "ACTION", MinArgs: 1, MaxArgs: -1,
		Summary: "say what you do: /me waves shows \"* alice waves\"",
		Run: func(ctx context.Context, r *REPL, inv *Invocation) error {
			text := strings.TrimSpace(inv.Rest)
			target := r.Room()
			if isConversation(target) {
				return r.sendDirect(ctx, target, text, true)
			}
			return r.sendMessage(ctx, RoomAction(text))
		},
	}
}

// topicKey is the key/value entry holding a room's topic: signed by its
// writer, last writer wins, gossiped to every peer (/kv).
func topicKey(room string) string { return "topic/#" + room }

func cmdTopic() *Command {
	return &Command{
		Name: "topic", Args: "[TEXT]", MaxArgs: -1,
		Summary: "show the current room's topic, or set it",
		Help: "The topic is a signed key/value entry (topic/#ROOM, see /kv): the last one set\n" +
			"wins, every peer gets it, and /join shows it. At most 256 bytes.",
		Run: func(_ context.Context, r *REPL, inv *Invocation) error {
			room := r.Room()
			if isConversation(room) {
				return errors.New("conversations have no topic; /switch to a room first")
			}
			text := strings.TrimSpace(inv.Rest)
			if text == "" {
				if t, ok := r.cfg.Peer.KVList()[topicKey(room)]; ok && t != "" {
					r.Printf("topic of #%s: %s", room, Sanitize(t))
				} else {
					r.Printf("#%s has no topic; /topic TEXT sets one", room)
				}
				return nil
			}
			if err := r.cfg.Peer.KVSet(topicKey(room), text); err != nil {
				return fmt.Errorf("set topic of #%s: %w", room, err)
			}
			r.Printf("topic of #%s set to: %s", room, Sanitize(text))
			return nil
		},
	}
}

// showTopic prints a room's topic, if it has one (on /join).
func (r *REPL) showTopic(room string) {
	if t, ok := r.cfg.Peer.KVList()[topicKey(room)]; ok && t != "" {
		r.Printf("topic of #%s: %s", room, Sanitize(t))
	}
}

// directHistory prints a conversation's past messages (/history in it).
func (r *REPL) directHistory(target string, n int) error {
	d := r.cfg.Direct
	if d == nil {
		return errNoDirect
	}
	evs, err := d.DirectHistory(r.peerFor(target), n)
	if err != nil {
		return fmt.Errorf("history of %s: %w", target, err)
	}
	if len(evs) == 0 {
		r.Printf("no messages with %s yet", Sanitize(target))
		return nil
	}
	r.Printf("-- last %s with %s --", plural(len(evs), "message"), Sanitize(target))
	for _, ev := range evs {
		ev.Type = hearsay.EventHistory
		r.p.emit(ev)
	}
	r.Printf("-- end of history --")
	return nil
}

// Activity returns the activity list the prompt shows ("[3 #lobby, 1
// @bob]", or "" when nothing is unread). Safe for concurrent use.
func (r *REPL) Activity() string { return r.act.list() }
