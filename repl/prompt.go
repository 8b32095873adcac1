package repl

// The go-prompt adapter. go-prompt v0.2.6 cannot print while the user
// types, so the REPL makes it print for us, on its own goroutine:
//
//   - asyncParser wraps go-prompt's input parser. When lines are queued
//     it returns a private key sequence (NUL + "hsyp", which no terminal
//     sends: the parser splits real input into single keys and go-prompt
//     drops a lone NUL) instead of the next key.
//   - That sequence is bound with OptionAddASCIICodeBind. Its function runs
//     inside go-prompt's loop, so nothing races the renderer: it moves to
//     the start of the prompt, erases down (the open menu too), writes the
//     queued lines and as many newlines as the prompt's rows above the
//     cursor; go-prompt's next render draws the prompt below them.
//   - While a command runs (executor) no prompt is on screen and lines are
//     written directly. On entry the executor erases go-prompt's echo of a
//     message and writes the lines still queued, in that order and under
//     the screen's lock (termScreen.beginCommand). While the user cycles
//     suggestions with Tab the queue is held: any other key would accept
//     the selected suggestion.
//
// It also works around the library's other traps: several keys in one
// read are split; the terminal state is saved with x/term before
// prompt.New and restored in TearDown and after Run; go-prompt's os.Exit
// on SIGINT/SIGTERM/SIGQUIT is preceded by Config.OnSignal; the completer
// returns the same suggestions while the line is unchanged (go-prompt
// issue #151).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	prompt "github.com/c-bata/go-prompt"
	runewidth "github.com/mattn/go-runewidth"
	"golang.org/x/term"

	"github.com/hearsay-chat/hearsay"
)

// injectSeq is the private key sequence that makes go-prompt print.
var injectSeq = []byte{0x00, 'h', 's', 'y', 'p'}

// maxQueuedLines bounds what waits for the prompt; when full the oldest
// entry is dropped and counted, and the count is printed with the next
// flush.
const maxQueuedLines = 1000

// errNoInput tells go-prompt's reader that no key is available (it
// ignores reads that fail and polls again 10 ms later).
var errNoInput = errors.New("no input")

// signalGrace is how long an unexplained TearDown (go-prompt's exit path)
// waits for the signal to be seen, and how long the watcher lets go-prompt
// handle a signal before stopping the prompt itself.
const (
	signalGrace  = 250 * time.Millisecond
	stopDeadline = 500 * time.Millisecond
)

// termScreen queues lines while the prompt is on screen and writes them
// directly otherwise. Safe for concurrent use.
type termScreen struct {
	mu      sync.Mutex
	out     io.Writer
	direct  bool
	queue   []string
	dropped int
}

func (s *termScreen) print(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.direct {
		_, _ = io.WriteString(s.out, crlf(text))
		return
	}
	if len(s.queue) >= maxQueuedLines {
		s.queue = s.queue[1:]
		s.dropped++
	}
	s.queue = append(s.queue, text)
}

func (s *termScreen) pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) > 0
}

// take returns the queued text and empties the queue. Caller holds mu.
func (s *termScreen) takeLocked() string {
	var b strings.Builder
	if s.dropped > 0 {
		fmt.Fprintf(&b, "[%d lines dropped: output came faster than the terminal took it]\n", s.dropped)
		s.dropped = 0
	}
	for _, l := range s.queue {
		b.WriteString(l)
	}
	s.queue = s.queue[:0]
	return b.String()
}

// setDirect switches to direct writing (flushing the queue first) or back
// to queueing.
func (s *termScreen) setDirect(direct bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if direct && len(s.queue) > 0 {
		_, _ = io.WriteString(s.out, crlf(s.takeLocked()))
	}
	s.direct = direct
}

