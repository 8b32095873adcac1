package peerster

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func guiRequest(t *testing.T, method, url, ctype, body string, host string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestGUI: the page and its JSON API on the UIPort.
func TestGUI(t *testing.T) {
	g, out := startGossiper(t, func(c *Config) { c.UIAddr = "127.0.0.1:0"; c.GUI = true })
	base := "http://" + g.UIAddr()

	resp, page := guiRequest(t, "GET", base+"/", "", "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %s", resp.Status)
	}
	for _, want := range []string{`id="chat-box"`, `id="node-box"`, `id="id-box"`, ">Send<", ">Add<", ">Change<", `src="app.js"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(page, "<script>") {
		t.Errorf("CSP %q or the page allows inline script", csp)
	}

	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		resp, b := guiRequest(t, "POST", base+path, "application/json", body, "")
		var v map[string]any
		if err := json.Unmarshal([]byte(b), &v); err != nil {
			t.Fatalf("POST %s: %s is not JSON", path, b)
		}
		return resp.StatusCode, v
	}
	get := func(path string) map[string]any {
		t.Helper()
		resp, b := guiRequest(t, "GET", base+path, "", "", "")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET %s: %s %s", path, resp.Status, resp.Header.Get("Content-Type"))
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(b), &v); err != nil {
			t.Fatalf("GET %s: %s is not JSON", path, b)
		}
		return v
	}

	if code, v := post("/message", `{"text":"<b>hi</b>"}`); code != http.StatusOK || v["id"] != float64(1) {
		t.Errorf("POST /message: %d %v", code, v)
	}
	if !out.has("CLIENT MESSAGE <b>hi</b>") {
		t.Errorf("a GUI message is a client message: output %q", out.Lines())
	}
	msgs := get("/message")["messages"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["text"] != "<b>hi</b>" || msgs[0].(map[string]any)["origin"] != "g" {
		t.Errorf("GET /message: %v", msgs)
	}

	if code, _ := post("/node", `{"addr":"127.0.0.1:5999"}`); code != http.StatusOK {
		t.Errorf("POST /node: %d", code)
	}
	if code, _ := post("/node", `{"addr":"nonsense"}`); code != http.StatusBadRequest {
		t.Errorf("POST /node with a bad address: %d, want 400", code)
	}
	if peers := get("/node")["peers"].([]any); !slices.Equal(peers, []any{"127.0.0.1:5999"}) {
		t.Errorf("GET /node: %v", peers)
	}

	if code, _ := post("/id", `{"name":"renamed"}`); code != http.StatusOK {
		t.Errorf("POST /id: %d", code)
	}
	if code, _ := post("/id", `{"name":"two words"}`); code != http.StatusBadRequest {
		t.Errorf("POST /id with a space: %d, want 400", code)
	}
	if name := get("/id")["name"]; name != "renamed" {
		t.Errorf("GET /id: %v", name)
	}
	if code, v := post("/message", `{"text":"after"}`); code != http.StatusOK || v["id"] != float64(1) {
		t.Errorf("the first message of the new name: %d %v, want ID 1", code, v)
	}

	// What a hostile web page could send: a form post, another host
	// (DNS rebinding), an unknown field, a huge body.
	if resp, _ := guiRequest(t, "POST", base+"/message", "application/x-www-form-urlencoded", "text=x", ""); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("form post: %s, want 415", resp.Status)
	}
	if resp, _ := guiRequest(t, "GET", base+"/message", "", "", "evil.example:80"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Host: %s, want 403", resp.Status)
	}
	if code, _ := post("/message", `{"text":"x","extra":1}`); code != http.StatusBadRequest {
		t.Errorf("unknown field: %d, want 400", code)
	}
	if code, _ := post("/message", `{"text":"`+strings.Repeat("x", maxRequestBytes)+`"}`); code != http.StatusBadRequest {
		t.Errorf("huge body: %d, want 400", code)
	}
}

// TestGUIScriptInsertsText: the page's script never parses peer text as
// HTML.
func TestGUIScriptInsertsText(t *testing.T) {
	err := fs.WalkDir(guiFiles, "gui", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := guiFiles.ReadFile(path)
		if err != nil {
			return err
		}
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", " onclick=", " onload="} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s uses %s", path, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
