package repl

// Room commands: /join, /part, /switch, /rooms, /history, and the per-room
// part of /stats. The REPL keeps only the current room (the prompt shows
// it; plain text goes there); which rooms exist, who is in them and what
// they hold is the peer's state, read through the Rooms interface.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/hearsay-chat/hearsay"
)

const (
	// defaultHistory is how many messages /history shows without N.
	defaultHistory = 20
	// maxHistory bounds /history N.
	maxHistory = 10000
	// heldBackShown is how many held-back messages /stats lists per room.
	heldBackShown = 5
)

// errNoRooms is returned by the room commands when the peer has no rooms.
var errNoRooms = errors.New("rooms are not available in this peer")

// roomPattern is the chat protocol's rule for room names (without '#').
var roomPattern = regexp.MustCompile(`^[a-z0-9._-]{1,64}$`)

// ParseRoom turns what a user typed ("#Dev", "dev") into a room name
// without '#', lower case, and checks it against the protocol's rule.
func ParseRoom(s string) (string, error) {
	name := strings.ToLower(strings.TrimPrefix(s, "#"))
	if !roomPattern.MatchString(name) {
		return "", usagef("bad room name %q: 1-64 characters from a-z, 0-9, '.', '_', '-' (e.g. #dev)", Sanitize(s))
	}
	return name, nil
}

// ParseOrder parses an ordering mode by one of its names
// (hearsay.OrderModes, any case); "" is 0 (the room's mode or the
// default).
func ParseOrder(s string) (hearsay.OrderMode, error) {
	m := strings.ToLower(s)
	if m == "" {
		return 0, nil
	}
	for _, o := range hearsay.OrderModes() {
		if m == o.String() {
			return o, nil
		}
	}
	return 0, usagef("bad ordering mode %q: want %s", Sanitize(s), orderNames())
}

// orderNames lists the ordering modes' names for usage messages.
func orderNames() string {
	var names []string
	for _, o := range hearsay.OrderModes() {
		names = append(names, o.String())
	}
	return strings.Join(names, ", ")
}

func (r *REPL) roomsIface() (Rooms, error) {
	if r.cfg.Rooms == nil {
		return nil, errNoRooms
	}
	return r.cfg.Rooms, nil
}

// roomInfo returns the peer's view of room, if it knows the room.
func roomInfo(rs Rooms, room string) (hearsay.RoomInfo, bool) {
	for _, ri := range rs.Rooms() {
		if ri.Name == room {
			return ri, true
		}
	}
	return hearsay.RoomInfo{}, false
}

// joinedRooms returns the names of the joined rooms, sorted.
func joinedRooms(rs Rooms) []string {
	var out []string
	for _, ri := range rs.Rooms() {
		if ri.Joined {
			out = append(out, ri.Name)
		}
	}
	sort.Strings(out)
	return out
}

// roomCommands returns the room commands and /fault; each is hidden when
// the peer lacks what it needs (Config.Rooms, Config.Faults).
func roomCommands() []*Command {
	hasRooms := func(r *REPL) bool { return r.cfg.Rooms != nil }
	cmds := []*Command{cmdJoin(), cmdPart(), cmdSwitch(), cmdRooms(), cmdHistory()}
	for _, c := range cmds {
		c.Available = hasRooms
	}
	f := cmdFault()
	f.Available = func(r *REPL) bool { return r.cfg.Faults != nil }
	return append(cmds, f)
}

// joinOpts are the parsed arguments of /join.
type joinOpts struct {
	room  string
	order hearsay.OrderMode
}

// parseJoin fills joinOpts from "#room [--order MODE]" (also
// "--order=MODE", and the flag before the room).
func parseJoin(args []string) (joinOpts, error) {
	var o joinOpts
	var rooms []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--order" || a == "-o":
			if i+1 >= len(args) {
				return o, usagef("--order needs a mode: %s", orderNames())
			}
			i++
			m, err := ParseOrder(args[i])
			if err != nil {
				return o, err
			}
			o.order = m
		case strings.HasPrefix(a, "--order="):
			m, err := ParseOrder(strings.TrimPrefix(a, "--order="))
			if err != nil {
				return o, err
			}
			if m == 0 {
				return o, usagef("--order needs a mode: %s", orderNames())
			}
			o.order = m
		case strings.HasPrefix(a, "-"):
			return o, usagef("unknown option %q (only --order MODE)", Sanitize(a))
		default:
			rooms = append(rooms, a)
		}
	}
	if len(rooms) != 1 {
		return o, usagef("/join takes one room")
	}
	room, err := ParseRoom(rooms[0])
	if err != nil {
		return o, err
	}
	o.room = room
	return o, nil
}

