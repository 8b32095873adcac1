package repl

import (
	"errors"
	"strings"
	"unicode"
)

// maxArgs bounds the number of arguments of one command line.
const maxArgs = 256

// errUnterminatedQuote is returned for a quote without its closing pair.
var errUnterminatedQuote = errors.New("unterminated quote")

// SplitArgs splits a command line into words like a small shell: words are
// separated by white space; 'single quotes' keep everything literally;
// "double quotes" keep spaces and honour \" and \\; outside quotes a
// backslash escapes the next character. An empty quoted string is a word.
func SplitArgs(line string) ([]string, error) {
	var (
		args  []string
		cur   strings.Builder
		inTok bool
	)
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			if inTok {
				args = append(args, cur.String())
				cur.Reset()
				inTok = false
				if len(args) > maxArgs {
					return nil, errors.New("too many arguments")
				}
			}
		case r == '\'':
			inTok = true
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				cur.WriteRune(rs[j])
				j++
			}
			if j >= len(rs) {
				return nil, errUnterminatedQuote
			}
			i = j
		case r == '"':
			inTok = true
			j := i + 1
			for ; j < len(rs) && rs[j] != '"'; j++ {
				if rs[j] == '\\' && j+1 < len(rs) && (rs[j+1] == '"' || rs[j+1] == '\\') {
					j++
				}
				cur.WriteRune(rs[j])
			}
			if j >= len(rs) {
				return nil, errUnterminatedQuote
			}
			i = j
		case r == '\\':
			inTok = true
			if i+1 < len(rs) {
				i++
				cur.WriteRune(rs[i])
			}
		default:
			inTok = true
			cur.WriteRune(r)
		}
	}
	if inTok {
		args = append(args, cur.String())
	}
	if len(args) > maxArgs {
		return nil, errors.New("too many arguments")
	}
	return args, nil
}

// QuoteArg quotes s so that SplitArgs returns it as one word.
func QuoteArg(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || r == '\'' || r == '"' || r == '\\'
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// splitCommand splits "/name rest" into the name (without '/') and the
// raw rest of the line with leading space removed.
func splitCommand(line string) (name, rest string) {
	line = strings.TrimPrefix(line, "/")
	i := strings.IndexFunc(line, unicode.IsSpace)
	if i < 0 {
		return line, ""
	}
	return line[:i], strings.TrimLeftFunc(line[i:], unicode.IsSpace)
}