// beginCommand is setDirect(true) for the executor: under one lock it
// first writes erase (which replaces the input go-prompt just echoed, and
// so must run while the cursor is still right below that echo), then the
// lines queued since the last flush, then switches to direct writing.
// Writing the queued lines first, or letting another goroutine write a
// line between the two steps, made erase remove those lines instead of the
// echo (issue 13: incoming lines vanished when Enter was pressed as they
// arrived).
func (s *termScreen) beginCommand(erase string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if erase != "" {
		_, _ = io.WriteString(s.out, erase)
	}
	if len(s.queue) > 0 || s.dropped > 0 {
		_, _ = io.WriteString(s.out, crlf(s.takeLocked()))
	}
	s.direct = true
}

// crlf makes every line end in "\r\n" so that output is right whether or
// not the terminal translates newlines at that moment.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// asyncParser wraps go-prompt's ConsoleParser (see the file comment).
type asyncParser struct {
	inner  prompt.ConsoleParser
	fd     int         // the terminal's input, for restoring its state
	saved  *term.State // state before prompt.New
	outFd  int         // the terminal's output, for its width
	screen *termScreen
	ad     *promptAdapter

	mu       sync.Mutex // guards pending, selected, lastKey, stopSent
	pending  []byte     // bytes read but not yet handed out
	selected int        // mirror of go-prompt's selected suggestion (-1: none)
	lastKey  prompt.Key // last key handed out
	stopSent bool
	lastSize prompt.WinSize // last size read, used when the ioctl fails

	stop    atomic.Bool // the REPL asked the prompt to end
	exiting atomic.Bool // go-prompt is ending the process (OnSignal runs)
	// enterSeen is set by the Enter key binding on go-prompt's goroutine:
	// the TearDown that follows is the one before the executor.
	enterSeen atomic.Bool

	sigs     *sigWatch
	onSignal func(os.Signal)
	hookOnce sync.Once
}

var _ prompt.ConsoleParser = (*asyncParser)(nil)

func (a *asyncParser) Setup() error { return a.inner.Setup() }

// TearDown restores the terminal. go-prompt calls it before each command
// (after an Enter), when Run ends (Ctrl-D, exit checker), and on a signal
// right before os.Exit. In the last case it runs Config.OnSignal.
func (a *asyncParser) TearDown() error {
	err := a.inner.TearDown()
	if a.saved != nil {
		if rerr := term.Restore(a.fd, a.saved); rerr != nil && err == nil {
			err = fmt.Errorf("restore terminal: %w", rerr)
		}
	}
	if a.enterSeen.Swap(false) || a.stop.Load() {
		return err // before a command, or the REPL ends the prompt itself
	}
	a.mu.Lock()
	last := a.lastKey
	a.mu.Unlock()
	sig, ok := a.sigs.last()
	if !ok && last != prompt.ControlD {
		sig, ok = a.sigs.wait(signalGrace)
	}
	if ok {
		a.exiting.Store(true)
		a.hookOnce.Do(func() {
			if a.onSignal != nil {
				a.onSignal(sig)
			}
		})
	}
	return err
}

// GetWinSize returns the terminal size. go-prompt's parser panics when the
// ioctl fails (a hung-up terminal); then the last size is kept.
func (a *asyncParser) GetWinSize() (ws *prompt.WinSize) {
	defer func() {
		if recover() != nil {
			a.mu.Lock()
			last := a.lastSize
			a.mu.Unlock()
			ws = &last
		}
	}()
	ws = a.inner.GetWinSize()
	a.mu.Lock()
	a.lastSize = *ws
	a.mu.Unlock()
	return ws
}

// Read hands go-prompt one key, the print sequence, or a stop request.
// Only go-prompt's reader goroutine calls it. The inner read happens
// without holding mu: after go-prompt's TearDown the terminal is blocking
// again and that read may never return (on the signal path go-prompt does
// not stop its reader before exiting), and TearDown needs mu.
func (a *asyncParser) Read() ([]byte, error) {
	if key, ok, err := a.nextLocal(); ok || err != nil {
		return key, err
	}
	b, err := a.inner.Read()
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errNoInput
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pending = append(a.pending, b...)
	return a.splitLocked()
}

