package chat

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func newTestMLNet(t *testing.T) *mlNetTransport {
	t.Helper()
	tr, err := newMLNetTransport("127.0.0.1", 0, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown() })
	return tr
}

// sendUntil resends msg to tr's UDP port until a packet comes out of
// PacketCh (UDP may lose one), and returns it.
func sendUntil(t *testing.T, tr *mlNetTransport, c net.Conn, msg []byte) *memberlist.Packet {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-tr.PacketCh():
			return p
		case <-tick.C:
		case <-deadline:
			t.Fatal("no packet within 10 s")
		}
	}
}

// A packet comes out in a buffer of its own size, from its sender, and
// streams are accepted and dialed.
func TestMLNetTransportPacketsAndStreams(t *testing.T) {
	tr := newTestMLNet(t)
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(tr.Port()))
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := []byte("a hundred bytes of gossip, or so")
	p := sendUntil(t, tr, c, msg)
	if !bytes.Equal(p.Buf, msg) {
		t.Fatalf("packet %q, want %q", p.Buf, msg)
	}
	if cap(p.Buf) != len(msg) {
		t.Fatalf("a %d-byte packet holds a buffer of %d bytes", len(p.Buf), cap(p.Buf))
	}
	if p.From.String() != c.LocalAddr().String() {
		t.Fatalf("packet from %s, want %s", p.From, c.LocalAddr())
	}

	// The largest UDP payload over IPv4 (65,535 less the IP and UDP
	// headers) is read whole.
	big := bytes.Repeat([]byte{7}, 65507)
	for p = sendUntil(t, tr, c, big); len(p.Buf) != len(big); p = sendUntil(t, tr, c, big) {
		// a resent small packet still in flight: take the next
	}
	if !bytes.Equal(p.Buf, big) {
		t.Fatal("the largest packet came out changed")
	}

	// Packets out: WriteTo reaches a UDP socket.
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := tr.WriteToAddress([]byte("out"), memberlist.Address{Addr: ln.LocalAddr().String()}); err != nil {
		t.Fatal(err)
	}
	_ = ln.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 16)
	n, _, err := ln.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "out" {
		t.Fatalf("WriteTo: read %q, %v; want \"out\"", buf[:n], err)
	}

	// Streams: one dialed by the transport to itself comes out of StreamCh.
	out, err := tr.DialAddressTimeout(memberlist.Address{Addr: addr}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	select {
	case in := <-tr.StreamCh():
		defer in.Close()
		if in.RemoteAddr().String() != out.LocalAddr().String() {
			t.Fatalf("accepted %s, want %s", in.RemoteAddr(), out.LocalAddr())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no stream accepted")
	}

	ip, port, err := tr.FinalAdvertiseAddr("", 0)
	if err != nil || !ip.Equal(net.IPv4(127, 0, 0, 1)) || port != tr.Port() {
		t.Fatalf("FinalAdvertiseAddr: %v %d %v, want 127.0.0.1 %d", ip, port, err, tr.Port())
	}
	if ip, port, err = tr.FinalAdvertiseAddr("10.1.2.3", 7946); err != nil || len(ip) != 4 || port != 7946 {
		t.Fatalf("FinalAdvertiseAddr given: %v %d %v, want 10.1.2.3 (4 bytes) 7946", ip, port, err)
	}
}

// A transport waiting for packets holds no read buffer, and a packet of a
// hundred bytes allocates about its size: memberlist's NetTransport held
// 64 KB per transport and allocated 64 KB per packet (35 % of all the bytes
// allocated by a bench of 100 peers).
func TestMLNetTransportMemory(t *testing.T) {
	const transports = 20
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	trs := make([]*mlNetTransport, transports)
	for i := range trs {
		trs[i] = newTestMLNet(t)
	}
	perIdle := (int64(heap()) - int64(before)) / transports
	t.Logf("an idle transport holds %d bytes of heap", perIdle)
	if perIdle > 16<<10 {
		t.Errorf("an idle transport holds %d KB of heap, want at most 16 KB", perIdle>>10)
	}

	tr := trs[0]
	c, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", fmt.Sprint(tr.Port())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte{1}, 100)
	sendUntil(t, tr, c, msg) // the path is warm, udpBufs holds a buffer
	const packets = 200
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	got := 0
	for got < packets {
		p := sendUntil(t, tr, c, msg)
		if len(p.Buf) == len(msg) {
			got++
		}
	}
	runtime.ReadMemStats(&ms1)
	per := (ms1.TotalAlloc - ms0.TotalAlloc) / packets
	t.Logf("%d bytes allocated per 100-byte packet", per)
	if per > 8<<10 {
		t.Errorf("%d bytes allocated per 100-byte packet, want at most 8 KB", per)
	}
}

// Shutdown returns while a packet and a stream wait for a reader that is
// gone (memberlist stops reading once its own Shutdown returns): both
// loops have a packet or a stream in hand and have started to hand it
// over, which nobody takes, when Shutdown is called.
func TestMLNetTransportShutdownWithPending(t *testing.T) {
	tr, err := listenMLNet("127.0.0.1", 0, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	handoffs := make(chan string, 2)
	tr.handoff = func(what string) { handoffs <- what }
	tr.start()
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(tr.Port()))
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 10 { // loopback drops none as a rule; one that arrives is enough
		_, _ = c.Write([]byte("nobody reads this"))
	}
	// Each loop hands over one and blocks there: the hook runs once per
	// loop, and the channel holds both.
	pending := map[string]bool{}
	for len(pending) < 2 {
		select {
		case what := <-handoffs:
			pending[what] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("loops in the hand-off after 10 s: %v, want a packet and a stream", pending)
		}
	}
	done := make(chan error, 1)
	go func() { done <- tr.Shutdown() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown blocked on a packet or stream nobody reads")
	}
	if err := tr.Shutdown(); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
}
