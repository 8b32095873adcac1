package repl

// Completion is a pure function from the text before the cursor to
// suggestions. Suggestions are whole words that replace the word being
// typed (the text after the last space), which is what go-prompt does with
// its default word separator.

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxFileSuggestions bounds file name completion in large directories.
const maxFileSuggestions = 200

// Complete returns the suggestions for the text before the cursor:
// command names after '/', subcommands and arguments of commands, nicks
// after '@' in messages, and file names for commands that take files.
// It reads Members for nicks and the file system for file names, and is
// safe to call from the prompt's goroutine.
func (r *REPL) Complete(before string) []Suggestion {
	if strings.TrimSpace(before) == "" {
		return nil
	}
	word := before[strings.LastIndex(before, " ")+1:]
	if !strings.HasPrefix(before, "/") || strings.HasPrefix(before, "//") {
		if strings.HasPrefix(word, "@") {
			var out []Suggestion
			for _, n := range r.nicks(false) {
				out = append(out, Suggestion{Text: "@" + n, Description: "nick"})
			}
			return filterPrefix(out, word)
		}
		return completeNickInText(r, before, word)
	}
	if !strings.Contains(before, " ") {
		var out []Suggestion
		for _, c := range r.visible() {
			out = append(out, Suggestion{Text: "/" + c.Name, Description: c.Summary})
		}
		return filterPrefix(out, strings.ToLower(word))
	}
	name, rest := splitCommand(before[:len(before)-len(word)])
	cmd := r.lookup(name)
	if cmd == nil {
		return nil
	}
	prev := strings.Fields(rest)
	for len(cmd.Sub) > 0 {
		if len(prev) == 0 {
			var out []Suggestion
			for _, s := range cmd.Sub {
				out = append(out, Suggestion{Text: s.Name, Description: s.Summary})
			}
			return filterPrefix(out, strings.ToLower(word))
		}
		sub := findSub(cmd, prev[0])
		if sub == nil {
			return nil
		}
		cmd, prev = sub, prev[1:]
	}
	if cmd.Complete == nil || (cmd.MaxArgs >= 0 && len(prev) >= cmd.MaxArgs) {
		return nil
	}
	return filterPrefix(cmd.Complete(r, prev, word), word)
}

func filterPrefix(in []Suggestion, word string) []Suggestion {
	var out []Suggestion
	for _, s := range in {
		if strings.HasPrefix(s.Text, word) && s.Text != "" {
			out = append(out, s)
		}
	}
	return out
}

// nicks returns the display names of the live members, sorted, without
// the own one unless withSelf.
func (r *REPL) nicks(withSelf bool) []string {
	self := r.cfg.Peer.ID()
	seen := map[string]bool{}
	var out []string
	for _, m := range r.cfg.Peer.Members() {
		if (!withSelf && m.ID == self) || (m.State != "" && m.State != "alive") {
			continue
		}
		n := Sanitize(m.DisplayName)
		if n == "" {
			n = Sanitize(m.Nick)
		}
		if n == "" || strings.ContainsAny(n, " ") || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// completeNick completes the first argument with a member's nick.
func completeNick(r *REPL, args []string, _ string) []Suggestion {
	if len(args) > 0 {
		return nil
	}
	var out []Suggestion
	for _, n := range r.nicks(false) {
		out = append(out, Suggestion{Text: n, Description: "member"})
	}
	return out
}

// completeFile completes a file name: the directory part of word is
// listed, entries starting with the rest are returned as whole paths
// (directories with a trailing '/'). Hidden files only when the typed
// name starts with '.'.
func completeFile(_ *REPL, _ []string, word string) []Suggestion {
	dir, base := filepath.Split(word)
	list := dir
	if list == "" {
		list = "."
	}
	if strings.HasPrefix(list, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			list = filepath.Join(home, list[2:])
		}
	}
	entries, err := os.ReadDir(list)
	if err != nil {
		return nil
	}
	var out []Suggestion
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, base) || (strings.HasPrefix(n, ".") && !strings.HasPrefix(base, ".")) ||
			strings.ContainsAny(n, " \t") {
			continue
		}
		s := Suggestion{Text: dir + n, Description: "file"}
		if e.IsDir() {
			s.Text += "/"
			s.Description = "directory"
		}
		out = append(out, s)
		if len(out) >= maxFileSuggestions {
			break
		}
	}
	return out
}

// completeWords returns a completer offering fixed words for the first
// argument.
func completeWords(words ...string) func(*REPL, []string, string) []Suggestion {
	return func(_ *REPL, args []string, _ string) []Suggestion {
		if len(args) > 0 {
			return nil
		}
		out := make([]Suggestion, 0, len(words))
		for _, w := range words {
			out = append(out, Suggestion{Text: w})
		}
		return out
	}
}

// minNickPrefix is how much of a nick must be typed before a message's
// word is completed with it (fewer would open the menu on most words).
const minNickPrefix = 2

// completeNickInText completes a nick inside a message, as IRC clients
// do: "bo" at the start of the line becomes "bob: " (addressing bob),
// elsewhere "bob".
func completeNickInText(r *REPL, before, word string) []Suggestion {
	if len(word) < minNickPrefix {
		return nil
	}
	atStart := strings.TrimLeft(before, " ") == word
	var out []Suggestion
	for _, n := range r.nicks(false) {
		if !strings.HasPrefix(strings.ToLower(n), strings.ToLower(word)) {
			continue
		}
		text := n
		if atStart {
			text += ": "
		}
		out = append(out, Suggestion{Text: text, Description: "nick"})
	}
	return out
}
