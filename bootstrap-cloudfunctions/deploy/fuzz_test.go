package deploy

import (
	"strings"
	"testing"
)

// FuzzModulePath checks the go.mod reader on arbitrary files: no panic,
// and an accepted path is non-empty, has a dot in its first element and
// no spaces.
func FuzzModulePath(f *testing.F) {
	for _, s := range []string{"module github.com/hearsay-chat/hearsay\n\ngo 1.26.0\n", "module \"example.com/x\" // c\n",
		"module\n", "module  \n", "modulex a.b\n", "", "module a.b/c\r\n", "// module a.b\nmodule x.y\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, gomod []byte) {
		p, err := modulePath(gomod)
		if err != nil {
			return
		}
		first, _, _ := strings.Cut(p, "/")
		if p == "" || !strings.Contains(first, ".") || strings.ContainsAny(p, " \t\n") {
			t.Fatalf("accepted module path %q from %q", p, gomod)
		}
	})
}
