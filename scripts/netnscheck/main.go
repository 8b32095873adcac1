// Command netnscheck checks the `hearsay --json` outputs of an end-to-end
// run (scripts/netns-e2e.sh): every live peer shows every message that was
// sent exactly once, each origin's messages of a room in seq order, the
// same ID always means the same message, and in total-order rooms every
// peer shows the same sequence. Standard library only.
//
//	netnscheck -sent sent.tsv -peer p1=p1.jsonl -peer p2=p2.1.jsonl,p2.2.jsonl [-total ops]
//
// sent.tsv has one line per message the run sent: "ROOM<TAB>TEXT". A peer
// that was restarted gives the outputs of its runs in order, comma-separated;
// they are checked as one stream. It prints what it checked and exits 1
// listing every violation.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// event is the part of a --json line the checks use.
type event struct {
	Type   string `json:"type"`
	Room   string `json:"room"`
	From   string `json:"from"`
	FromID string `json:"from_id"`
	ID     string `json:"id"`
	Text   string `json:"text"`
	// Late marks a total-order room's message shown out of the room's
	// common sequence (it arrived after its place had passed, across a
	// partition): a documented limit, so it is left out of the sequence
	// comparison.
	Late bool `json:"late"`
}

// sentMsg is one message the run sent.
type sentMsg struct{ Room, Text string }

// peerOutput is the event stream of one peer (all its runs).
type peerOutput struct {
	Name   string
	Events []event
	// Runs counts the outputs concatenated into Events.
	Runs int
}

// msgKey identifies a message: IDs are unique per room.
type msgKey struct{ Room, ID string }

// report is the outcome of check.
type report struct {
	Problems []string
	Checked  int // messages checked over all peers
}

func (r *report) addf(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// maxProblems bounds the report: past it the run is clearly broken.
const maxProblems = 200

// check verifies the outputs against what was sent; total lists the rooms
// whose delivery sequence must be identical on every peer.
func check(sent []sentMsg, peers []peerOutput, total []string) report {
	var rep report
	// The same (room, id) must mean the same text and origin everywhere.
	seenText := map[msgKey]string{}
	seenBy := map[msgKey]string{}
	for _, p := range peers {
		for _, ev := range p.Events {
			if ev.Type != "message" {
				continue
			}
			k := msgKey{ev.Room, ev.ID}
			if t, ok := seenText[k]; ok && t != ev.Text {
				rep.addf("%s: message %s in #%s is %q, but %s showed %q under the same ID (a reused seq?)",
					p.Name, ev.ID, ev.Room, ev.Text, seenBy[k], t)
				continue
			}
			seenText[k], seenBy[k] = ev.Text, p.Name
			if origin, _, ok := splitID(ev.ID); !ok || (ev.FromID != "" && origin != ev.FromID) {
				rep.addf("%s: message %q has ID %q that does not name its origin %s", p.Name, ev.Text, ev.ID, ev.FromID)
			}
		}
	}
	for _, p := range peers {
		checkPeer(&rep, p, sent)
	}
	for _, room := range total {
		checkTotal(&rep, peers, room)
	}
	if len(rep.Problems) > maxProblems {
		n := len(rep.Problems) - maxProblems
		rep.Problems = append(rep.Problems[:maxProblems], fmt.Sprintf("… and %d more problems", n))
	}
	return rep
}

func checkPeer(rep *report, p peerOutput, sent []sentMsg) {
	type textKey struct{ Room, Text string }
	count := map[textKey]int{}
	ids := map[msgKey]int{}
	last := map[string]uint64{} // room + " " + origin -> last seq shown
	for _, ev := range p.Events {
		if ev.Type != "message" {
			continue
		}
		count[textKey{ev.Room, ev.Text}]++
		k := msgKey{ev.Room, ev.ID}
		ids[k]++
		if ids[k] == 2 {
			rep.addf("%s: message %s (%q) in #%s shown more than once", p.Name, ev.ID, ev.Text, ev.Room)
		}
		origin, seq, ok := splitID(ev.ID)
		if !ok {
			rep.addf("%s: message %q has a malformed ID %q", p.Name, ev.Text, ev.ID)
			continue
		}
		ok2 := ev.Room + " " + origin
		if prev, seen := last[ok2]; seen && seq <= prev && ids[k] == 1 {
			rep.addf("%s: #%s: %s/%d (%q) shown after %s/%d: not in the origin's order",
				p.Name, ev.Room, origin, seq, ev.Text, origin, prev)
		}
		if seq > last[ok2] {
			last[ok2] = seq
		}
	}
	for _, s := range sent {
		rep.Checked++
		switch n := count[textKey{s.Room, s.Text}]; {
		case n == 0:
			rep.addf("%s: never showed %q in #%s", p.Name, s.Text, s.Room)
		case n > 1:
			rep.addf("%s: showed %q in #%s %d times", p.Name, s.Text, s.Room, n)
		}
	}
}

// checkTotal compares the sequences of room on every peer: after removing
// messages a peer never showed, and those any peer showed late (outside
// the common sequence, after a partition: docs/RELIABILITY.md, Limits),
// the common messages must be in the same order everywhere.
func checkTotal(rep *report, peers []peerOutput, room string) {
	late := map[string]bool{}
	for _, p := range peers {
		for _, ev := range p.Events {
			if ev.Type == "message" && ev.Room == room && ev.Late {
				late[ev.ID] = true
			}
		}
	}
	var ref []string
	refName := ""
	for _, p := range peers {
		var seq []string
		for _, ev := range p.Events {
			if ev.Type == "message" && ev.Room == room && !late[ev.ID] {
				seq = append(seq, ev.ID)
			}
		}
		if ref == nil {
			ref, refName = seq, p.Name
			continue
		}
		a, b := common(ref, seq), common(seq, ref)
		for i := range a {
			if i >= len(b) || a[i] != b[i] {
				got := "nothing"
				if i < len(b) {
					got = b[i]
				}
				rep.addf("total-order room #%s: %s shows %s at position %d of the common sequence, %s shows %s",
					room, refName, a[i], i+1, p.Name, got)
				break
			}
		}
	}
}

// common returns the elements of a that are also in b, in a's order.
func common(a, b []string) []string {
	in := make(map[string]bool, len(b))
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if in[x] {
			out = append(out, x)
		}
	}
	return out
}

