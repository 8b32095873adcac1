package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// chromiumPath finds Debian's chromium. Its absence fails the test: CI
// installs it (.ci/run), so a missing browser is a broken machine, not a
// reason to skip.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: install Debian's chromium (apt-get install chromium; .ci/run does) to run the web UI test")
	return ""
}

// browser is one headless chromium showing one peer's web UI.
type browser struct {
	t    *testing.T
	name string
	ctx  context.Context
}

func openBrowserTest(t *testing.T, exe, name, url string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.WindowSize(1200, 720), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browser{t: t, name: name, ctx: ctx}
	// The first run starts the browser and must not carry a deadline.
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("%s: open %s: %v", name, strings.Split(url, "#")[0], err)
	}
	return b
}

// do runs actions with a deadline. The first call starts the browser,
// so its context has no deadline of its own (a deadline on it would stop
// the browser when it passed); later calls derive one.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %s: %v", b.name, what, err)
	}
}

// eval evaluates a JavaScript expression into T.
func eval[T any](b *browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// waitJS polls a boolean JavaScript expression until it holds.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	var last error
	if !chattest.Poll(45*time.Second, func() bool {
		var ok bool
		ok, last = eval[bool](b, expr)
		return last == nil && ok
	}) {
		html, _ := eval[string](b, `document.body.outerHTML`)
		b.t.Fatalf("%s: timed out waiting for %s (%s) (last error %v); page:\n%s", b.name, what, expr, last, html)
	}
}

// clickJS clicks the element a selector finds, in the page in one step,
// polled until there is one. The page redraws some lists whole (the rooms,
// the members), so a click that finds a node first and clicks it in a
// second call to the browser may find it gone in between.
func (b *browser) clickJS(what, selector string) {
	b.t.Helper()
	b.waitJS(what, fmt.Sprintf(`(() => { const el = document.querySelector(%s); if (!el) return false; el.click(); return true })()`, strconv.Quote(selector)))
}

// submit types text into an input and presses the form's button.
func (b *browser) submit(input, button, text string) {
	b.t.Helper()
	b.do("type into "+input, chromedp.SetValue(chromedp.CSS(input), text), chromedp.Click(chromedp.CSS(button)))
}

// shows is the JavaScript test that the chat shows a message with this
// exact text (and sender, when from is not empty).
func shows(from, text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#chat li.msg')].some(li => li.querySelector('.text').textContent === %s && (%s === '' || li.querySelector('.from').textContent === %s))`,
		strconv.Quote(text), strconv.Quote(from), strconv.Quote(from))
}

func webURL(t *testing.T, dataDir string) string {
	t.Helper()
	c := apiClient(t, dataDir)
	return c.BaseURL + "/#token=" + c.Token
}

