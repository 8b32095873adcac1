package repl

// All output goes through one printer. An Event becomes either one JSON
// object per line (--json) or text lines: "[15:04:05] <alice> hello" for
// messages, "[15:04:05] * bob joined" for membership events, the bare text
// for command output. On a terminal the printer hands lines to the prompt
// adapter (which prints them above the line being typed); otherwise it
// writes them straight to the output stream. /log copies every line,
// without colour, to a file.

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	runewidth "github.com/mattn/go-runewidth"
	"golang.org/x/term"

	"github.com/hearsay-chat/hearsay"
)

// IOStreams is where the REPL reads and writes. Tests replace it with
// buffers; cmd passes the process's streams.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// StdIO returns the process's standard streams.
func StdIO() IOStreams { return IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr} }

// IsTerminal reports whether both In and Out are terminals, the condition
// for the interactive prompt.
func (s IOStreams) IsTerminal() bool {
	in, ok1 := s.In.(*os.File)
	out, ok2 := s.Out.(*os.File)
	return ok1 && ok2 && term.IsTerminal(int(in.Fd())) && term.IsTerminal(int(out.Fd()))
}

// OutIsTerminal reports whether Out is a terminal (for colours).
func (s IOStreams) OutIsTerminal() bool {
	out, ok := s.Out.(*os.File)
	return ok && term.IsTerminal(int(out.Fd()))
}

// lineSink receives formatted text (one or more lines, each ending in a
// newline) when a terminal prompt is active.
type lineSink interface {
	print(s string)
}

// printer formats events and writes them. Safe for concurrent use; each
// event is written whole.
type printer struct {
	mu     sync.Mutex
	out    io.Writer
	errOut io.Writer
	json   bool
	color  bool
	loc    *time.Location
	now    func() time.Time
	room   func() string  // the current room: messages from others show their room
	sink   lineSink       // non-nil while the terminal prompt runs
	log    io.WriteCloser // /log on FILE
	logErr error          // first write error of the log, reported once
	logNm  string
	// sentText remembers the start of the user's own direct messages by
	// ID, for their state lines; bounded by maxSentText.
	sentText map[string]string
	// ownShown marks own room messages printed (true) or printed early
	// as held back (false), by ID; bounded by maxSentText.
	ownShown map[string]bool
}

// maxSentText bounds printer.sentText (a state line of an older message
// names it without its text).
const maxSentText = 1024

func (p *printer) setSink(s lineSink) {
	p.mu.Lock()
	p.sink = s
	p.mu.Unlock()
}

// emit prints one event.
func (p *printer) emit(ev hearsay.Event) {
	if ev.Time.IsZero() {
		ev.Time = p.now()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		// hearsay.Event's JSON form is the --json schema (README.md).
		text, action := ev.Text, ev.Action
		if a, ok := ParseAction(text); ok && (ev.Type == hearsay.EventMessage || ev.Type == hearsay.EventHistory) {
			text, action = a, true
		}
		je := hearsay.Event{Type: ev.Type, Time: ev.Time, Room: Sanitize(ev.Room), From: Sanitize(ev.From),
			FromID: Sanitize(ev.FromID), ID: Sanitize(ev.ID), Text: SanitizeMultiline(text), Late: ev.Late,
			To: Sanitize(ev.To), ToID: Sanitize(ev.ToID), State: Sanitize(ev.State), Action: action, Backlog: ev.Backlog}
		b, err := json.Marshal(je)
		if err != nil { // cannot happen: strings and a time; keep the stream valid anyway
			b = []byte(`{"type":"error","text":"encode event"}`)
		}
		p.writeLocked(string(b)+"\n", string(b)+"\n", false)
		return
	}
	ev, show := p.ownLocked(ev)
	if !show {
		return
	}
	plain := p.formatLocked(ev, false)
	colored := plain
	if p.color {
		colored = p.formatLocked(ev, true)
	}
	p.writeLocked(colored, plain, ev.Type == hearsay.EventError)
}

// writeLocked writes text to the sink or the streams and plain to the log.
// Caller holds mu.
func (p *printer) writeLocked(text, plain string, isErr bool) {
	switch {
	case p.sink != nil:
		p.sink.print(text)
	case isErr && p.errOut != nil:
		_, _ = io.WriteString(p.errOut, text)
	default:
		_, _ = io.WriteString(p.out, text)
	}
	if p.log != nil {
		if _, err := io.WriteString(p.log, plain); err != nil && p.logErr == nil {
			p.logErr = err
		}
	}
}