func cmdJoin() *Command {
	return &Command{
		Name: "join", Aliases: []string{"j"}, Args: "#ROOM [--order MODE]", MinArgs: 1, MaxArgs: 3,
		Summary: "join a room (or select it if joined); messages then go there",
		Help: "MODE is the ordering, chosen by whoever creates the room and is fixed afterwards:\n" +
			"  causal     (default) a message shows only after every message its sender had seen\n" +
			"  fifo       each sender's messages in the order sent, nothing more\n" +
			"  total      every member shows the same sequence (Lamport time + acks from all)\n" +
			"  sequencer  same sequence, numbered by the oldest live member\n" +
			"Joining a room you are already in just selects it (like /switch).",
		Complete: completeJoin,
		Run: func(ctx context.Context, r *REPL, inv *Invocation) error {
			rs, err := r.roomsIface()
			if err != nil {
				return err
			}
			o, err := parseJoin(inv.Args)
			if err != nil {
				return err
			}
			if ri, ok := roomInfo(rs, o.room); ok && ri.Joined {
				if o.order != 0 && ri.Mode != 0 && o.order != ri.Mode {
					return fmt.Errorf("#%s already exists with ordering %s; the mode is fixed when a room is created", o.room, ri.Mode)
				}
				r.SetRoom(o.room)
				r.Printf("now talking in #%s (ordering %s)", o.room, dash(ri.Mode.String()))
				return nil
			}
			ctx, cancel := context.WithTimeout(ctx, r.cfg.CommandTimeout)
			defer cancel()
			ri, err := rs.JoinRoom(ctx, o.room, o.order)
			if err != nil {
				return prefixOnce("join #"+o.room, err)
			}
			r.SetRoom(o.room)
			r.Printf("joined #%s (ordering %s, %s); messages now go to #%s",
				o.room, dash(ri.Mode.String()), plural(len(ri.Members), "member"), o.room)
			r.showTopic(o.room)
			return nil
		},
	}
}

func completeJoin(r *REPL, args []string, word string) []Suggestion {
	rs := r.cfg.Rooms
	if rs == nil {
		return nil
	}
	if len(args) > 0 && (args[len(args)-1] == "--order" || args[len(args)-1] == "-o") {
		return orderSuggestions("")
	}
	if strings.HasPrefix(word, "--order=") {
		return orderSuggestions("--order=")
	}
	hasRoom, hasOrder := false, false
	for i, a := range args {
		switch {
		case a == "--order" || a == "-o":
			hasOrder = true
		case strings.HasPrefix(a, "--order="):
			hasOrder = true
		case i > 0 && (args[i-1] == "--order" || args[i-1] == "-o"):
		default:
			hasRoom = true
		}
	}
	var out []Suggestion
	if !hasRoom {
		for _, ri := range rs.Rooms() {
			d := "room, " + dash(ri.Mode.String())
			if ri.Joined {
				d += ", joined"
			}
			out = append(out, Suggestion{Text: "#" + ri.Name, Description: d})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Text < out[j].Text })
	}
	if !hasOrder && strings.HasPrefix(word, "-") {
		out = append(out, Suggestion{Text: "--order", Description: "ordering mode of a new room"})
	}
	return out
}

func orderSuggestions(prefix string) []Suggestion {
	desc := map[hearsay.OrderMode]string{
		hearsay.OrderCausal:    "default: replies after what they answer",
		hearsay.OrderFIFO:      "per-sender order only",
		hearsay.OrderTotal:     "same sequence everywhere (Lamport + acks)",
		hearsay.OrderSequencer: "same sequence everywhere (sequencer)",
	}
	out := make([]Suggestion, 0, len(hearsay.OrderModes()))
	for _, m := range hearsay.OrderModes() {
		out = append(out, Suggestion{Text: prefix + m.String(), Description: desc[m]})
	}
	return out
}

// completeJoinedRoom completes the first argument with a joined room.
func completeJoinedRoom(r *REPL, args []string, _ string) []Suggestion {
	if len(args) > 0 || r.cfg.Rooms == nil {
		return nil
	}
	return joinedRoomSuggestions(r)
}

// completeTarget completes /switch: a joined room or an open
// conversation.
func completeTarget(r *REPL, args []string, w string) []Suggestion {
	out := completeJoinedRoom(r, args, w)
	if len(args) > 0 {
		return out
	}
	cur := r.Room()
	for _, t := range r.act.targets() {
		d := "conversation"
		if t == cur {
			d = "current conversation"
		}
		out = append(out, Suggestion{Text: t, Description: d})
	}
	return out
}