// TestWebUIInBrowser drives the web UI of two peers in two headless
// chromium browsers, with a third peer in the terminal: a message typed in
// one browser shows in the other and in the terminal; a nick changed in a
// browser shows everywhere; a peer's message made of HTML and script is
// shown as text and runs nothing. HEARSAY_WEB_SCREENSHOT=FILE saves a
// screenshot of the page (docs/web-ui.png comes from it).
func TestWebUIInBrowser(t *testing.T) {
	exe := chromiumPath(t)
	srv := startServer(t, "")
	dir := t.TempDir()
	aliceDir, bobDir := filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	alice := spawnPeer(t, srv.URL(), "alice", "--data-dir", aliceDir)
	alice.waitEvent("registered", isSystem("registered as a first contact"))
	bob := spawnPeer(t, srv.URL(), "bob", "--data-dir", bobDir)
	carol := spawnPeer(t, srv.URL(), "carol", "--api", "off") // the terminal peer
	for _, p := range []*testPeer{alice, bob, carol} {
		waitFor(t, p.nick+" sees two joins", func() bool {
			return p.count(func(ev hearsay.Event) bool { return ev.Type == hearsay.EventJoin }) >= 2
		})
	}
	aliceID := apiSelfID(t, aliceDir)

	ba := openBrowserTest(t, exe, "alice's browser", webURL(t, aliceDir))
	bb := openBrowserTest(t, exe, "bob's browser", webURL(t, bobDir))
	for _, b := range []*browser{ba, bb} {
		b.waitJS("live", `document.getElementById('status').textContent === 'live'`)
		b.waitJS("three alive members", `[...document.querySelectorAll('#members .state')].filter(s => s.textContent.startsWith('alive')).length === 3`)
		b.waitJS("the token left the address bar", `!location.hash.includes('token')`)
	}
	ba.waitJS("alice's ID", `document.getElementById('self-id').textContent === `+strconv.Quote(aliceID))

	// A message typed in alice's browser.
	ba.submit("#send-text", "#send-button", "hello from alice's browser")
	bb.waitJS("alice's message", shows("alice", "hello from alice's browser"))
	ba.waitJS("alice's own message", shows("alice", "hello from alice's browser"))
	carol.waitEvent("alice's message in the terminal", func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventMessage && ev.Text == "hello from alice's browser" && ev.From == "alice"
	})
	// And the terminal's answer in both browsers.
	carol.send("hello from carol's terminal")
	ba.waitJS("carol's message", shows("carol", "hello from carol's terminal"))
	bb.waitJS("carol's message", shows("carol", "hello from carol's terminal"))

	// bob changes his nick in his browser.
	bb.do("clear the nick", chromedp.Clear(chromedp.CSS("#nick-input")))
	bb.submit("#nick-input", "#nick-change", "bobby")
	bb.waitJS("bob's nick box", `document.getElementById('nick-input').value === 'bobby'`)
	bb.waitJS("bobby as bob's own member entry", `[...document.querySelectorAll('#members li')].some(li => li.querySelector('.nick').textContent === 'bobby' && li.querySelector('.state').textContent.endsWith('(you)'))`)
	ba.waitJS("bobby among alice's members", `[...document.querySelectorAll('#members .nick')].some(n => n.textContent === 'bobby')`)
	ba.waitJS("the nick change line", `[...document.querySelectorAll('#chat li.system')].some(li => li.textContent.includes('bob is now bobby'))`)
	carol.waitEvent("bob's nick change in the terminal", func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventNick && ev.From == "bobby" && ev.Text == "bob"
	})
	bb.submit("#send-text", "#send-button", "now I am bobby")
	ba.waitJS("bobby's message", shows("bobby", "now I am bobby"))
	carol.waitEvent("bobby's message in the terminal", func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventMessage && ev.From == "bobby" && ev.Text == "now I am bobby"
	})

	// A peer's message made of markup: shown as text, runs nothing.
	evil := `<img src=x onerror="window.pwned=1;document.title='pwned'"><script>window.pwned=2</script><b>bold</b>`
	carol.send(evil)
	for _, b := range []*browser{ba, bb} {
		b.waitJS("the markup as text", shows("carol", evil))
		type result struct {
			Elements int    `json:"elements"`
			Pwned    bool   `json:"pwned"`
			Title    string `json:"title"`
			HTML     string `json:"html"`
		}
		res, err := eval[result](b, `({elements: document.querySelectorAll('#chat img, #chat script, #chat b').length,
			pwned: window.pwned !== undefined, title: document.title, html: document.getElementById('chat').innerHTML})`)
		if err != nil {
			t.Fatal(err)
		}
		if res.Elements != 0 || res.Pwned || res.Title != "hearsay" || !strings.Contains(res.HTML, "&lt;img src=x onerror=") {
			t.Errorf("%s rendered a peer's markup: %+v", b.name, res)
		}
	}

	// Join a room from the browser and talk in it.
	ba.submit("#join-input", "#join-button", "#web")
	ba.waitJS("#web is open", `document.getElementById('chat-title').textContent === '#web'`)
	ba.submit("#send-text", "#send-button", "in #web")
	ba.waitJS("the #web message", shows("alice", "in #web"))

	// Add a node: dave runs alone, in a group of his own (another
	// bootstrap service); alice adds his contact address in her browser.
	daveDir := filepath.Join(dir, "dave")
	dave := spawnPeer(t, startServer(t, "").URL(), "dave", "--data-dir", daveDir)
	dave.waitEvent("registered", isSystem("registered as a first contact"))
	daveSelf, err := apiClient(t, daveDir).Self(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ba.submit("#contact-input", "#contact-add", daveSelf.Addr)
	ba.waitJS("dave among alice's members", `[...document.querySelectorAll('#members li')].some(li => li.querySelector('.nick').textContent === 'dave' && li.querySelector('.state').textContent === 'alive')`)
	dave.waitEvent("alice joins dave", func(ev hearsay.Event) bool { return ev.Type == hearsay.EventJoin && ev.From == "alice" })

	ba.clickJS("back to the lobby", `#rooms li[data-room="lobby"]`)
	ba.waitJS("the lobby again", shows("bobby", "now I am bobby"))
	sctx, cancel := context.WithTimeout(ba.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("the screenshot is not a PNG")
	}
	if out := os.Getenv("HEARSAY_WEB_SCREENSHOT"); out != "" {
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func apiSelfID(t *testing.T, dataDir string) string {
	t.Helper()
	s, err := apiClient(t, dataDir).Self(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.ID
}