// nextLocal returns a stop request, the print sequence or a key already
// read, if there is one.
func (a *asyncParser) nextLocal() ([]byte, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stop.Load() && !a.stopSent {
		// Ctrl-D ends go-prompt on an empty line; on a non-empty one the
		// exit checker sees the stop flag after this key.
		a.stopSent = true
		a.lastKey = prompt.ControlD
		return []byte{0x04}, true, nil
	}
	if a.selected == -1 && a.screen.pending() {
		return append([]byte(nil), injectSeq...), true, nil
	}
	if len(a.pending) > 0 {
		key, err := a.splitLocked()
		return key, true, err
	}
	return nil, false, nil
}

// splitLocked hands out the first pending key. Caller holds mu.
func (a *asyncParser) splitLocked() ([]byte, error) {
	key, rest := splitKey(a.pending)
	key = append([]byte(nil), key...)
	a.pending = append(a.pending[:0], rest...)
	k := prompt.GetKey(key)
	if k == prompt.NotDefined && key[0] == 0x1b {
		return nil, errNoInput // an escape sequence go-prompt does not know: would insert garbage
	}
	a.track(k)
	return key, nil
}

// track mirrors go-prompt's CompletionManager selection (completion.go,
// handleCompletionKeyBinding) so that Read knows when Tab cycling is on.
// Caller holds mu.
func (a *asyncParser) track(k prompt.Key) {
	a.lastKey = k
	n := int(a.ad.nSuggest.Load())
	next := func() {
		a.selected++
		if a.selected >= n {
			a.selected = -1
		}
	}
	prev := func() {
		a.selected--
		if a.selected < -1 {
			a.selected = n - 1
		}
	}
	switch {
	case k == prompt.Tab || k == prompt.ControlI:
		next()
	case k == prompt.BackTab:
		prev()
	case k == prompt.Down && a.selected != -1:
		next()
	case k == prompt.Up && a.selected != -1:
		prev()
	case k == prompt.Down || k == prompt.Up:
	default:
		a.selected = -1
	}
}

// flush is the ASCIICodeBind function: it runs on go-prompt's goroutine
// between two renders and prints the queued lines above the prompt.
func (a *asyncParser) flush(buf *prompt.Buffer) {
	a.screen.mu.Lock()
	defer a.screen.mu.Unlock()
	if len(a.screen.queue) == 0 && a.screen.dropped == 0 {
		return
	}
	text := a.screen.takeLocked()
	cols := 80
	if w, _, err := term.GetSize(a.outFd); err == nil && w > 0 {
		cols = w
	}
	rows := (runewidth.StringWidth(a.ad.lastPrefix()) + runewidth.StringWidth(buf.Document().TextBeforeCursor())) / cols
	var b strings.Builder
	b.WriteString("\r")
	if rows > 0 {
		b.WriteString("\x1b[" + strconv.Itoa(rows) + "A")
	}
	b.WriteString("\x1b[J") // erase down: the prompt, its wrapped rows and the menu
	b.WriteString(crlf(text))
	b.WriteString(strings.Repeat("\n", rows)) // go-prompt moves up this many rows to redraw
	_, _ = io.WriteString(a.screen.out, b.String())
}

// sigWatch records the signals that end the process under go-prompt.
type sigWatch struct {
	ch   chan os.Signal
	done chan struct{}
	wg   sync.WaitGroup
	got  chan struct{} // closed at the first signal
	mu   sync.Mutex
	sig  os.Signal
}

func newSigWatch() *sigWatch {
	w := &sigWatch{ch: make(chan os.Signal, 4), done: make(chan struct{}), got: make(chan struct{})}
	signal.Notify(w.ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGHUP)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			select {
			case <-w.done:
				return
			case s := <-w.ch:
				w.mu.Lock()
				if w.sig == nil {
					w.sig = s
					close(w.got)
				}
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *sigWatch) last() (os.Signal, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sig, w.sig != nil
}

func (w *sigWatch) wait(d time.Duration) (os.Signal, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.got:
	case <-t.C:
	}
	return w.last()
}

func (w *sigWatch) close() {
	signal.Stop(w.ch)
	close(w.done)
	w.wg.Wait()
}

