package main

// countingTransport wraps memberlist's NetTransport: it counts the bytes
// received on UDP packets and TCP streams, and drops a ratio of received
// UDP packets (the fault the loss workload asks for).

import (
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

type countingTransport struct {
	inner *memberlist.NetTransport
	port  int
	drop  float64

	received atomic.Uint64
	dropped  atomic.Uint64

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	done     chan struct{} // closed when Shutdown starts: stop forwarding
	// innerDone is closed once the inner transport has shut down: stop
	// draining.
	innerDone chan struct{}
	wg        sync.WaitGroup
	once      sync.Once
}

var _ memberlist.Transport = (*countingTransport)(nil)

func newCountingTransport(drop float64) (*countingTransport, error) {
	var nt *memberlist.NetTransport
	var err error
	// Port 0 binds TCP first and then UDP on the same port, which can
	// race with other processes: retry as memberlist itself does.
	for range 10 {
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{"127.0.0.1"},
			BindPort:  0,
			Logger:    log.New(io.Discard, "", 0),
		})
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("memberlist transport: %w", err)
	}
	t := &countingTransport{
		inner:     nt,
		port:      nt.GetAutoBindPort(),
		drop:      drop,
		packetCh:  make(chan *memberlist.Packet),
		streamCh:  make(chan net.Conn),
		done:      make(chan struct{}),
		innerDone: make(chan struct{}),
	}
	t.wg.Add(2)
	go t.relayPackets()
	go t.relayStreams()
	return t, nil
}

// relayPackets forwards received packets until the inner transport is
// shut down. After Shutdown starts it keeps draining the inner channel
// (discarding), because the inner transport's listener blocks on that
// unbuffered channel and its Shutdown waits for the listener.
func (t *countingTransport) relayPackets() {
	defer t.wg.Done()
	for {
		select {
		case <-t.innerDone:
			return
		case p := <-t.inner.PacketCh():
			t.received.Add(uint64(len(p.Buf)))
			if t.drop > 0 && rand.Float64() < t.drop {
				t.dropped.Add(1)
				continue
			}
			select {
			case t.packetCh <- p:
			case <-t.done:
			}
		}
	}
}

// relayStreams forwards accepted streams, wrapped to count bytes, with the
// same draining rule as relayPackets.
func (t *countingTransport) relayStreams() {
	defer t.wg.Done()
	for {
		select {
		case <-t.innerDone:
			return
		case c := <-t.inner.StreamCh():
			select {
			case t.streamCh <- &countingConn{Conn: c, n: &t.received}:
			case <-t.done:
				c.Close()
			}
		}
	}
}

func (t *countingTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.inner.WriteTo(b, addr)
}

func (t *countingTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := t.inner.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &t.received}, nil
}

func (t *countingTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown stops the relays and the inner transport. Idempotent.
func (t *countingTransport) Shutdown() error {
	var err error
	t.once.Do(func() {
		close(t.done)
		err = t.inner.Shutdown()
		close(t.innerDone)
		t.wg.Wait()
	})
	return err
}

// countingConn counts the bytes read from a stream.
type countingConn struct {
	net.Conn
	n *atomic.Uint64
}

func (c *countingConn) Read(p []byte) (int, error) {
	k, err := c.Conn.Read(p)
	c.n.Add(uint64(k))
	return k, err
}
