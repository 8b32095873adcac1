package repl

// Scripts and stdin mode: lines are read one by one and handed to Exec,
// the same dispatcher the terminal prompt uses. A line whose first
// non-blank character is '#' is a comment; blank lines are skipped; /quit
// stops everything. A line longer than the message limit plus some slack
// is skipped with an error (it could only be refused later anyway).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hearsay-chat/hearsay"
)

// maxScriptDepth bounds /exec nesting (a script that runs itself).
const maxScriptDepth = 8

// maxScriptBytes bounds a script file.
const maxScriptBytes = 16 << 20

// ErrCommandFailed is wrapped by the error of a script or of line mode
// (standard input that is not a terminal) when commands failed, so that
// the hearsay command exits with a non-zero status. Each failure was
// printed already.
var ErrCommandFailed = errors.New("commands failed")

// scriptError says how many commands of a script or of the input failed
// (each one was printed already). quit is set when the script then ran
// /quit, so the error is also ErrQuit: the run ends, and still fails.
type scriptError struct {
	name          string
	failed, total int
	stopped       bool // stopped at the first failure (no KeepGoing)
	quit          bool
}

func (e *scriptError) Error() string {
	if e.stopped {
		return fmt.Sprintf("%s: stopped at the first failed command (%d run; --keep-going runs the rest)", e.name, e.total)
	}
	return fmt.Sprintf("%s: %d of %d commands failed", e.name, e.failed, e.total)
}

func (e *scriptError) Is(target error) bool {
	return target == ErrCommandFailed || e.quit && target == ErrQuit
}

// ErrInterrupted is wrapped by Run's error when a signal stopped it.
var ErrInterrupted = errors.New("interrupted")

// lineLimit is the longest line read from a script or stdin.
func (r *REPL) lineLimit() int { return r.cfg.MaxMessageBytes + 4096 }

// RunScript runs the commands of a file. It returns ErrQuit when the
// script ran /quit, an error wrapping ErrCommandFailed when commands
// failed (each one was printed already; without Config.KeepGoing the
// script stops at the first), or the error opening the file. An error
// can be both: commands failed, then the script ran /quit. Blocks until
// the script ends.
func (r *REPL) RunScript(ctx context.Context, path string) error {
	if r.execDepth >= maxScriptDepth {
		return fmt.Errorf("exec %s: scripts nested more than %d deep", path, maxScriptDepth)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open script: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return fmt.Errorf("exec %s: is a directory", path)
	}
	r.execDepth++
	defer func() { r.execDepth-- }()
	return r.runLines(ctx, io.LimitReader(f, maxScriptBytes), path)
}

// runLines executes every line of rd.
func (r *REPL) runLines(ctx context.Context, rd io.Reader, name string) error {
	lr := newLineReader(rd, r.lineLimit())
	failed, total := 0, 0
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, errLineTooLong) {
			failed++
			r.p.emit(hearsay.Event{Type: hearsay.EventError, Text: fmt.Sprintf("%s:%d: line longer than %d bytes skipped", name, n, r.lineLimit())})
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		if isComment(line) {
			continue
		}
		total++
		if err := r.Exec(ctx, line); err != nil {
			if errors.Is(err, ErrQuit) {
				if failed > 0 || errors.Is(err, ErrCommandFailed) {
					return &scriptError{name: name, failed: max(failed, 1), total: total, quit: true}
				}
				return err
			}
			failed++
			if !r.cfg.KeepGoing {
				return &scriptError{name: name, failed: failed, total: total, stopped: true}
			}
		}
	}
	if failed > 0 {
		return &scriptError{name: name, failed: failed, total: total}
	}
	return nil
}

// isComment reports whether a script line is blank or a comment.
func isComment(line string) bool {
	t := strings.TrimSpace(line)
	return t == "" || strings.HasPrefix(t, "#")
}

// runStdin reads commands from In until end of input, /quit or ctx. A
// failed command stops it with an error wrapping ErrCommandFailed unless
// Config.KeepGoing, which reads on and reports the failures at the end. The
// reading goroutine blocks in Read; when ctx ends first it is unblocked
// with a read deadline where In supports one, and otherwise ends at the
// next line or end of input (it holds nothing else).
func (r *REPL) runStdin(ctx context.Context) error {
	if r.io.In == nil {
		return nil
	}
	type result struct {
		line string
		err  error
	}
	const name = "input"
	failed, total := 0, 0
	// failure is what the run returns at its end: nil, or how many
	// commands failed.
	failure := func(quit bool) error {
		if failed == 0 {
			return nil
		}
		return &scriptError{name: name, failed: failed, total: total, quit: quit}
	}
	lines := make(chan result)
	done := make(chan struct{})
	defer close(done)
	go func() {
		lr := newLineReader(r.io.In, r.lineLimit())
		for {
			line, err := lr.next()
			select {
			case lines <- result{line, err}:
			case <-done:
				return
			}
			if err != nil && !errors.Is(err, errLineTooLong) {
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			if d, ok := r.io.In.(interface{ SetReadDeadline(time.Time) error }); ok {
				_ = d.SetReadDeadline(time.Now())
			}
			return ctx.Err()
		case res := <-lines:
			switch {
			case errors.Is(res.err, io.EOF):
				return failure(false)
			case errors.Is(res.err, errLineTooLong):
				r.p.emit(hearsay.Event{Type: hearsay.EventError, Text: fmt.Sprintf("line longer than %d bytes skipped", r.lineLimit())})
				total++
				failed++
				if !r.cfg.KeepGoing {
					return &scriptError{name: name, failed: failed, total: total, stopped: true}
				}
				continue
			case res.err != nil:
				return fmt.Errorf("read input: %w", res.err)
			}
			if isComment(res.line) {
				continue
			}
			total++
			err := r.Exec(ctx, res.line)
			switch {
			case errors.Is(err, ErrQuit):
				if errors.Is(err, ErrCommandFailed) {
					failed++ // an /exec whose script failed, then quit
				}
				return failure(false)
			case err != nil:
				failed++
				if !r.cfg.KeepGoing {
					return &scriptError{name: name, failed: failed, total: total, stopped: true}
				}
			}
		}
	}
}

// errLineTooLong is returned by lineReader.next for an overlong line,
// which it skips.
var errLineTooLong = errors.New("line too long")

// lineReader reads '\n'-terminated lines of bounded length.
type lineReader struct {
	br    *bufio.Reader
	limit int
}

func newLineReader(rd io.Reader, limit int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(rd, 64<<10), limit: limit}
}

// next returns the next line without its line ending. A last line without
// '\n' is returned before io.EOF.
func (l *lineReader) next() (string, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, err := l.br.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > l.limit+2 { // +2 for "\r\n"
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && (len(buf) == 0 && !tooLong || !errors.Is(err, io.EOF)) {
			return "", err
		}
		if tooLong {
			return "", errLineTooLong
		}
		return strings.TrimRight(string(buf), "\r\n"), nil
	}
}