// promptAdapter holds the go-prompt side state of one runPrompt.
type promptAdapter struct {
	r *REPL

	mu       sync.Mutex
	prefix   string
	lastDoc  string
	lastSugg []prompt.Suggest
	nSuggest atomic.Int32
	// draft is the text of the last completion request, prevDraft that
	// of the one before. go-prompt clears its buffer on Ctrl-C before any
	// key binding sees it, and on that key (as on every key but Tab and
	// the arrows) it first asks for completions of an empty document
	// (CompletionManager.Reset): the line as typed is then prevDraft.
	draft, prevDraft string
}

// ctrlC runs after go-prompt has dropped the line on Ctrl-C: it says
// what happened and how to leave, since Ctrl-C does not.
func (ad *promptAdapter) ctrlC(*prompt.Buffer) {
	ad.mu.Lock()
	draft := ad.prevDraft
	ad.mu.Unlock()
	if strings.TrimSpace(draft) != "" {
		ad.r.Printf("draft discarded; to leave: /quit, or Ctrl-D on an empty line")
		return
	}
	ad.r.Printf("to leave: /quit, or Ctrl-D on an empty line")
}

// livePrefix is "[#lobby] alice> ", or "[@bob] alice> " in a
// conversation, with the activity list of targets with unread messages
// after the target: "[#ops] [3 #lobby, 1 @bob] alice> ".
func (ad *promptAdapter) livePrefix() (string, bool) {
	p := "[" + Sanitize(targetLabel(ad.r.Room())) + "] "
	if act := ad.r.act.list(); act != "" {
		p += act + " "
	}
	p += Sanitize(ad.r.cfg.Peer.Nick()) + "> "
	ad.mu.Lock()
	ad.prefix = p
	ad.mu.Unlock()
	return p, true
}

func (ad *promptAdapter) lastPrefix() string {
	ad.mu.Lock()
	defer ad.mu.Unlock()
	return ad.prefix
}

// complete wraps REPL.Complete, returning the very same suggestions while
// the line and cursor are unchanged (go-prompt #151 panics when the list
// shrinks between two Tab presses).
func (ad *promptAdapter) complete(d prompt.Document) []prompt.Suggest {
	key := strconv.Itoa(len(d.TextBeforeCursor())) + ":" + d.Text
	ad.mu.Lock()
	defer ad.mu.Unlock()
	ad.prevDraft, ad.draft = ad.draft, d.Text
	if key == ad.lastDoc && ad.lastSugg != nil {
		return ad.lastSugg
	}
	ss := ad.r.Complete(d.TextBeforeCursor())
	out := make([]prompt.Suggest, 0, len(ss))
	for _, s := range ss {
		out = append(out, prompt.Suggest{Text: s.Text, Description: s.Description})
	}
	ad.lastDoc, ad.lastSugg = key, out
	ad.nSuggest.Store(int32(len(out)))
	return out
}

// newStdinParser returns go-prompt's parser, turning its panic (no
// terminal) into an error.
func newStdinParser() (p prompt.ConsoleParser, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("open terminal: %v", v)
		}
	}()
	return prompt.NewStandardInputParser(), nil
}

func fdOf(v any) (int, bool) {
	f, ok := v.(*os.File)
	if !ok {
		return 0, false
	}
	return int(f.Fd()), true
}

