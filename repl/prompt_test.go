package repl

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	prompt "github.com/c-bata/go-prompt"
)

// scriptedParser is an inner ConsoleParser that returns scripted reads.
type scriptedParser struct {
	reads [][]byte
}

func (p *scriptedParser) Setup() error                { return nil }
func (p *scriptedParser) TearDown() error             { return nil }
func (p *scriptedParser) GetWinSize() *prompt.WinSize { panic("no terminal") }
func (p *scriptedParser) Read() ([]byte, error) {
	if len(p.reads) == 0 {
		return nil, errors.New("EAGAIN")
	}
	b := p.reads[0]
	p.reads = p.reads[1:]
	return b, nil
}

func newTestParser(reads ...string) (*asyncParser, *bytes.Buffer) {
	in := &scriptedParser{}
	for _, r := range reads {
		in.reads = append(in.reads, []byte(r))
	}
	out := &bytes.Buffer{}
	ad := &promptAdapter{prefix: "[#lobby] alice> "}
	ap := &asyncParser{inner: in, outFd: -1, screen: &termScreen{out: out}, ad: ad, selected: -1,
		lastSize: prompt.WinSize{Row: 24, Col: 80}}
	return ap, out
}

func readAll(t *testing.T, ap *asyncParser, n int) []string {
	t.Helper()
	var got []string
	for i := 0; i < n; i++ {
		b, err := ap.Read()
		if err != nil {
			got = append(got, "ERR")
			continue
		}
		got = append(got, string(b))
	}
	return got
}

func TestAsyncParserSplitsAndDropsUnknownEscapes(t *testing.T) {
	ap, _ := newTestParser("ab\x1b[A", "\x1b[99~z")
	got := readAll(t, ap, 6)
	want := []string{"a", "b", "\x1b[A", "ERR", "z", "ERR"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("keys = %q, want %q", got, want)
	}
}

func TestAsyncParserInjectsAndHoldsWhileCycling(t *testing.T) {
	ap, _ := newTestParser("\t", "\t", "\t", "x")
	ap.ad.nSuggest.Store(2)
	ap.screen.print("line\n")
	// Nothing selected: the print sequence comes first.
	if b, _ := ap.Read(); !bytes.Equal(b, injectSeq) {
		t.Fatalf("first read = %q, want the print sequence", b)
	}
	ap.screen.takeLocked() // what flush does
	if b, _ := ap.Read(); string(b) != "\t" || ap.selected != 0 {
		t.Fatalf("read %q selected %d, want Tab selecting 0", b, ap.selected)
	}
	ap.screen.print("held\n")
	if b, _ := ap.Read(); string(b) != "\t" || ap.selected != 1 {
		t.Fatalf("read %q selected %d, want Tab selecting 1 (queue held)", b, ap.selected)
	}
	// A third Tab goes past the last suggestion: nothing selected, as in
	// go-prompt's CompletionManager; the held line may go now.
	if b, _ := ap.Read(); string(b) != "\t" || ap.selected != -1 {
		t.Fatalf("read %q selected %d, want Tab wrapping to -1", b, ap.selected)
	}
	if b, _ := ap.Read(); !bytes.Equal(b, injectSeq) {
		t.Fatalf("read %q, want the print sequence after the selection ended", b)
	}
}

func TestAsyncParserStop(t *testing.T) {
	ap, _ := newTestParser("abc")
	ap.stop.Store(true)
	if b, _ := ap.Read(); string(b) != "\x04" {
		t.Fatalf("read %q, want Ctrl-D", b)
	}
	if b, _ := ap.Read(); string(b) != "a" {
		t.Fatalf("read %q after the stop key, want input again", b)
	}
}

func TestFlushMovesAboveThePrompt(t *testing.T) {
	for _, tc := range []struct {
		name, typed string
		want        string
	}{
		{"short line", "hello", "\r\x1b[Jmsg one\r\nmsg two\r\n"},
		// 16 columns of prefix + 70 typed = 86: the cursor is on the second row.
		{"wrapped line", strings.Repeat("w", 70), "\r\x1b[1A\x1b[Jmsg one\r\nmsg two\r\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ap, out := newTestParser()
			ap.screen.print("msg one\n")
			ap.screen.print("msg two\n")
			buf := prompt.NewBuffer()
			buf.InsertText(tc.typed, false, true)
			ap.flush(buf)
			if got := out.String(); got != tc.want {
				t.Fatalf("flush wrote %q, want %q", got, tc.want)
			}
			if ap.screen.pending() {
				t.Fatal("queue not emptied")
			}
		})
	}
}

func TestScreenQueueBounded(t *testing.T) {
	s := &termScreen{out: &bytes.Buffer{}}
	for i := 0; i < maxQueuedLines+5; i++ {
		s.print("x\n")
	}
	s.mu.Lock()
	text := s.takeLocked()
	s.mu.Unlock()
	if !strings.HasPrefix(text, "[5 lines dropped") || strings.Count(text, "x\n") != maxQueuedLines {
		t.Fatalf("queue kept %d lines, notice %q", strings.Count(text, "x\n"), strings.SplitN(text, "\n", 2)[0])
	}
	s.setDirect(true)
	s.print("now\n")
	if got := s.out.(*bytes.Buffer).String(); got != "now\r\n" {
		t.Fatalf("direct write = %q", got)
	}
}
