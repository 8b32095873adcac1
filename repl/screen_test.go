package repl_test

// Pseudo-terminal screen tests: the replsmoke program (the REPL with a
// fake peer) runs in a pty of 80x24; its output feeds a vt10x virtual
// terminal; keys are written one per write; the tests poll the screen
// with a deadline.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/hinshun/vt10x"
	"golang.org/x/sys/unix"
)

const (
	screenCols  = 80
	screenRows  = 24
	promptText  = "[#lobby] alice> "
	promptEmpty = "[#lobby] alice>" // the empty prompt row, trailing blank trimmed
)

var smokeBin string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "replsmoke")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "replsmoke")
		out, err := exec.Command("go", "build", "-o", bin, "./internal/replsmoke").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build replsmoke (screen tests skipped): %v\n%s", err, out)
		} else {
			smokeBin = bin
		}
		return m.Run()
	}()
	os.Exit(code)
}

// screen is one replsmoke process in a pty.
type screen struct {
	t      testing.TB
	vt     vt10x.Terminal
	ptmx   *os.File
	tty    *os.File
	cmd    *exec.Cmd
	copied chan struct{} // closed when the pty output ends
	exited chan struct{} // closed when the process ended
	mu     sync.Mutex
	err    error // process exit error
}

func startScreen(t testing.TB, args ...string) *screen {
	t.Helper()
	return startScreenRows(t, screenRows, args...)
}

// startScreenRows is startScreen with a terminal of the given height (the
// virtual terminal keeps no scrollback: a tall one keeps every line).
func startScreenRows(t testing.TB, height int, args ...string) *screen {
	t.Helper()
	if smokeBin == "" {
		t.Skip("replsmoke could not be built")
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: uint16(height), Cols: screenCols}); err != nil {
		t.Fatalf("set pty size: %v", err)
	}
	cmd := exec.Command(smokeBin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.Env = append(os.Environ(), "TERM=xterm")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start replsmoke: %v", err)
	}
	s := &screen{t: t, vt: vt10x.New(vt10x.WithSize(screenCols, height)), ptmx: ptmx, tty: tty, cmd: cmd,
		copied: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(s.copied)
		buf := make([]byte, 4096)
		var carry []byte
		for {
			n, err := ptmx.Read(buf)
			if n > 0 {
				data := append(carry, buf[:n]...)
				w, _ := s.vt.Write(data)
				carry = append([]byte(nil), data[w:]...)
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = cmd.Process.Kill()
			<-s.exited
		}
		_ = ptmx.Close()
		_ = tty.Close()
		<-s.copied
	})
	s.waitFor("the prompt", func(rows []string) bool { return lastRow(rows) == promptEmpty })
	return s
}

// rows returns the screen rows without trailing blanks.
func (s *screen) rows() []string {
	lines := strings.Split(strings.TrimSuffix(s.vt.String(), "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(strings.ReplaceAll(l, "\x00", " "), " ")
	}
	return lines
}

func (s *screen) dump() string {
	var b strings.Builder
	for i, r := range s.rows() {
		fmt.Fprintf(&b, "%2d|%s\n", i, r)
	}
	return b.String()
}

// waitFor polls the screen until cond holds, failing after 10 s.
func (s *screen) waitFor(what string, cond func(rows []string) bool) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if cond(s.rows()) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s; screen:\n%s", what, s.dump())
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

// key writes one key.
func (s *screen) key(k string) {
	s.t.Helper()
	if _, err := s.ptmx.Write([]byte(k)); err != nil {
		s.t.Fatalf("write key %q: %v", k, err)
	}
}

// typeText types text one character per write, waiting after each for the
// prompt row to show it.
func (s *screen) typeText(before, text string) {
	s.t.Helper()
	typed := before
	for _, r := range text {
		s.key(string(r))
		typed += string(r)
		want := strings.TrimRight(promptText+typed, " ")
		s.waitFor(fmt.Sprintf("typed %q", typed), func(rows []string) bool { return strings.Contains(joinWrapped(rows), want) })
	}
}

// waitReady waits until the prompt is on screen and the terminal is in
// raw mode again. After a command go-prompt draws the prompt before it
// switches back to raw mode; a key sent in between is handled by the
// cooked line discipline (Ctrl-D would become an end-of-file and vanish).
func (s *screen) waitReady() {
	s.t.Helper()
	s.waitFor("the prompt in raw mode", func(rows []string) bool {
		cooked, err := s.termCooked()
		return err == nil && !cooked && rowIndex(rows, promptEmpty) >= 0
	})
}

// waitExit waits for the process to end and returns its exit error.
func (s *screen) waitExit() error {
	s.t.Helper()
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.t.Fatalf("replsmoke did not exit; screen:\n%s", s.dump())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *screen) signal(sig os.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v: %v", sig, err)
	}
}