// runPrompt runs the interactive prompt until /quit, Ctrl-D, ctx or a
// signal. The terminal is restored on every path.
func (r *REPL) runPrompt(ctx context.Context) (retErr error) {
	inFd, ok1 := fdOf(r.io.In)
	outFd, ok2 := fdOf(r.io.Out)
	if !ok1 || !ok2 {
		return errors.New("interactive mode needs a terminal on stdin and stdout")
	}
	saved, err := term.GetState(inFd)
	if err != nil {
		return fmt.Errorf("read terminal state: %w", err)
	}
	defer func() {
		if err := term.Restore(inFd, saved); err != nil && retErr == nil {
			retErr = fmt.Errorf("restore terminal: %w", err)
		}
	}()
	inner, err := newStdinParser()
	if err != nil {
		return err
	}
	// Commands run with cmdCtx, which the watcher below also cancels, so
	// a signal during a long command (/sleep, /ping) ends it.
	cmdCtx, cancelCmd := context.WithCancel(ctx)
	defer cancelCmd()
	ad := &promptAdapter{r: r}
	screen := &termScreen{out: r.io.Out}
	sigs := newSigWatch()
	defer sigs.close()
	ap := &asyncParser{inner: inner, fd: inFd, saved: saved, outFd: outFd, screen: screen, ad: ad,
		selected: -1, sigs: sigs, onSignal: r.cfg.OnSignal, lastSize: prompt.WinSize{Row: 24, Col: 80}}
	r.p.setSink(screen)
	defer func() {
		r.p.setSink(nil)
		screen.setDirect(true) // whatever is still queued
	}()

	var hist []string
	if r.hist != nil {
		hist = r.hist.Lines()
	}
	executor := func(line string) {
		ap.enterSeen.Store(false)
		prefix := ad.lastPrefix()
		erase := ""
		if t := strings.TrimSpace(line); t != "" && (!strings.HasPrefix(t, "/") || strings.HasPrefix(t, "//")) {
			// A message: replace the echoed input by the formatted line.
			cols := 80
			if w, _, err := term.GetSize(outFd); err == nil && w > 0 {
				cols = w
			}
			w := runewidth.StringWidth(prefix) + runewidth.StringWidth(line)
			rows := max(1, (w+cols-1)/cols)
			erase = "\x1b[" + strconv.Itoa(rows) + "A\r\x1b[J"
		}
		// Erase the echo before any queued or incoming line is written.
		screen.beginCommand(erase)
		defer screen.setDirect(false)
		if r.hist != nil {
			if err := r.hist.add(line); err != nil {
				r.p.emit(hearsay.Event{Type: hearsay.EventError, Text: err.Error()})
			}
		}
		r.p.logLine(prefix + line)
		if err := r.Exec(cmdCtx, line); errors.Is(err, ErrQuit) {
			r.quitRequested.Store(true)
		}
	}
	enterBind := func(*prompt.Buffer) { ap.enterSeen.Store(true) }
	p := prompt.New(executor, ad.complete,
		prompt.OptionParser(ap),
		prompt.OptionPrefix(""),
		prompt.OptionLivePrefix(ad.livePrefix),
		prompt.OptionHistory(hist),
		prompt.OptionMaxSuggestion(6),
		prompt.OptionAddASCIICodeBind(prompt.ASCIICodeBind{ASCIICode: injectSeq, Fn: ap.flush}),
		prompt.OptionAddKeyBind(
			prompt.KeyBind{Key: prompt.Enter, Fn: enterBind},
			prompt.KeyBind{Key: prompt.ControlJ, Fn: enterBind},
			prompt.KeyBind{Key: prompt.ControlM, Fn: enterBind},
			prompt.KeyBind{Key: prompt.ControlC, Fn: ad.ctrlC},
		),
		prompt.OptionSetExitCheckerOnInput(func(_ string, breakline bool) bool {
			if breakline {
				return r.quitRequested.Load() || ap.stop.Load()
			}
			return ap.stop.Load()
		}),
	)

	// The watcher ends the prompt when ctx ends or a signal arrives that
	// go-prompt did not act on (SIGHUP, or a signal during a command).
	runDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
		case <-sigs.got:
		case <-runDone:
			return
		}
		t := time.NewTimer(stopDeadline)
		defer t.Stop()
		select {
		case <-runDone:
			return
		case <-t.C:
		}
		if !ap.exiting.Load() {
			ap.stop.Store(true)
			cancelCmd()
		}
	}()
	p.Run()
	close(runDone)
	wg.Wait()
	if sig, ok := sigs.last(); ok {
		return fmt.Errorf("%w by %v", ErrInterrupted, sig)
	}
	if err := ctx.Err(); err != nil && !r.quitRequested.Load() {
		return err
	}
	return nil
}
