package deploy

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

func TestModulePath(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"module github.com/a/b\n\ngo 1.26.0\n", "github.com/a/b", ""},
		{"// comment\nmodule \"example.com/x\" // trailing\n", "example.com/x", ""},
		{"module hearsay\n", "", "no dot"},
		{"go 1.26.0\n", "", "no module line"},
		{"modulex example.com/y\n", "", "no module line"},
	} {
		got, err := modulePath([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("modulePath(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("modulePath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// writeTree writes files (slash paths) under a temporary directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBuildSourceFollowsImports(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"go.mod":                               "module example.com/m\n\ngo 1.26.0\n",
		"go.sum":                               "",
		"bootstrap-cloudfunctions/f.go":        "package f\nimport _ \"example.com/m/lib\"\n",
		"bootstrap-cloudfunctions/f_test.go":   "package f\n",
		"bootstrap-cloudfunctions/f_darwin.go": "package f\n",
		"bootstrap-cloudfunctions/cmd/x/m.go":  "package main\n",
		"lib/lib.go":                           "package lib\nimport _ \"example.com/m/lib/deep\"\n",
		"lib/deep/deep.go":                     "package deep\n",
		"unused/u.go":                          "package unused\n",
	})
	src, err := BuildSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "[bootstrap-cloudfunctions/f.go function.go go.mod go.sum lib/deep/deep.go lib/lib.go]"
	if got := strings.Join(src.Files, " "); "["+got+"]" != want {
		t.Errorf("files %v, want %s", src.Files, want)
	}
}

func TestBuildSourceErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		files map[string]string
		want  string
	}{
		"no go.mod":   {map[string]string{"x.go": "package x\n"}, "go.mod"},
		"no go.sum":   {map[string]string{"go.mod": "module example.com/m\n"}, "go.sum"},
		"dotless":     {map[string]string{"go.mod": "module m\n", "go.sum": ""}, "no dot"},
		"no function": {map[string]string{"go.mod": "module example.com/m\n", "go.sum": ""}, "bootstrap-cloudfunctions"},
		"imports root": {map[string]string{"go.mod": "module example.com/m\n", "go.sum": "", "root.go": "package m\n",
			"bootstrap-cloudfunctions/f.go": "package f\nimport _ \"example.com/m\"\n"}, "root package"},
		"imports main": {map[string]string{"go.mod": "module example.com/m\n", "go.sum": "", "cmd/c/main.go": "package main\n",
			"bootstrap-cloudfunctions/f.go": "package f\nimport _ \"example.com/m/cmd/c\"\n"}, "main package"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := BuildSource(writeTree(t, tc.files))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("BuildSource: %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestFindModuleRoot(t *testing.T) {
	dir := writeTree(t, map[string]string{"go.mod": "module example.com/m\n", "a/b/c.txt": ""})
	got, err := FindModuleRoot(filepath.Join(dir, "a", "b"), "example.com/m")
	if err != nil || got != dir {
		t.Errorf("FindModuleRoot = %q, %v; want %q", got, err, dir)
	}
	if _, err := FindModuleRoot(filepath.Join(dir, "a"), "example.com/other"); err == nil {
		t.Error("FindModuleRoot found a module with another path")
	}
}
