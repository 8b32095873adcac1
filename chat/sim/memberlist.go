package sim

// memberlist in process. Each peer's memberlist talks through an mlTransport
// on the simulation's mlNet instead of UDP and TCP sockets: a packet is
// handed to the destination's packet channel, a stream is one end of a
// net.Pipe. memberlist ships a MockNetwork for this, but it cannot carry a
// crash and a restart: its address maps are not locked (a restart adds a
// transport while others look theirs up), its packet channels are
// unbuffered and its Shutdown does nothing, so a packet to a crashed peer
// blocks its sender forever. This one locks its maps, loses a packet when
// the destination is gone, cut off (partition) or its buffer is full, as
// UDP would, and refuses a stream across a cut or to a closed transport.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// mlPacketBuffer is how many packets wait for a peer's memberlist to read
// them; more are lost (UDP's socket buffer).
const mlPacketBuffer = 1024

// mlNet connects the memberlist transports of one simulation by address.
type mlNet struct {
	// cut reports whether traffic from the peer named from to the peer
	// named to (memberlist node names: peer IDs) is cut.
	cut func(from, to string) bool

	mu     sync.Mutex
	port   int
	byAddr map[string]*mlTransport
	lost   uint64 // packets lost to cuts, gone peers and full buffers
}

func newMLNet(cut func(from, to string) bool) *mlNet {
	return &mlNet{cut: cut, byAddr: make(map[string]*mlTransport)}
}

// listen creates a transport for the node named name at a new address.
func (nw *mlNet) listen(name string) *mlTransport {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.port++
	t := &mlTransport{
		nw:      nw,
		name:    name,
		port:    nw.port,
		addr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(nw.port)),
		packets: make(chan *memberlist.Packet, mlPacketBuffer),
		streams: make(chan net.Conn),
		done:    make(chan struct{}),
	}
	nw.byAddr[t.addr] = t
	return t
}

func (nw *mlNet) lookup(addr string) *mlTransport {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.byAddr[addr]
}

func (nw *mlNet) countLost() {
	nw.mu.Lock()
	nw.lost++
	nw.mu.Unlock()
}

// Lost returns how many memberlist packets were lost.
func (nw *mlNet) Lost() uint64 {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.lost
}

// mlTransport is one peer's memberlist transport. Its address looks like
// a 127.0.0.1 socket (memberlist parses it) but no socket is bound.
type mlTransport struct {
	nw      *mlNet
	name    string
	port    int
	addr    string
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
}

var _ memberlist.NodeAwareTransport = (*mlTransport)(nil)

func (t *mlTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return net.IPv4(127, 0, 0, 1), t.port, nil
}

func (t *mlTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress never blocks: a packet that cannot be delivered now is
// lost.
func (t *mlTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	dest := t.nw.lookup(a.Addr)
	if dest == nil || t.nw.cut(t.name, dest.name) {
		t.nw.countLost()
		return now, nil
	}
	p := &memberlist.Packet{Buf: bytes.Clone(b), From: mlAddr(t.addr), Timestamp: now}
	select {
	case <-dest.done:
		t.nw.countLost()
	case dest.packets <- p:
	default:
		t.nw.countLost()
	}
	return now, nil
}

func (t *mlTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *mlTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream unless the destination is gone or cut
// off in either direction (a TCP handshake needs both). A stream already
// open when a cut starts keeps working: memberlist's streams are short
// (push/pull, fallback probes) and bounded by its TCP timeout.
func (t *mlTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	dest := t.nw.lookup(a.Addr)
	if dest == nil {
		return nil, fmt.Errorf("dial %s: connection refused", a.Addr)
	}
	if t.nw.cut(t.name, dest.name) || t.nw.cut(dest.name, t.name) {
		return nil, fmt.Errorf("dial %s: no route to host (partitioned)", a.Addr)
	}
	ours, theirs := net.Pipe()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case dest.streams <- theirs:
		return ours, nil
	case <-dest.done:
	case <-t.done:
	case <-timer.C:
	}
	ours.Close()
	theirs.Close()
	return nil, fmt.Errorf("dial %s: connection refused", a.Addr)
}

func (t *mlTransport) StreamCh() <-chan net.Conn { return t.streams }

// IngestPacket and IngestStream let memberlist hand traffic it received
// elsewhere to this transport (NodeAwareTransport), as MockTransport does.
func (t *mlTransport) IngestPacket(conn net.Conn, addr net.Addr, now time.Time, shouldClose bool) error {
	if shouldClose {
		defer conn.Close()
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, conn); err != nil {
		return fmt.Errorf("read packet: %w", err)
	}
	if buf.Len() < 1 {
		return fmt.Errorf("packet too short (%d bytes) from %s", buf.Len(), addr)
	}
	select {
	case t.packets <- &memberlist.Packet{Buf: buf.Bytes(), From: addr, Timestamp: now}:
	case <-t.done:
	}
	return nil
}

func (t *mlTransport) IngestStream(conn net.Conn) error {
	select {
	case t.streams <- conn:
		return nil
	case <-t.done:
		conn.Close()
		return fmt.Errorf("ingest stream: transport shut down")
	}
}

// Shutdown takes the transport off the network: packets to it are lost
// and streams to it refused from now on. Idempotent.
func (t *mlTransport) Shutdown() error {
	t.once.Do(func() {
		close(t.done)
		t.nw.mu.Lock()
		if t.nw.byAddr[t.addr] == t {
			delete(t.nw.byAddr, t.addr)
		}
		t.nw.mu.Unlock()
	})
	return nil
}

// mlAddr is a packet's source address.
type mlAddr string

func (a mlAddr) Network() string { return "sim" }
func (a mlAddr) String() string  { return string(a) }