// logLine writes a line to the log only (the echo of a typed command).
func (p *printer) logLine(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.log != nil && !p.json {
		if _, err := io.WriteString(p.log, s+"\n"); err != nil && p.logErr == nil {
			p.logErr = err
		}
	}
}

// setLog replaces the log file (nil closes it).
func (p *printer) setLog(w io.WriteCloser, name string) error {
	p.mu.Lock()
	old, oldErr := p.log, p.logErr
	p.log, p.logErr, p.logNm = w, nil, name
	p.mu.Unlock()
	var err error
	if old != nil {
		err = errors.Join(oldErr, old.Close())
	}
	return err
}

func (p *printer) logName() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logNm
}

const (
	ansiReset = "\x1b[0m"
	ansiDim   = "\x1b[2m"
)

// nickPalette holds readable foreground colours; a nick always maps to the
// same one (FNV-1a of the nick), as IRC clients do.
var nickPalette = []string{"31", "32", "33", "34", "35", "36", "91", "92", "93", "94", "95", "96"}

// NickColor returns the SGR colour code of a nick.
func NickColor(nick string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(nick))
	return nickPalette[h.Sum32()%uint32(len(nickPalette))]
}

// formatLocked renders ev as text lines, each ending in "\n".
func (p *printer) formatLocked(ev hearsay.Event, color bool) string {
	stamp := "[" + ev.Time.In(p.loc).Format("15:04:05") + "] "
	c := func(code, s string) string {
		if !color || s == "" {
			return s
		}
		return "\x1b[" + code + "m" + s + ansiReset
	}
	if color {
		stamp = ansiDim + stamp + ansiReset
	}
	from := Sanitize(ev.From)
	if from == "" {
		from = shortID(Sanitize(ev.FromID))
	}
	var head, body string
	if ev.Type == hearsay.EventDirect || (ev.Type == hearsay.EventHistory && ev.ToID != "") {
		return p.formatDirectLocked(ev, stamp, c)
	}
	if ev.Type == hearsay.EventState {
		return p.formatStateLocked(ev, stamp, c)
	}

	switch ev.Type {
	case hearsay.EventMessage, hearsay.EventHistory:
		if ev.Type == hearsay.EventHistory && !sameDay(ev.Time.In(p.loc), p.now().In(p.loc)) {
			// Past messages from another day carry their date.
			stamp = "[" + ev.Time.In(p.loc).Format("2006-01-02 15:04:05") + "] "
			if color {
				stamp = ansiDim + stamp + ansiReset
			}
		}
		head = stamp
		if room := Sanitize(ev.Room); room != "" && p.room != nil && room != p.room() {
			head += c("1", "#"+room) + " "
		}
		if a, ok := ParseAction(ev.Text); ok {
			// "* alice waves"
			head += "* " + c(NickColor(from), from) + " "
			body = SanitizeMultiline(a)
			break
		}
		head += c(NickColor(from), "<"+from+">") + " "
		if ev.Late {
			head += c("33", "(late)") + " "
		}
		body = SanitizeMultiline(ev.Text)
		if ev.Self && ev.State != "" && ev.Type == hearsay.EventMessage {
			// An own message: its state follows in state lines.
			p.rememberLocked(ev.ID, ev.Text)
			body += " " + c("2", "("+Sanitize(ev.State)+")")
		}
	case hearsay.EventJoin:
		head, body = stamp+"* ", c(NickColor(from), from)+" joined"
	case hearsay.EventLeave:
		head, body = stamp+"* ", c(NickColor(from), from)+" left"
	case hearsay.EventFailed:
		head, body = stamp+"* ", c(NickColor(from), from)+" is unreachable (failed)"
	case hearsay.EventNick:
		// From is the new display name, Text the old one (hearsay.EventNick).
		old := Sanitize(ev.Text)
		head, body = stamp+"* ", c(NickColor(old), old)+" is now known as "+c(NickColor(from), from)
	case hearsay.EventError:
		head, body = "", c("31", "error: ")+SanitizeMultiline(ev.Text)
	case hearsay.EventKV:
		head, body = stamp+c("33", "kv: "), SanitizeMultiline(ev.Text)
	case hearsay.EventSystem:
		// Command output: our own text (tables, help) or a peer's system
		// notice; printed bare, line by line.
		return indentLines("", SanitizeMultiline(ev.Text))
	default:
		head, body = stamp+"* ", SanitizeMultiline(ev.Text)
	}
	return indentLines(head, body)
}

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}