// termCooked reports whether the terminal echoes and is canonical again.
func (s *screen) termCooked() (bool, error) {
	tio, err := unix.IoctlGetTermios(int(s.tty.Fd()), unix.TCGETS)
	if err != nil {
		return false, err
	}
	return tio.Lflag&unix.ECHO != 0 && tio.Lflag&unix.ICANON != 0, nil
}

func lastRow(rows []string) string {
	for i := len(rows) - 1; i >= 0; i-- {
		if rows[i] != "" {
			return rows[i]
		}
	}
	return ""
}

func lastRowIndex(rows []string) int {
	for i := len(rows) - 1; i >= 0; i-- {
		if rows[i] != "" {
			return i
		}
	}
	return -1
}

// joinWrapped joins rows that are full (wrapped input) with the next one.
func joinWrapped(rows []string) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r)
		if len([]rune(r)) < screenCols {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func countPrompts(rows []string) int {
	n := 0
	for _, r := range rows {
		n += strings.Count(r, promptEmpty)
	}
	return n
}

func rowIndex(rows []string, sub string) int {
	for i, r := range rows {
		if strings.Contains(r, sub) {
			return i
		}
	}
	return -1
}

func TestScreenIncomingMessageAboveHalfTypedLine(t *testing.T) {
	s := startScreen(t)
	s.typeText("", "hello wor")
	start := time.Now()
	s.signal(syscall.SIGUSR1)
	// Wait for the settled screen; a naive implementation never gets there
	// (its message ends up after the typed text).
	s.waitFor("the incoming message above the prompt", func(rows []string) bool {
		return rowIndex(rows, "<bob> incoming message 1") >= 0 && lastRow(rows) == promptText+"hello wor"
	})
	t.Logf("incoming message on screen %v after the signal (10 ms polling)", time.Since(start).Round(time.Millisecond))
	rows := s.rows()
	if got := countPrompts(rows); got != 1 {
		t.Fatalf("got %d prompts on screen, want 1:\n%s", got, s.dump())
	}
	if got, want := lastRow(rows), promptText+"hello wor"; got != want {
		t.Fatalf("last row = %q, want %q:\n%s", got, want, s.dump())
	}
	if msg, p := rowIndex(rows, "<bob> incoming message 1"), lastRowIndex(rows); msg >= p {
		t.Fatalf("message on row %d is not above the prompt on row %d:\n%s", msg, p, s.dump())
	}
	// The line is still editable: finish it and send it.
	s.typeText("hello wor", "ld")
	s.key("\r")
	s.waitFor("the own message", func(rows []string) bool { return rowIndex(rows, "<alice> hello world") >= 0 })
	s.waitFor("an empty prompt", func(rows []string) bool { return lastRow(rows) == promptEmpty })
	rows = s.rows()
	if got := countPrompts(rows); got != 1 {
		t.Fatalf("got %d prompts after sending, want 1 (the typed line is replaced by the message):\n%s", got, s.dump())
	}
	s.waitReady()
	s.typeText("", "/quit")
	s.key("\r")
	if err := s.waitExit(); err != nil {
		t.Fatalf("exit: %v\n%s", err, s.dump())
	}
}

func TestScreenIncomingMessageWithWrappedInputAndMenu(t *testing.T) {
	s := startScreen(t)
	long := strings.Repeat("abcdefghij", 8) + "klmno" // 85 characters: wraps at 80 columns
	s.typeText("", long)
	s.signal(syscall.SIGUSR1)
	s.waitFor("the first message above the wrapped input", func(rows []string) bool {
		return rowIndex(rows, "<bob> incoming message 1") >= 0 &&
			strings.HasSuffix(strings.TrimRight(joinWrapped(rows), "\n"), "\n"+promptText+long)
	})
	rows := s.rows()
	if got := countPrompts(rows); got != 1 {
		t.Fatalf("got %d prompts, want 1:\n%s", got, s.dump())
	}
	if !strings.HasSuffix(strings.TrimRight(joinWrapped(rows), "\n"), "\n"+promptText+long) {
		t.Fatalf("the wrapped input is not the last thing on screen:\n%s", s.dump())
	}
	if msg, p := rowIndex(rows, "<bob> incoming message 1"), rowIndex(rows, promptText); msg >= p {
		t.Fatalf("message row %d not above prompt row %d:\n%s", msg, p, s.dump())
	}
	// Clear the line (Ctrl-U) and open the completion menu with "/m".
	s.key("\x15")
	s.waitFor("an empty prompt", func(rows []string) bool { return lastRow(rows) == promptEmpty })
	s.typeText("", "/m")
	s.waitFor("the menu", func(rows []string) bool { return rowIndex(rows, "/members") > rowIndex(rows, promptText) })
	s.signal(syscall.SIGUSR1)
	s.waitFor("the second message, the prompt and the menu below it", func(rows []string) bool {
		p := rowIndex(rows, promptText)
		return rowIndex(rows, "<bob> incoming message 2") >= 0 && p >= 0 && rows[p] == promptText+"/m" &&
			rowIndex(rows, "/members") > p
	})
	rows = s.rows()
	if got := countPrompts(rows); got != 1 {
		t.Fatalf("got %d prompts with the menu open, want 1:\n%s", got, s.dump())
	}
	if p := rowIndex(rows, promptText); rows[p] != promptText+"/m" {
		t.Fatalf("prompt row = %q, want %q:\n%s", rows[p], promptText+"/m", s.dump())
	}
	if m1, m2, p := rowIndex(rows, "incoming message 1"), rowIndex(rows, "incoming message 2"), rowIndex(rows, promptText); !(m1 < m2 && m2 < p) {
		t.Fatalf("messages (rows %d, %d) not in order above the prompt (row %d):\n%s", m1, m2, p, s.dump())
	}
	s.key("\x15")
	s.typeText("", "/quit")
	s.key("\r")
	if err := s.waitExit(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

func TestScreenPasteIsSplitIntoKeys(t *testing.T) {
	s := startScreen(t)
	// One write with several keys, as a paste or fast typing delivers them.
	s.key("/echo pasted in one write\r/echo and a second line\r")
	s.waitFor("both commands' output", func(rows []string) bool {
		return rowIndex(rows, "pasted in one write") < rowIndex(rows, "and a second line") &&
			strings.Contains(strings.Join(rows, "\n"), "\npasted in one write\n") &&
			strings.Contains(strings.Join(rows, "\n"), "\nand a second line\n")
	})
	s.waitReady()
	s.key("\x04")
	if err := s.waitExit(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

func TestScreenTabCompletion(t *testing.T) {
	s := startScreen(t)
	s.typeText("", "/hel")
	s.waitFor("the suggestion /help", func(rows []string) bool { return rowIndex(rows, " /help ") > rowIndex(rows, promptText) })
	s.key("\t")
	s.waitFor("/help inserted", func(rows []string) bool { return rowIndex(rows, promptText+"/help") >= 0 })
	// A message arriving while a suggestion is selected waits, and the
	// selection stays.
	s.signal(syscall.SIGUSR2)
	s.key("\r")
	s.waitFor("the help text", func(rows []string) bool { return rowIndex(rows, "Commands (/help COMMAND") >= 0 })
	s.waitFor("the held join event", func(rows []string) bool { return rowIndex(rows, "* carol joined") >= 0 })
	s.waitReady()
	// Argument completion: a nick.
	s.typeText("", "/ping bo")
	s.key("\t")
	s.waitFor("/ping bob", func(rows []string) bool { return rowIndex(rows, promptText+"/ping bob") >= 0 })
	s.key("\r")
	s.waitFor("the pong", func(rows []string) bool { return rowIndex(rows, "pong from bob") >= 0 })
	s.waitReady()
	s.key("\x04") // Ctrl-D on an empty line
	if err := s.waitExit(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

func TestScreenHistoryAcrossRuns(t *testing.T) {
	hist := filepath.Join(t.TempDir(), "history")
	s := startScreen(t, "-history", hist)
	s.typeText("", "/echo from the first run")
	s.key("\r")
	s.waitFor("the echo", func(rows []string) bool {
		return rowIndex(rows, "from the first run") < lastRowIndex(rows)-1 && lastRow(rows) == promptEmpty
	})
	s.waitReady()
	s.typeText("", "/quit")
	s.key("\r")
	if err := s.waitExit(); err != nil {
		t.Fatalf("first run: %v", err)
	}

	s2 := startScreen(t, "-history", hist)
	s2.key("\x1b[A")
	s2.waitFor("the last line", func(rows []string) bool { return rowIndex(rows, promptText+"/quit") == 0 })
	s2.key("\x1b[A")
	s2.waitFor("the line before", func(rows []string) bool { return rows[0] == promptText+"/echo from the first run" })
	s2.key("\r")
	s2.waitFor("the echo again", func(rows []string) bool {
		return strings.Count(strings.Join(rows, "\n"), "from the first run") == 2 // the command line and its output
	})
	s2.waitReady()
	s2.key("\x04")
	if err := s2.waitExit(); err != nil {
		t.Fatalf("second run: %v", err)
	}
}

// TestScreenCtrlCSaysHowToLeave: Ctrl-C drops the draft (go-prompt's
// behaviour) and the REPL says so, and how to leave.
func TestScreenCtrlCSaysHowToLeave(t *testing.T) {
	s := startScreen(t)
	s.typeText("", "half a thought")
	s.key("\x03")
	s.waitFor("the hint and an empty prompt", func(rows []string) bool {
		return rowIndex(rows, "draft discarded; to leave: /quit, or Ctrl-D on an empty line") >= 0 &&
			lastRow(rows) == promptEmpty
	})
	s.waitReady()
	s.key("\x03")
	s.waitFor("the hint for an empty line", func(rows []string) bool {
		p := lastRowIndex(rows)
		return p >= 1 && rows[p-1] == "to leave: /quit, or Ctrl-D on an empty line" && lastRow(rows) == promptEmpty
	})
	s.waitReady()
	s.typeText("", "/quit")
	s.key("\r")
	if err := s.waitExit(); err != nil {
		t.Fatalf("exit: %v\n%s", err, s.dump())
	}
}

func TestScreenTerminalRestored(t *testing.T) {
	for _, tc := range []struct {
		name string
		quit func(s *screen)
		// wantErr: go-prompt ends the process itself on SIGTERM (status 1).
		wantExitCode int
		wantHook     bool
	}{
		{"quit", func(s *screen) { s.typeText("", "/quit"); s.key("\r") }, 0, false},
		{"ctrl-d", func(s *screen) { s.key("\x04") }, 0, false},
		// A key first: go-prompt registers its signal handler in a goroutine
		// it starts after drawing the first prompt; once a key has been
		// handled that goroutine has long run. (A signal before it is handled
		// by the REPL itself, like sighup below.)
		{"sigterm", func(s *screen) { s.typeText("", "x"); s.signal(syscall.SIGTERM) }, 1, true},
		{"sigint-mid-line", func(s *screen) { s.typeText("", "half"); s.signal(syscall.SIGINT) }, 0, true},
		{"sighup", func(s *screen) { s.signal(syscall.SIGHUP) }, 1, false},
		// go-prompt does not listen while a command runs: the REPL ends
		// the command and the prompt itself, and Run reports the signal.
		{"sigterm-during-command", func(s *screen) {
			s.typeText("", "/sleep 1m")
			s.key("\r")
			s.waitFor("the command to run (cooked terminal)", func([]string) bool {
				cooked, err := s.termCooked()
				return err == nil && cooked
			})
			s.signal(syscall.SIGTERM)
		}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "hook")
			s := startScreen(t, "-signal-marker", marker)
			cooked, err := s.termCooked()
			if err != nil {
				t.Fatalf("read termios: %v", err)
			}
			if cooked {
				t.Fatalf("the prompt is running but the terminal echoes (not raw)")
			}
			tc.quit(s)
			err = s.waitExit()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatalf("wait: %v", err)
			}
			if code != tc.wantExitCode {
				t.Errorf("exit code %d, want %d", code, tc.wantExitCode)
			}
			cooked, err = s.termCooked()
			if err != nil {
				t.Fatalf("read termios: %v", err)
			}
			if !cooked {
				t.Errorf("terminal left without echo/canonical mode after %s", tc.name)
			}
			_, statErr := os.Stat(marker)
			if gotHook := statErr == nil; gotHook != tc.wantHook {
				t.Errorf("OnSignal ran = %v, want %v", gotHook, tc.wantHook)
			}
		})
	}
}

var _ io.Writer = vt10x.New()

// TestScreenIncomingLinesSurviveEnter is issue 13's second bug: bob sends a
// line every few milliseconds while alice types and sends twenty lines. A
// line that arrived just as Enter was pressed used to be printed below the
// echoed input, and the executor's "replace the echo by the formatted
// message" then erased that line instead of the echo. Every line bob sent
// must be on screen exactly once, each of alice's lines must be there as a
// message, and no echoed input may be left over.
func TestScreenIncomingLinesSurviveEnter(t *testing.T) {
	// No scrollback in the virtual terminal: keep every line on screen (bob
	// sends at most 600 lines; on a slow machine he stops before alice).
	const height = 700
	s := startScreenRows(t, height, "-flood", "15ms", "-flood-max", "600")
	s.signal(syscall.SIGUSR1) // bob starts
	s.waitFor("bob's first line", func(rows []string) bool { return rowIndex(rows, "<bob> rb1") >= 0 })
	const sends = 20
	for i := 1; i <= sends; i++ {
		line := fmt.Sprintf("ra%d", i)
		s.key(line + "\r") // one write, as fast typing delivers it; the parser splits the keys
		s.waitFor("alice's "+line, func(rows []string) bool { return rowWithSuffix(rows, "<alice> "+line) >= 0 })
		s.waitReady()
	}
	s.signal(syscall.SIGUSR1) // bob stops (if he has not yet) and says how many he sent
	var sent int
	s.waitFor("the end of bob's lines", func(rows []string) bool {
		i := rowIndex(rows, "<bob> flood over after ")
		if i < 0 {
			return false
		}
		_, err := fmt.Sscanf(rows[i][strings.Index(rows[i], "<bob> flood over after "):], "<bob> flood over after %d", &sent)
		return err == nil
	})
	rows := s.rows()
	if n := lastRowIndex(rows); n >= height-1 {
		t.Fatalf("the screen is full (%d rows, bob sent %d lines): lines may have scrolled off; make it taller", n+1, sent)
	}
	var missing []string
	for k := 1; k <= sent; k++ {
		want := fmt.Sprintf("<bob> rb%d", k)
		if n := countWithSuffix(rows, want); n != 1 {
			missing = append(missing, fmt.Sprintf("rb%d (%d times)", k, n))
		}
	}
	for i := 1; i <= sends; i++ {
		if n := countWithSuffix(rows, fmt.Sprintf("<alice> ra%d", i)); n != 1 {
			missing = append(missing, fmt.Sprintf("ra%d (%d times)", i, n))
		}
	}
	if len(missing) > 0 {
		t.Errorf("of bob's %d lines and alice's %d, these are not on screen exactly once: %s",
			sent, sends, strings.Join(missing, ", "))
	}
	if got := countPrompts(rows); got != 1 {
		t.Errorf("got %d prompts on screen, want 1 (echoed input left over)", got)
	}
	if t.Failed() {
		t.Logf("screen:\n%s", s.dump())
	}
	t.Logf("bob sent %d lines while alice sent %d", sent, sends)
	s.key("\x04")
	if err := s.waitExit(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

func rowWithSuffix(rows []string, suffix string) int {
	for i, r := range rows {
		if strings.HasSuffix(r, suffix) {
			return i
		}
	}
	return -1
}

func countWithSuffix(rows []string, suffix string) int {
	n := 0
	for _, r := range rows {
		if strings.HasSuffix(r, suffix) {
			n++
		}
	}
	return n
}

// TestScreenFailedCommandKeepsPrompt: at the terminal prompt a failed
// command prints its error and the prompt stays (the non-zero status of
// scripts and piped input does not apply); the session then ends with
// status 0.
func TestScreenFailedCommandKeepsPrompt(t *testing.T) {
	s := startScreen(t)
	s.typeText("", "/nosuch")
	s.key("\r")
	s.waitFor("the error", func(rows []string) bool { return rowIndex(rows, "unknown command /nosuch") >= 0 })
	s.waitReady()
	s.typeText("", "/echo still here")
	s.key("\r")
	s.waitFor("the echo", func(rows []string) bool {
		return strings.Count(strings.Join(rows, "\n"), "still here") == 2 // the command line and its output
	})
	s.waitReady()
	s.typeText("", "/quit")
	s.key("\r")
	if err := s.waitExit(); err != nil {
		t.Fatalf("exit after a failed command at the prompt: %v", err)
	}
}
