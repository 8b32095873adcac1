package chat

// memberlist's network transport (UDP packets and TCP streams on one
// port), in place of memberlist.NetTransport. That one reads every UDP
// packet into a fresh 64 KB buffer: 35 % of all the bytes 100 peers in one
// process allocated (a heap profile of `hearsay bench --peers 100
// --workload cost`), every byte of it garbage a moment later for a packet
// of a few hundred bytes, and each node held one such buffer, waiting, for
// its life. This transport waits for a packet without a buffer (on unix:
// the socket's readiness, mlnet_unix.go), reads it into a 64 KB buffer
// shared by all the transports of the process (udpBufs), and hands
// memberlist a copy of the packet's own size. Streams are what
// NetTransport's are: accepted and dialed TCP connections, which the
// guard (mltransport.go) screens.

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

// maxUDPPacket is the size of a read buffer: no UDP payload is larger
// (65,507 bytes over IPv4, 65,527 over IPv6), so a read never truncates a
// packet.
const maxUDPPacket = 65535

// udpRecvBuffer is the socket receive buffer asked of the kernel (it may
// grant less): a burst of gossip waits there while memberlist is busy,
// as with NetTransport.
const udpRecvBuffer = 2 << 20

// udpBufs holds the buffers packets are read into, shared by the
// transports of the process: a buffer is taken for one read only, so a
// few serve them all (reads run at most GOMAXPROCS at a time). A channel,
// not a sync.Pool: the collector empties a pool, and one of 64 KB buffers
// made again after each collection was much of what this replaces.
var udpBufs = make(chan *[]byte, 8)

// getUDPBuf returns a buffer of maxUDPPacket bytes.
func getUDPBuf() *[]byte {
	select {
	case b := <-udpBufs:
		return b
	default:
		b := make([]byte, maxUDPPacket)
		return &b
	}
}

// putUDPBuf gives b back for the next read; beyond the few kept, it is
// garbage.
func putUDPBuf(b *[]byte) {
	select {
	case udpBufs <- b:
	default:
	}
}

// mlNetTransport is a memberlist.NodeAwareTransport on one TCP listener
// and one UDP socket bound to the same port. Safe for concurrent use.
type mlNetTransport struct {
	tcp     *net.TCPListener
	udp     *net.UDPConn
	raw     syscall.RawConn // udp's, taken once: SyscallConn allocates
	packets chan *memberlist.Packet
	streams chan net.Conn
	logger  interface{ Printf(string, ...any) }

	done chan struct{} // closed by Shutdown
	once sync.Once
	wg   sync.WaitGroup

	// handoff, when set before start, is called by a loop with "packet"
	// or "stream" as it starts to hand one over to memberlist: a test
	// hook, so a test can shut down with both loops in the hand-off.
	handoff func(what string)
}

var _ memberlist.NodeAwareTransport = (*mlNetTransport)(nil)

// newMLNetTransport listens on host:port, TCP and UDP (port 0: a port the
// kernel picks for TCP, and the same for UDP, which may be taken: the
// caller retries), and starts the goroutines that read them; Shutdown
// stops them.
func newMLNetTransport(host string, port int, logger interface{ Printf(string, ...any) }) (*mlNetTransport, error) {
	t, err := listenMLNet(host, port, logger)
	if err != nil {
		return nil, err
	}
	t.start()
	return t, nil
}

// listenMLNet is newMLNetTransport without the goroutines: start starts
// them.
func listenMLNet(host string, port int, logger interface{ Printf(string, ...any) }) (*mlNetTransport, error) {
	ip := net.ParseIP(host)
	if host != "" && ip == nil {
		return nil, fmt.Errorf("memberlist bind address %q is not an IP address", host)
	}
	tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, fmt.Errorf("listen tcp: %w", err)
	}
	port = tcp.Addr().(*net.TCPAddr).Port
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("listen udp: %w", err)
	}
	for size := udpRecvBuffer; size > 0; size /= 2 {
		if udp.SetReadBuffer(size) == nil {
			break
		}
	}
	raw, err := udp.SyscallConn()
	if err != nil {
		tcp.Close()
		udp.Close()
		return nil, fmt.Errorf("udp socket: %w", err)
	}
	t := &mlNetTransport{tcp: tcp, udp: udp, raw: raw, packets: make(chan *memberlist.Packet), streams: make(chan net.Conn),
		logger: logger, done: make(chan struct{})}
	return t, nil
}

// start starts the goroutines that read the listeners.
func (t *mlNetTransport) start() {
	t.wg.Add(2)
	go t.acceptLoop()
	go t.packetLoop()
}

// Port returns the port both listeners are bound to.
func (t *mlNetTransport) Port() int { return t.tcp.Addr().(*net.TCPAddr).Port }