// splitID splits "origin/seq".
func splitID(id string) (string, uint64, bool) {
	origin, s, ok := strings.Cut(id, "/")
	if !ok || origin == "" {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq == 0 {
		return "", 0, false
	}
	return origin, seq, true
}

// readEvents parses one --json output; a line that is not a JSON object
// is an error (--json must print nothing else on stdout).
func readEvents(r io.Reader, name string) ([]event, error) {
	var out []event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Type == "" {
			return nil, fmt.Errorf("%s:%d: not a JSON event: %.120q", name, line, sc.Text())
		}
		out = append(out, ev)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

// readSent parses sent.tsv.
func readSent(r io.Reader) ([]sentMsg, error) {
	var out []sentMsg
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		if sc.Text() == "" {
			continue
		}
		room, text, ok := strings.Cut(sc.Text(), "\t")
		if !ok || room == "" || text == "" {
			return nil, fmt.Errorf("sent list line %d: want ROOM<TAB>TEXT, got %q", line, sc.Text())
		}
		out = append(out, sentMsg{Room: room, Text: text})
	}
	return out, sc.Err()
}

// peerFlags collects -peer NAME=FILE[,FILE…].
type peerFlags []string

func (p *peerFlags) String() string     { return strings.Join(*p, " ") }
func (p *peerFlags) Set(v string) error { *p = append(*p, v); return nil }

// listFlags collects repeated -total ROOM.
type listFlags []string

func (l *listFlags) String() string     { return strings.Join(*l, " ") }
func (l *listFlags) Set(v string) error { *l = append(*l, v); return nil }

func loadPeer(spec string) (peerOutput, error) {
	name, files, ok := strings.Cut(spec, "=")
	if !ok || name == "" || files == "" {
		return peerOutput{}, fmt.Errorf("-peer %q: want NAME=FILE[,FILE…]", spec)
	}
	p := peerOutput{Name: name}
	for _, f := range strings.Split(files, ",") {
		fh, err := os.Open(f)
		if err != nil {
			return p, fmt.Errorf("peer %s: %w", name, err)
		}
		evs, err := readEvents(fh, f)
		fh.Close()
		if err != nil {
			return p, fmt.Errorf("peer %s: %w", name, err)
		}
		p.Events = append(p.Events, evs...)
		p.Runs++
	}
	return p, nil
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("netnscheck", flag.ContinueOnError)
	sentFile := fs.String("sent", "", "file of sent messages, one ROOM<TAB>TEXT per line")
	var peerSpecs peerFlags
	var total listFlags
	fs.Var(&peerSpecs, "peer", "NAME=FILE[,FILE…]: a live peer's --json outputs, runs in order (repeat per peer)")
	fs.Var(&total, "total", "a room whose sequence must be identical on every peer (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sentFile == "" || len(peerSpecs) == 0 {
		return errors.New("usage: netnscheck -sent FILE -peer NAME=FILE[,FILE…]… [-total ROOM]")
	}
	f, err := os.Open(*sentFile)
	if err != nil {
		return err
	}
	sent, err := readSent(f)
	f.Close()
	if err != nil {
		return err
	}
	var peers []peerOutput
	for _, s := range peerSpecs {
		p, err := loadPeer(s)
		if err != nil {
			return err
		}
		peers = append(peers, p)
	}
	rep := check(sent, peers, total)
	names := make([]string, len(peers))
	for i, p := range peers {
		names[i] = fmt.Sprintf("%s (%d events, %d runs)", p.Name, len(p.Events), p.Runs)
	}
	sort.Strings(names)
	fmt.Fprintf(stdout, "checked %d sent messages on %d peers: %s\n", len(sent), len(peers), strings.Join(names, ", "))
	if len(rep.Problems) > 0 {
		for _, p := range rep.Problems {
			fmt.Fprintln(stdout, "FAIL:", p)
		}
		return fmt.Errorf("%d problems", len(rep.Problems))
	}
	fmt.Fprintln(stdout, "OK: every peer shows every message exactly once, each origin in order")
	return nil
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "netnscheck:", err)
		os.Exit(1)
	}
}
