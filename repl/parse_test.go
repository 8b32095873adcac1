package repl

import (
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", nil, false},
		{"  a  b ", []string{"a", "b"}, false},
		{`'a b' c`, []string{"a b", "c"}, false},
		{`"a \"b\" \\ c"`, []string{`a "b" \ c`}, false},
		{`"a\nb"`, []string{`a\nb`}, false},
		{`a\ b`, []string{"a b"}, false},
		{`''`, []string{""}, false},
		{`x'y'"z"`, []string{"xyz"}, false},
		{`'it'\''s'`, []string{"it's"}, false},
		{`'open`, nil, true},
		{`"open`, nil, true},
		{`"ends with backslash\"`, nil, true},
		{`trailing\`, []string{"trailing"}, false},
		{"héllo wörld 世界", []string{"héllo", "wörld", "世界"}, false},
	}
	for _, tc := range tests {
		got, err := SplitArgs(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("SplitArgs(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if _, err := SplitArgs(strings.Repeat("a ", maxArgs+1)); err == nil {
		t.Error("no error for too many arguments")
	}
}

func FuzzSplitArgs(f *testing.F) {
	for _, s := range []string{"", "a b", `'a b' "c\"d"`, `\`, `"`, `'`, `a\ b`, "x\ty\nz", "世界 'é'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, err := SplitArgs(s)
		if err != nil {
			return
		}
		if len(args) > maxArgs {
			t.Fatalf("%d args, limit %d", len(args), maxArgs)
		}
		// Quoting the words gives them back.
		var quoted []string
		for _, a := range args {
			quoted = append(quoted, QuoteArg(a))
		}
		again, err := SplitArgs(strings.Join(quoted, " "))
		if err != nil {
			t.Fatalf("re-split of %q: %v", quoted, err)
		}
		if len(args) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(again, args) {
			t.Fatalf("round trip of %q: got %q, want %q", s, again, args)
		}
	})
}

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want, multi string }{
		{"hello", "hello", "hello"},
		{"a\x1b[31mred\x1b[0m", "ared", "ared"},
		{"title\x1b]0;pwned\x07!", "title!", "title!"},
		{"osc st\x1b]8;;http://x\x1b\\link", "osc stlink", "osc stlink"},
		{"dcs\x1bPq#0;2;0;0;0\x1b\\end", "dcsend", "dcsend"},
		{"cursor\x1b7\x1b8 save", "cursor save", "cursor save"},
		{"charset\x1b(0x", "charsetx", "charsetx"},
		{"bell\x07 bs\x08 cr\r", "bell bs cr", "bell bs cr"},
		{"two\nlines\r\n", "twolines", "two\nlines\n"},
		{"tab\there", "tab here", "tab here"},
		{"c1\u009b31mcsi\u0085nel", "c1csinel", "c1csinel"},
		{"c1osc\u009d0;x\u009cend", "c1oscend", "c1oscend"},
		{"del\x7f", "del", "del"},
		{"bad\xffutf8", "bad\uFFFDutf8", "bad\uFFFDutf8"},
		{"bidi\u202eevil", "bidievil", "bidievil"},
		{"wide 世界 emoji 🎉 é", "wide 世界 emoji 🎉 é", "wide 世界 emoji 🎉 é"},
		{"trailing esc\x1b", "trailing esc", "trailing esc"},
		{"unterminated\x1b]0;title", "unterminated", "unterminated"},
		{"zero\u200bwidth\u200c\u200d\u2060\ufeff\u00adx", "zerowidthx", "zerowidthx"},
		{"tag\U000E0041\U000E007F\U000E0000s", "tags", "tags"},
		{"fake\u2028<alice> hi\u2029", "fake<alice> hi", "fake<alice> hi"},
		{"filler\u3164\uffa0\u115f\u1160.", "filler.", "filler."},
		{"isolate\u2066x\u2069 mark\u061c", "isolatex mark", "isolatex mark"},
		{"z\u0301\u0302\u0303\u0304\u0305\u0306alg\u0300o", "z\u0301\u0302\u0303\u0304alg\u0300o", "z\u0301\u0302\u0303\u0304alg\u0300o"},
		{"split\u0301\u0301\u0301\u200b\u0301\u0301\u0301", "split\u0301\u0301\u0301\u0301", "split\u0301\u0301\u0301\u0301"},
		{"Vi\u1ec7t ti\u00ea\u0301ng \u0928\u092e\u0938\u094d\u0924\u0947 \u2764\ufe0f", "Vi\u1ec7t ti\u00ea\u0301ng \u0928\u092e\u0938\u094d\u0924\u0947 \u2764\ufe0f", "Vi\u1ec7t ti\u00ea\u0301ng \u0928\u092e\u0938\u094d\u0924\u0947 \u2764\ufe0f"},
	}
	for _, tc := range tests {
		if got := Sanitize(tc.in); got != tc.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := SanitizeMultiline(tc.in); got != tc.multi {
			t.Errorf("SanitizeMultiline(%q) = %q, want %q", tc.in, got, tc.multi)
		}
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[2J\x1b[H", "\x1b]0;t\x07", "a\u009bb", "\xff\xfe", "x\ny\r\n", "\x1bP\x1b\\", "🎉\u202e",
		"a\u200b\u2028\U000E0041\u3164", "e\u0301\u0301\u0301\u0301\u0301\x1b[m\u0301", "\u0301\u0301\u0301\u0301\u0301\u0301"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, multi := range []bool{false, true} {
			out := sanitize(s, multi)
			if !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 out of %q: %q", s, out)
			}
			marks := 0
			for _, r := range out {
				if (r < 0x20 && !(multi && r == '\n')) || (r >= 0x7f && r <= 0x9f) || isBidiControl(r) {
					t.Fatalf("control %U left in %q (from %q)", r, out, s)
				}
				if unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || (r >= 0xe0000 && r <= 0xe007f) ||
					r == 0x200b || r == 0xfeff || r == 0xad || r == 0x3164 {
					t.Fatalf("invisible %U left in %q (from %q)", r, out, s)
				}
				if marks = marks + 1; !unicode.Is(unicode.M, r) {
					marks = 0
				}
				if marks > maxMarks {
					t.Fatalf("%d combining marks in a row in %q (from %q)", marks, out, s)
				}
			}
			if again := sanitize(out, multi); again != out {
				t.Fatalf("not idempotent: %q -> %q -> %q", s, out, again)
			}
		}
	})
}

func TestSplitKey(t *testing.T) {
	in := []byte("ab\x1b[A\x1b[1;5C\x1bOP\x1b\x1bx\x1bf世\r\x1b")
	want := []string{"a", "b", "\x1b[A", "\x1b[1;5C", "\x1bOP", "\x1b", "\x1bx", "\x1bf", "世", "\r", "\x1b"}
	var got []string
	for rest := in; len(rest) > 0; {
		var k []byte
		k, rest = splitKey(rest)
		got = append(got, string(k))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("keys = %q, want %q", got, want)
	}
}

func FuzzSplitKey(f *testing.F) {
	for _, s := range []string{"abc", "\x1b[A\x1b[B", "\x1bO", "\x1b[", "世界\r\n", "\x1b\x1b\x1b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var joined []byte
		for rest := b; len(rest) > 0; {
			k, r := splitKey(rest)
			if len(k) == 0 {
				t.Fatalf("empty key from %q", rest)
			}
			joined = append(joined, k...)
			rest = r
		}
		if string(joined) != string(b) {
			t.Fatalf("keys of %q join to %q", b, joined)
		}
	})
}