// indentLines prefixes the first line of body with head and the others
// with as many spaces as head is wide, so a multi-line message can never
// look like a line from someone else.
func indentLines(head, body string) string {
	lines := strings.Split(body, "\n")
	pad := strings.Repeat(" ", visibleWidth(head))
	var b strings.Builder
	for i, l := range lines {
		if i == 0 {
			b.WriteString(head)
		} else {
			b.WriteString(pad)
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// visibleWidth is the display width of s without its SGR sequences.
func visibleWidth(s string) int {
	return runewidth.StringWidth(Sanitize(s))
}

// shortID abbreviates a peer ID for display when no nick is known.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// sysf formats command output as a system event.
func sysf(format string, args ...any) hearsay.Event {
	return hearsay.Event{Type: hearsay.EventSystem, Text: fmt.Sprintf(format, args...)}
}

// formatDirectLocked renders a direct message (or one from a
// conversation's history): "[15:04:05] [@bob] <alice> hi (pending)"; the
// conversation tag is left out when it is the current target; an action
// reads "* alice waves". Caller holds mu.
func (p *printer) formatDirectLocked(ev hearsay.Event, stamp string, c func(code, s string) string) string {
	from := Sanitize(ev.From)
	if from == "" {
		from = shortID(Sanitize(ev.FromID))
	}
	peer := from
	if ev.Self {
		peer = Sanitize(ev.To)
		if peer == "" {
			peer = shortID(Sanitize(ev.ToID))
		}
	}
	head := stamp
	if p.room == nil || p.room() != "@"+peer {
		head += c("1", "[@"+peer+"]") + " "
	}
	if ev.Action {
		head += "* " + c(NickColor(from), from) + " "
	} else {
		head += c(NickColor(from), "<"+from+">") + " "
	}
	body := SanitizeMultiline(ev.Text)
	if ev.Self && ev.Type == hearsay.EventDirect {
		p.rememberLocked(ev.ID, ev.Text)
		if ev.State != "" {
			body += " " + c("2", "("+Sanitize(ev.State)+")")
		}
	}
	return indentLines(head, body)
}

// formatStateLocked renders a state change of an own message:
// "[15:04:05] * to bob: "hi there" delivered". Caller holds mu.
func (p *printer) formatStateLocked(ev hearsay.Event, stamp string, c func(code, s string) string) string {
	what := "message " + shortID(Sanitize(ev.ID))
	if s, ok := p.sentText[ev.ID]; ok {
		what = s
	}
	to := Sanitize(ev.To)
	state := Sanitize(ev.State)
	if to == "" && ev.Room != "" {
		// A room message: how many of the room's other members hold it.
		to = "#" + Sanitize(ev.Room)
		state += " (" + Sanitize(ev.Text) + ")"
	}
	return indentLines(stamp+"* ", "to "+to+": "+what+" "+c("2", state))
}

// rememberLocked keeps the start of an own message for its state lines.
// Caller holds mu.
func (p *printer) rememberLocked(id, text string) {
	if p.sentText == nil {
		p.sentText = make(map[string]string)
	}
	if len(p.sentText) >= maxSentText {
		clear(p.sentText)
	}
	p.sentText[id] = snippet(text)
}

// ownLocked handles the user's own room messages of rooms whose ordering
// holds them back, before formatting (text mode): the held event shows
// the line at once ("(pending)"); the message event that follows when the
// order reaches it becomes a short line ("* to #ops: "hi" in order")
// instead of the line again; a held event after its message event shows
// nothing (ok false). Caller holds mu.
func (p *printer) ownLocked(ev hearsay.Event) (hearsay.Event, bool) {
	if ev.Type != hearsay.EventHeld && (ev.Type != hearsay.EventMessage || !ev.Self) {
		return ev, true
	}
	if p.ownShown == nil || len(p.ownShown) >= maxSentText {
		p.ownShown = make(map[string]bool)
	}
	inOrder, seen := p.ownShown[ev.ID]
	if ev.Type == hearsay.EventHeld {
		if seen {
			return ev, false
		}
		p.ownShown[ev.ID] = false
		ev.Type = hearsay.EventMessage
		return ev, true
	}
	p.ownShown[ev.ID] = true
	if seen && !inOrder {
		return hearsay.Event{Type: "ordered", Time: ev.Time,
			Text: "to #" + ev.Room + ": " + snippet(ev.Text) + " in order"}, true
	}
	return ev, true
}
