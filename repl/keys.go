package repl

import "unicode/utf8"

// splitKey returns the first key of b and the rest. A terminal sends one
// key as one byte, one UTF-8 character or one escape sequence; when it
// delivers several in one read (fast typing, paste), go-prompt v0.2.6 would
// insert them as one unknown key (its PR #145), so the parser hands them
// over one at a time.
func splitKey(b []byte) (key, rest []byte) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != 0x1b {
		if b[0] < utf8.RuneSelf {
			return b[:1], b[1:]
		}
		_, n := utf8.DecodeRune(b)
		return b[:n], b[n:]
	}
	if len(b) == 1 {
		return b, nil
	}
	switch b[1] {
	case '[': // CSI: parameters and intermediates, then a final byte
		i := 2
		for i < len(b) && b[i] >= 0x20 && b[i] <= 0x3f {
			i++
		}
		if i < len(b) && b[i] >= 0x40 && b[i] <= 0x7e {
			i++
		}
		return b[:i], b[i:]
	case 'O': // SS3: one more byte (F1-F4, keypad, application cursor keys)
		if len(b) >= 3 {
			return b[:3], b[3:]
		}
		return b, nil
	case 0x1b: // ESC ESC: the first one is a lone Escape
		return b[:1], b[1:]
	default: // Alt+key: ESC and one character
		if b[1] < utf8.RuneSelf {
			return b[:2], b[2:]
		}
		_, n := utf8.DecodeRune(b[1:])
		return b[:1+n], b[1+n:]
	}
}
