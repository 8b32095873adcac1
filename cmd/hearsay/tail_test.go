package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/api"
)

// cutProxy forwards TCP connections to target until cut closes the ones
// open (new connections still go through): a dropped stream.
type cutProxy struct {
	ln       net.Listener
	target   string
	mu       sync.Mutex
	conns    []net.Conn
	accepted int
	wg       sync.WaitGroup
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.accepted++
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer p.wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestTailResumesAfterADrop: tail's connection to the peer is cut twice
// while messages flow; it reconnects with the last event's ID and prints
// every message exactly once, in order.
func TestTailResumesAfterADrop(t *testing.T) {
	srv := startServer(t, "")
	dir := t.TempDir()
	aliceDir := filepath.Join(dir, "alice")
	alice := spawnPeer(t, srv.URL(), "alice", "--data-dir", aliceDir)
	alice.waitEvent("registered", isSystem("registered as a first contact"))
	c := apiClient(t, aliceDir)

	// tail finds the peer through a data directory that names the proxy.
	proxy := startCutProxy(t, strings.TrimPrefix(c.BaseURL, "http://"))
	viaProxy := t.TempDir()
	writeFile(t, filepath.Join(viaProxy, api.AddrFile), proxy.ln.Addr().String()+"\n")
	writeFile(t, filepath.Join(viaProxy, api.TokenFile), c.Token+"\n")
	os.Chmod(filepath.Join(viaProxy, api.TokenFile), 0o600)

	var out syncWriter
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runTail(ctx, &ioStreams{Out: &out, ErrOut: io.Discard, Getenv: func(string) string { return "" }},
			&tailOpts{profileOpts: profileOpts{dataDir: viaProxy}, json: true})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("tail ended with %v", err)
		}
	})
	waitFor(t, "tail connected", func() bool { return openStreams(t, c) == 1 })

	const n = 30
	printed := func() []string {
		var got []string
		for _, ev := range tailEvents(t, out.String()) {
			if ev.Type == hearsay.EventMessage {
				got = append(got, ev.Text)
			}
		}
		return got
	}
	for i := 1; i <= n; i++ {
		alice.send(fmt.Sprintf("m%d", i))
		if i == 10 || i == 20 {
			waitFor(t, "tail printed some", func() bool { return len(printed()) >= i-5 })
			proxy.cut()
		}
	}
	waitFor(t, "tail printed all", func() bool { return len(printed()) >= n })
	got := printed()
	for i, text := range got {
		if text != fmt.Sprintf("m%d", i+1) {
			t.Fatalf("tail printed %v: want m1…m%d, each once, in order", got, n)
		}
	}
	if len(got) != n {
		t.Errorf("tail printed %d messages, want %d", len(got), n)
	}
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	if proxy.accepted < 3 {
		t.Errorf("%d connections through the proxy: tail did not reconnect twice", proxy.accepted)
	}
}
