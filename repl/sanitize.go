package repl

// Peer text is untrusted: a nick or a message could carry escape sequences
// that move the cursor, rewrite the screen, change the window title or
// fake lines from other people. Sanitize removes them before anything
// reaches a terminal, a log file or the JSON stream.
//
// It also removes what a terminal draws as nothing, or draws somewhere
// else than where the text is: invisible characters make two different
// strings look alike ("bob" and "bo\u200bb"), line and paragraph
// separators start a new line in some terminals (a fake line), bidi
// controls reorder what is read, and a base character followed by
// hundreds of combining marks ("zalgo" text) paints over the lines above
// and below it.

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxMarks is how many combining marks may follow one base character.
// Real text needs few: Vietnamese stacks two on a vowel, Indic scripts a
// vowel sign and one or two more; four leaves room for those and for an
// emoji's variation selector while stopping marks from stacking up into
// neighbouring lines.
const maxMarks = 4

// Sanitize returns s with every ANSI escape sequence, every C0 and C1
// control character (newlines and tabs included), DEL, every format
// character (Unicode category Cf: zero-width space and joiners, word
// joiner, BOM, soft hyphen, bidirectional controls, the tag block
// U+E0000–E007F), the line and paragraph separators U+2028 and U+2029
// and the Hangul filler letters removed, at most four combining marks kept
// after each base character, and invalid UTF-8 replaced by U+FFFD.
// Printable Unicode, including wide characters and emoji, is kept. Tabs
// become one space so that words stay apart. It is idempotent.
func Sanitize(s string) string { return sanitize(s, false) }

// SanitizeMultiline is Sanitize but keeps line feeds (a carriage return
// followed by a line feed becomes a line feed), for message bodies that
// the formatter indents line by line.
func SanitizeMultiline(s string) string { return sanitize(s, true) }

func sanitize(s string, keepNewlines bool) string {
	if isPlain(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	marks := 0 // combining marks written since the last other character
	for i := 0; i < len(s); {
		c := s[i]
		if c == 0x1b { // ESC: skip the whole sequence
			i = skipEscape(s, i)
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
			marks = 0
		case r == '\n' && keepNewlines:
			b.WriteByte('\n')
			marks = 0
		case r == '\t':
			b.WriteByte(' ')
			marks = 0
		case r < 0x20 || r == 0x7f:
			// C0 controls and DEL are dropped.
		case r == 0x9b: // C1 CSI: skip its parameters like ESC [
			i = skipCSIBody(s, i)
		case r == 0x9d || r == 0x90 || r == 0x98 || r == 0x9e || r == 0x9f: // C1 OSC, DCS, SOS, PM, APC
			i = skipString(s, i)
		case r >= 0x80 && r <= 0x9f:
			// Other C1 controls are dropped.
		case isBidiControl(r):
			// Bidirectional overrides can make text read differently
			// from what was sent ("trojan source"); dropped.
		case isInvisible(r):
			// Zero-width, format, tag and separator characters; dropped.
		case unicode.Is(unicode.M, r):
			// Marks are counted in the output, so that one removed
			// character between two runs does not let them add up (and
			// a second pass keeps every mark the first one kept).
			if marks < maxMarks {
				b.WriteRune(r)
				marks++
			}
		default:
			b.WriteRune(r)
			marks = 0
		}
	}
	return b.String()
}

// isPlain reports whether s is printable ASCII only, the common case.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// isInvisible reports whether r is a character a terminal shows as
// nothing, or as a line break: format characters (Cf, which includes
// U+200B–200D, U+2060, U+FEFF, U+00AD, the bidi controls and most of the
// tag block), the whole tag block U+E0000–E007F, the line and paragraph
// separators (Zl, Zp) and the Hangul fillers, letters that draw blank
// (U+115F, U+1160, U+3164, U+FFA0).
func isInvisible(r rune) bool {
	switch {
	case r < 0xa0:
		return false // ASCII and C1: handled by the caller
	case r >= 0xe0000 && r <= 0xe007f:
		return true
	case r == 0x115f || r == 0x1160 || r == 0x3164 || r == 0xffa0:
		return true
	}
	return unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

func isBidiControl(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c
}

// skipEscape returns the index after the escape sequence starting at s[i]
// (an ESC byte). Unterminated sequences swallow the rest of the string,
// which is safe: nothing of them reaches the terminal.
func skipEscape(s string, i int) int {
	i++ // ESC
	if i >= len(s) {
		return i
	}
	switch c := s[i]; {
	case c == '[': // CSI
		return skipCSIBody(s, i+1)
	case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_': // OSC, DCS, SOS, PM, APC
		return skipString(s, i+1)
	case c >= 0x20 && c <= 0x2f: // nF: intermediates then one final byte
		for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
			i++
		}
		if i < len(s) {
			i++
		}
		return i
	case c < 0x20 || c == 0x7f:
		return i // a control after ESC is dropped by the main loop
	default: // two-byte sequence such as ESC c, ESC 7, ESC O (SS3 takes one more)
		if c == 'O' && i+1 < len(s) {
			return i + 2
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		return i + size
	}
}

// skipCSIBody skips parameter (0x30-0x3f) and intermediate (0x20-0x2f)
// bytes and the final byte (0x40-0x7e). Any other byte ends the sequence
// without being consumed.
func skipCSIBody(s string, i int) int {
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x3f {
		i++
	}
	if i < len(s) && s[i] >= 0x40 && s[i] <= 0x7e {
		i++
	}
	return i
}

// skipString skips a control string up to and including its terminator:
// BEL, ST (ESC \) or the C1 ST (U+009C).
func skipString(s string, i int) int {
	for i < len(s) {
		switch {
		case s[i] == 0x07:
			return i + 1
		case s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\':
			return i + 2
		case s[i] == 0x1b:
			return i // a new sequence starts; let the main loop handle it
		case s[i] == 0xc2 && i+1 < len(s) && s[i+1] == 0x9c:
			return i + 2
		}
		i++
	}
	return i
}
