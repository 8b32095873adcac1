package chat

// Nicks are chosen by peers, so a nick is a claim, not an identity: the
// peer ID is. Two defences keep a nick from passing for someone else's.
//
// Validation (ValidateNick) refuses nicks that cannot be told apart from
// another string at all: invisible letters (the Hangul fillers draw blank),
// format characters, compatibility forms that normalise to other letters
// (fullwidth "ａｌｉｃｅ" is "alice" under NFKC) and letters of scripts that
// do not mix in real names (Latin with Cyrillic, as in a "bоb" whose "о"
// is Cyrillic). The rules are those of the PRECIS Nickname profile (RFC
// 8266, golang.org/x/text/secure/precis), a nick must already be in that
// profile's normal form, plus the explicit bans above.
//
// Display (displayNameLocked in members.go) adds the "#xxxx" ID suffix
// to a nick whenever another live member's nick has the same skeleton
// (below), not only the same bytes; and message attribution adds it to
// any origin that is not a live member right now, so a stranger, or a
// member that has gone offline, never shows as a bare nick that a live
// member could be taken for.
//
// The skeleton is partial by design: case folding, NFKC, and a short
// table of the Cyrillic and Greek letters and the digits that look like
// Latin ones in common fonts, plus "rn"/"m" and "vv"/"w". It is not
// Unicode's full confusables list (UTS #39): a homoglyph it misses can
// still make two live members look alike, but then only in scripts the
// validation lets a nick use on its own.

import (
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
)

// checkNickRunes applies the rules beyond the character classes to a
// nick that is valid UTF-8 of letters, digits, '-', '_' and '.'.
func checkNickRunes(nick string) error {
	ascii := true
	for _, r := range nick {
		if r >= 0x80 {
			ascii = false
		}
		if invisibleLetter(r) {
			return fmt.Errorf("nick %q has the invisible character %U", nick, r)
		}
	}
	if ascii {
		return nil // ASCII letters, digits and "-_." are PRECIS-valid and normal
	}
	canon, err := precis.Nickname.String(nick)
	if err != nil {
		return fmt.Errorf("nick %q: %w", nick, err)
	}
	if canon != nick {
		return fmt.Errorf("nick %q is not in its normal form %q (compatibility or combining characters)", nick, canon)
	}
	return checkScripts(nick)
}

// invisibleLetter reports characters that Unicode calls letters (or
// formats) but terminals draw as nothing: the Hangul fillers, and every
// default-ignorable or format character.
func invisibleLetter(r rune) bool {
	switch r {
	case 0x115f, 0x1160, 0x3164, 0xffa0:
		return true
	}
	return r >= 0x80 && unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point)
}

// scriptOrder lists the scripts a nick most often uses, so that finding a
// letter's script rarely walks Unicode's whole script table.
var scriptOrder = []string{"Latin", "Cyrillic", "Greek", "Han", "Hiragana", "Katakana", "Hangul", "Arabic", "Hebrew",
	"Devanagari", "Thai", "Armenian", "Georgian", "Bopomofo"}

// scriptOf returns the name of r's script ("" for Common and Inherited:
// digits, punctuation, marks that take the script of their base).
func scriptOf(r rune) string {
	for _, name := range scriptOrder {
		if unicode.Is(unicode.Scripts[name], r) {
			return name
		}
	}
	for name, t := range unicode.Scripts {
		if unicode.Is(t, r) {
			if name == "Common" || name == "Inherited" {
				return ""
			}
			return name
		}
	}
	return ""
}

// mixes lists the sets of scripts that real names combine (UTS #39's
// "highly restrictive" level): Japanese, Chinese with Bopomofo, and
// Korean, each with Latin. Any other nick uses one script.
var mixes = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

// checkScripts refuses a nick that mixes scripts outside mixes.
func checkScripts(nick string) error {
	var seen []string
	for _, r := range nick {
		if s := scriptOf(r); s != "" && !contains(seen, s) {
			seen = append(seen, s)
		}
	}
	if len(seen) <= 1 {
		return nil
	}
	for _, set := range mixes {
		ok := true
		for _, s := range seen {
			ok = ok && contains(set, s)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("nick %q mixes the scripts %s: use one", nick, strings.Join(seen, " and "))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// homoglyphs maps letters that look like a Latin letter or digit in
// common fonts to that Latin letter (lower case). Upper-case entries are
// needed because folding comes after: Cyrillic "Н" looks like "H", its
// lower case "н" does not look like "h".
var homoglyphs = map[rune]rune{
	// Latin and digits that look alike.
	'0': 'o', '1': 'l', 'I': 'l', 'i': 'l', '|': 'l', 'ı': 'l', '5': 's',
	// Cyrillic.
	'А': 'a', 'а': 'a', 'В': 'b', 'Ь': 'b', 'Е': 'e', 'е': 'e', 'Ё': 'e', 'ё': 'e', 'К': 'k', 'к': 'k',
	'М': 'm', 'Н': 'h', 'һ': 'h', 'О': 'o', 'о': 'o', 'Р': 'p', 'р': 'p', 'С': 'c', 'с': 'c',
	'Т': 't', 'У': 'y', 'у': 'y', 'Х': 'x', 'х': 'x', 'І': 'l', 'і': 'l', 'Ї': 'l', 'ї': 'l', 'Ӏ': 'l', 'ӏ': 'l',
	'Ј': 'j', 'ј': 'j', 'Ѕ': 's', 'ѕ': 's', 'ԁ': 'd', 'Ԛ': 'q', 'ԛ': 'q', 'Ԝ': 'w', 'ԝ': 'w', 'Ү': 'y', 'ү': 'y',
	'п': 'n', 'г': 'r', 'ɡ': 'g',
	// Greek.
	'Α': 'a', 'α': 'a', 'Β': 'b', 'Ε': 'e', 'Ζ': 'z', 'Η': 'h', 'Ι': 'l', 'ι': 'l', 'Κ': 'k', 'κ': 'k',
	'Μ': 'm', 'Ν': 'n', 'ν': 'v', 'Ο': 'o', 'ο': 'o', 'Ρ': 'p', 'ρ': 'p', 'Τ': 't', 'τ': 't', 'Υ': 'y',
	'υ': 'u', 'Χ': 'x', 'χ': 'x', 'ϲ': 'c', 'Ϲ': 'c', 'ϳ': 'j',
}

// skeleton returns the form two nicks share when they may look alike:
// NFKC, homoglyphs mapped to Latin, lower case, "rn" as "m" and "vv" as
// "w". Equal skeletons mean "confusable"; a false positive only costs an
// ID suffix on screen.
func skeleton(nick string) string {
	var b strings.Builder
	b.Grow(len(nick))
	for _, r := range norm.NFKC.String(nick) {
		if h, ok := homoglyphs[r]; ok {
			r = h
		}
		r = unicode.ToLower(r)
		if h, ok := homoglyphs[r]; ok { // a lower case whose upper case was not listed
			r = h
		}
		b.WriteRune(r)
	}
	s := b.String()
	if strings.Contains(s, "rn") || strings.Contains(s, "vv") {
		s = strings.NewReplacer("rn", "m", "vv", "w").Replace(s)
	}
	return s
}
