package repl

// History persists typed lines in a file, one per line, appended as each
// line is entered (go-prompt may end the process with os.Exit, so nothing
// can wait for a clean exit). At start the last HistorySize lines are
// loaded; when the file has grown past twice that, it is rewritten with
// only those lines (through a temporary file and a rename, so a crash
// leaves either the old or the new file).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

type history struct {
	mu    sync.Mutex
	path  string
	f     *os.File
	lines []string // loaded and added lines, at most size
	size  int
}

func openHistory(path string, size int) (*history, error) {
	h := &history{path: path, size: size}
	all, err := readHistory(path)
	if err != nil {
		return nil, err
	}
	if len(all) > size {
		h.lines = append([]string(nil), all[len(all)-size:]...)
	} else {
		h.lines = all
	}
	if len(all) > 2*size {
		if err := h.rewrite(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create history directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open history: %w", err)
	}
	h.f = f
	return h, nil
}

// readHistory returns the lines of the file; a missing file is empty.
// Overlong lines (over 1 MiB) are skipped.
func readHistory(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open history: %w", err)
	}
	defer f.Close()
	lr := newLineReader(f, 1<<20)
	var out []string
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if errors.Is(err, errLineTooLong) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read history %s: %w", path, err)
		}
		if line = historyLine(line); line != "" {
			out = append(out, line)
		}
	}
}

// historyLine cleans a line for the history: no control characters (the
// file is line-based and the prompt shows it again).
func historyLine(s string) string { return strings.TrimSpace(Sanitize(s)) }

func (h *history) rewrite() error {
	tmp, err := os.CreateTemp(filepath.Dir(h.path), ".history-*")
	if err != nil {
		return fmt.Errorf("rewrite history: %w", err)
	}
	w := bufio.NewWriter(tmp)
	for _, l := range h.lines {
		_, _ = w.WriteString(l + "\n")
	}
	err = errors.Join(w.Flush(), tmp.Chmod(0o600), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), h.path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("rewrite history: %w", err)
	}
	return nil
}

// Lines returns a copy of the history, oldest first.
func (h *history) Lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.lines...)
}

// add appends a line (skipping blanks and a repeat of the last line) and
// writes it to the file at once.
func (h *history) add(line string) error {
	line = historyLine(line)
	h.mu.Lock()
	defer h.mu.Unlock()
	if line == "" || (len(h.lines) > 0 && h.lines[len(h.lines)-1] == line) {
		return nil
	}
	h.lines = append(h.lines, line)
	if len(h.lines) > h.size {
		h.lines = h.lines[len(h.lines)-h.size:]
	}
	if h.f == nil {
		return nil
	}
	if _, err := h.f.WriteString(line + "\n"); err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	return nil
}

func (h *history) close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		return nil
	}
	err := h.f.Close()
	h.f = nil
	return err
}