func joinedRoomSuggestions(r *REPL) []Suggestion {
	var out []Suggestion
	cur := r.Room()
	for _, n := range joinedRooms(r.cfg.Rooms) {
		d := "joined room"
		if n == cur {
			d = "current room"
		}
		out = append(out, Suggestion{Text: "#" + n, Description: d})
	}
	return out
}

func cmdPart() *Command {
	return &Command{
		Name: "part", Args: "[#ROOM]", MaxArgs: 1,
		Summary:  "leave a room (default: the current one)",
		Help:     "After leaving the current room you talk in #lobby (or another room you are in).",
		Complete: completeJoinedRoom,
		Run: func(ctx context.Context, r *REPL, inv *Invocation) error {
			rs, err := r.roomsIface()
			if err != nil {
				return err
			}
			room := r.Room()
			if len(inv.Args) == 0 && isConversation(room) {
				// Close the conversation: back to the start room.
				r.SetRoom(r.cfg.Room)
				r.Printf("closed %s; now talking in #%s", Sanitize(room), r.cfg.Room)
				return nil
			}
			if len(inv.Args) == 1 {
				if room, err = ParseRoom(inv.Args[0]); err != nil {
					return err
				}
			}
			if ri, ok := roomInfo(rs, room); !ok || !ri.Joined {
				return fmt.Errorf("you are not in #%s (see /rooms)", room)
			}
			ctx, cancel := context.WithTimeout(ctx, r.cfg.CommandTimeout)
			defer cancel()
			if err := rs.PartRoom(ctx, room); err != nil {
				return prefixOnce("part #"+room, err)
			}
			msg := "left #" + room
			if room == r.Room() {
				next := r.cfg.Room // the start room, normally the lobby
				joined := joinedRooms(rs)
				if !contains(joined, next) && len(joined) > 0 {
					next = joined[0]
				}
				r.SetRoom(next)
				msg += "; now talking in #" + next
			}
			r.Printf("%s", msg)
			return nil
		},
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func cmdSwitch() *Command {
	return &Command{
		Name: "switch", Aliases: []string{"sw"}, Args: "#ROOM|@NICK", MinArgs: 1, MaxArgs: 1,
		Summary:  "select the current room (one you have joined) or conversation",
		Complete: completeTarget,
		Run: func(_ context.Context, r *REPL, inv *Invocation) error {
			if isConversation(inv.Args[0]) {
				target, err := r.openConversation(inv.Args[0])
				if err != nil {
					return err
				}
				r.Printf("now talking to %s (direct)", Sanitize(target))
				return nil
			}
			rs, err := r.roomsIface()
			if err != nil {
				return err
			}
			room, err := ParseRoom(inv.Args[0])
			if err != nil {
				return err
			}
			ri, ok := roomInfo(rs, room)
			if !ok || !ri.Joined {
				return fmt.Errorf("you are not in #%s; /join #%s first", room, room)
			}
			r.SetRoom(room)
			r.Printf("now talking in #%s (ordering %s)", room, dash(ri.Mode.String()))
			return nil
		},
	}
}

func cmdRooms() *Command {
	return &Command{
		Name: "rooms", MaxArgs: 0,
		Summary: "rooms with their ordering mode, members and message counts",
		Help: "RECEIVED counts chat messages stored here (ordering traffic excluded: see\n" +
			"/stats), DELIVERED those shown (their ordering\n" +
			"condition held), HELD those received but waiting. '*' marks the current room.",
		Run: func(_ context.Context, r *REPL, _ *Invocation) error {
			rs, err := r.roomsIface()
			if err != nil {
				return err
			}
			infos := rs.Rooms()
			if len(infos) == 0 {
				r.Printf("no rooms")
				return nil
			}
			sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
			names := r.memberNames()
			cur := r.Room()
			var b strings.Builder
			tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  ROOM\tMODE\tRECEIVED\tDELIVERED\tHELD\tMEMBERS")
			joined := 0
			for _, ri := range infos {
				mark := "  "
				if ri.Name == cur {
					mark = "* "
				}
				if ri.Joined {
					joined++
				}
				members := make([]string, 0, len(ri.Members))
				for _, id := range ri.Members {
					members = append(members, names.name(id))
				}
				sort.Strings(members)
				ms := fmt.Sprintf("%d: %s", len(members), strings.Join(members, ", "))
				if len(members) == 0 {
					ms = "0"
				}
				if !ri.Joined {
					ms += " (not joined)"
				}
				fmt.Fprintf(tw, "%s#%s\t%s\t%d\t%d\t%d\t%s\n", mark, Sanitize(ri.Name), dash(ri.Mode.String()),
					ri.Received, ri.Delivered, ri.HeldBack, ms)
			}
			_ = tw.Flush()
			r.Printf("%s, %d joined\n%s", plural(len(infos), "room"), joined, strings.TrimRight(b.String(), "\n"))
			return nil
		},
	}
}

// nameMap maps peer IDs to display names for room member lists.
type nameMap struct {
	self  string
	names map[string]string
}

func (r *REPL) memberNames() nameMap {
	nm := nameMap{self: r.cfg.Peer.ID(), names: map[string]string{}}
	for _, m := range r.cfg.Peer.Members() {
		n := Sanitize(m.DisplayName)
		if n == "" {
			n = Sanitize(m.Nick)
		}
		if n != "" {
			nm.names[m.ID] = n
		}
	}
	return nm
}

func (nm nameMap) name(id string) string {
	n, ok := nm.names[id]
	if !ok {
		n = shortID(Sanitize(id))
	}
	if id == nm.self {
		n += " (you)"
	}
	return n
}

func cmdHistory() *Command {
	return &Command{
		Name: "history", Args: "[N]", MaxArgs: 1,
		Summary:  "the last N messages of the current room (default 20)",
		Help:     "The peer keeps every room's messages on disk, so history survives restarts\n(within the retention limits).",
		Complete: completeWords("20", "50", "100"),
		Run: func(_ context.Context, r *REPL, inv *Invocation) error {
			rs, err := r.roomsIface()
			if err != nil {
				return err
			}
			n := defaultHistory
			if len(inv.Args) == 1 {
				v, err := strconv.Atoi(inv.Args[0])
				if err != nil || v < 1 || v > maxHistory {
					return usagef("bad count %q: want a number from 1 to %d", Sanitize(inv.Args[0]), maxHistory)
				}
				n = v
			}
			room := r.Room()
			if isConversation(room) {
				return r.directHistory(room, n)
			}
			evs, err := rs.History(room, n)
			if err != nil {
				return restate("history of #"+room, "history #"+room, err)
			}
			if len(evs) == 0 {
				r.Printf("no messages in #%s yet", room)
				return nil
			}
			r.Printf("-- last %s of #%s --", plural(len(evs), "message"), room)
			for _, ev := range evs {
				ev.Type = hearsay.EventHistory
				if ev.Room == "" {
					ev.Room = room
				}
				r.p.emit(ev)
			}
			r.Printf("-- end of history --")
			return nil
		},
	}
}

// roomStats returns the per-room lines of /stats: received, delivered and
// held back, and the first held-back messages of each room. Empty when the
// peer has no rooms.
func (r *REPL) roomStats() string {
	rs := r.cfg.Rooms
	if rs == nil {
		return ""
	}
	infos := rs.Rooms()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROOM\tMODE\tRECEIVED\tDELIVERED\tHELD BACK")
	var held []string
	for _, ri := range infos {
		if !ri.Joined {
			continue
		}
		fmt.Fprintf(tw, "#%s\t%s\t%d\t%d\t%d\n", Sanitize(ri.Name), dash(ri.Mode.String()), ri.Received, ri.Delivered, ri.HeldBack)
		if ri.HeldBack > 0 {
			for _, h := range rs.HeldBack(ri.Name, heldBackShown) {
				held = append(held, fmt.Sprintf("  #%s: %s", Sanitize(ri.Name), Sanitize(h)))
			}
			if ri.HeldBack > heldBackShown {
				held = append(held, fmt.Sprintf("  #%s: … and %d more", Sanitize(ri.Name), ri.HeldBack-heldBackShown))
			}
		}
	}
	_ = tw.Flush()
	out := strings.TrimRight(b.String(), "\n")
	if len(held) > 0 {
		out += "\nheld back (received, waiting for their ordering condition):\n" + strings.Join(held, "\n")
	}
	return out
}

// prefixOnce wraps err with the context prefix unless err already starts
// with it: the chat peer names the room in its own errors, and
// "join #a: join #a: …" reads as a stutter.
func prefixOnce(prefix string, err error) error {
	if strings.HasPrefix(err.Error(), prefix+":") {
		return err
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// restate is prefixOnce for a peer whose errors start with their own
// wording of the same context (theirs, such as "send to #a"): it replaces
// that with prefix, so "message not sent to #a: send to #a: …" reads
// "message not sent to #a: …". The result still unwraps to err.
func restate(prefix, theirs string, err error) error {
	if rest, ok := strings.CutPrefix(err.Error(), theirs+": "); ok {
		return &restated{msg: prefix + ": " + rest, err: err}
	}
	return prefixOnce(prefix, err)
}

// restated is an error shown with another wording of its context.
type restated struct {
	msg string
	err error
}

func (e *restated) Error() string { return e.msg }
func (e *restated) Unwrap() error { return e.err }

// plural returns "1 room", "2 rooms".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
