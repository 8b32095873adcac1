package api

// The web UI: static files embedded in the binary (no CDN, no build step),
// served at / without the token (they hold no data). The page reads the
// token from its URL's fragment (#token=…), which browsers never send to
// the server, and calls /v1/ with it in the Authorization header; it
// inserts every peer-written string with textContent, and the
// Content-Security-Policy (secureHeaders) allows no inline script.

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed web
var webFiles embed.FS

func webHandler() http.Handler {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, Errorf(ECodeMethod, "%s is not allowed on %s", r.Method, r.URL.Path))
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