// FinalAdvertiseAddr returns ip and port when ip is given, else the bound
// address, which must not be unspecified (Start always gives one: the
// advertise host).
func (t *mlNetTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip == "" {
		a := t.tcp.Addr().(*net.TCPAddr)
		if a.IP.IsUnspecified() {
			return nil, 0, errors.New("memberlist bound to an unspecified address: an advertise address is needed")
		}
		return a.IP, a.Port, nil
	}
	addr := net.ParseIP(ip)
	if addr == nil {
		return nil, 0, fmt.Errorf("advertise address %q is not an IP address", ip)
	}
	if v4 := addr.To4(); v4 != nil {
		addr = v4
	}
	return addr, port, nil
}

// WriteTo sends a packet to addr (host:port).
func (t *mlNetTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return time.Time{}, err
	}
	_, err = t.udp.WriteTo(b, ua)
	return time.Now(), err
}

// WriteToAddress is WriteTo for a memberlist address.
func (t *mlNetTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

// PacketCh returns the packets received, each in a buffer of its size.
func (t *mlNetTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// StreamCh returns the accepted streams.
func (t *mlNetTransport) StreamCh() <-chan net.Conn { return t.streams }

// DialTimeout opens a stream to addr (host:port).
func (t *mlNetTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", addr)
}

// DialAddressTimeout is DialTimeout for a memberlist address.
func (t *mlNetTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// Shutdown closes the listeners and waits for the goroutines reading
// them. A goroutine blocked handing over a packet or a stream returns
// too (memberlist stops reading PacketCh and StreamCh once its Shutdown
// returns, NetTransport's loops could block there). Idempotent.
func (t *mlNetTransport) Shutdown() error {
	t.once.Do(func() {
		close(t.done)
		_ = t.tcp.Close()
		_ = t.udp.Close()
	})
	t.wg.Wait()
	return nil
}

func (t *mlNetTransport) stopping() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// acceptLoop hands each accepted connection to StreamCh. An accept error
// other than the listener's closing (out of descriptors) is retried after
// a pause that doubles up to a second.
func (t *mlNetTransport) acceptLoop() {
	defer t.wg.Done()
	var pause time.Duration
	for {
		c, err := t.tcp.AcceptTCP()
		if err != nil {
			if t.stopping() || errors.Is(err, net.ErrClosed) {
				return
			}
			if !t.pauseAfter(&pause, "memberlist accept", err) {
				return
			}
			continue
		}
		pause = 0
		if t.handoff != nil {
			t.handoff("stream")
		}
		select {
		case t.streams <- c:
		case <-t.done:
			c.Close()
			return
		}
	}
}

// pauseAfter logs err and waits *pause, doubled from the last one (5 ms
// up to a second); false if the transport shuts down meanwhile.
func (t *mlNetTransport) pauseAfter(pause *time.Duration, what string, err error) bool {
	*pause = min(max(2**pause, 5*time.Millisecond), time.Second)
	t.logger.Printf("%s: %v; retrying in %v", what, err, *pause)
	select {
	case <-time.After(*pause):
		return true
	case <-t.done:
		return false
	}
}

// packetLoop hands each packet received to PacketCh.
func (t *mlNetTransport) packetLoop() {
	defer t.wg.Done()
	var pause time.Duration
	for {
		p, err := t.readPacket()
		if err != nil {
			if t.stopping() || errors.Is(err, net.ErrClosed) {
				return
			}
			// A read error on UDP mostly concerns one packet (an ICMP
			// error reported on the socket): the next read goes on. One
			// that persists (out of buffers) must not spin a core and
			// flood the log: the pause doubles up to a second.
			if !t.pauseAfter(&pause, "memberlist udp read", err) {
				return
			}
			continue
		}
		pause = 0
		if p == nil {
			continue // an empty packet
		}
		if t.handoff != nil {
			t.handoff("packet")
		}
		select {
		case t.packets <- p:
		case <-t.done:
			return
		}
	}
}

// packetOf copies what a read put in buf into a packet of its own size;
// nil for an empty packet (memberlist would refuse it). memberlist queues
// the alive, suspect, dead and user messages of a packet for its handler
// as slices of the packet's buffer, up to HandoffQueueDepth (1,024) per
// queue: a peer slow to handle them (200 peers starting on 2 cores, each
// join gossiped to all) would hold a buffer larger than the packet per
// message of a hundred bytes. The stream guard (mltransport.go) passes
// packets on as they are: this is the one place their size is set.
func packetOf(buf []byte, from net.Addr) *memberlist.Packet {
	if len(buf) == 0 {
		return nil
	}
	// make and copy, not append: append rounds the capacity up to a size
	// class.
	b := make([]byte, len(buf))
	copy(b, buf)
	return &memberlist.Packet{Buf: b, From: from, Timestamp: time.Now()}
}
