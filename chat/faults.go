package chat

// Fault injection, for tests and experiments only: it is off unless
// Config.Faults is set, and then it can be changed at run time. The chat
// streams get it from the transport decorator transport.WithFaults, and
// memberlist's traffic from faultTransport below; one transport.Injector
// drives both.
//
//   - Outgoing chat frames may be dropped (DropRatio) and delayed (Delay
//     plus a uniform Jitter, which reorders frames: each stream sends its
//     delayed frames in due-time order, not queue order).
//   - Partition cuts this node off from named peers: chat frames to and
//     from them are dropped, and so are memberlist packets to and from
//     their memberlist addresses and streams this node opens to them.
//     Incoming memberlist TCP streams cannot be attributed to a peer (they
//     come from ephemeral ports), so a full partition between A and B is
//     made by calling Partition on both sides.
//
// Everything dropped here is counted in Stats.FaultDrops.

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/hearsay-chat/hearsay/chat/transport"
)

// Faults describes the faults a node injects in its own traffic.
type Faults struct {
	// DropRatio is the probability (0 to 1) that an outgoing chat frame is
	// lost.
	DropRatio float64 `json:"drop_ratio"`
	// Delay is added to every outgoing chat frame.
	Delay Duration `json:"delay"`
	// Jitter adds a uniform random delay in [0, Jitter) per frame.
	Jitter Duration `json:"jitter"`
	// Seed seeds the random choices; 0 picks a random seed.
	Seed int64 `json:"seed"`
}

func (f Faults) validate() error {
	if f.DropRatio < 0 || f.DropRatio > 1 || f.DropRatio != f.DropRatio {
		return fmt.Errorf("fault drop ratio %v: want 0 to 1", f.DropRatio)
	}
	if f.Delay < 0 || f.Jitter < 0 {
		return errors.New("fault delay and jitter must not be negative")
	}
	if f.Delay > Duration(time.Minute) || f.Jitter > Duration(time.Minute) {
		return errors.New("fault delay and jitter must be at most a minute")
	}
	return nil
}

// ErrNoFaults: fault injection was not enabled in the Config.
var ErrNoFaults = errors.New("fault injection is not enabled (set Config.Faults)")

// settings converts f to the transport's fault settings.
func (f Faults) settings() transport.FaultSettings {
	return transport.FaultSettings{DropRatio: f.DropRatio, Delay: time.Duration(f.Delay), Jitter: time.Duration(f.Jitter), Seed: f.Seed}
}

// SetFaults replaces the drop ratio, delay and jitter at run time. It
// fails with ErrNoFaults unless Config.Faults was set.
func (n *Node) SetFaults(f Faults) error {
	if n.faults == nil {
		return ErrNoFaults
	}
	if err := f.validate(); err != nil {
		return err
	}
	n.faults.Set(f.settings())
	return nil
}

// Partition cuts this node off from the given peers (peer IDs, nicks or
// display names of live members), adding to any partition in force. See
// the file comment for what is cut.
func (n *Node) Partition(peers ...string) error {
	if n.faults == nil {
		return ErrNoFaults
	}
	var ms []*memberInfo
	for _, p := range peers {
		m, err := n.resolvePeer(p)
		if err != nil {
			return fmt.Errorf("partition: %w", err)
		}
		ms = append(ms, m)
	}
	for _, m := range ms {
		n.faults.Partition(m.ID, m.Addr)
	}
	return nil
}

// Heal ends every partition made with Partition.
func (n *Node) Heal() error {
	if n.faults == nil {
		return ErrNoFaults
	}
	n.faults.Heal()
	return nil
}

// Partitioned returns the peer IDs this node is cut off from, sorted.
func (n *Node) Partitioned() []string { return n.faults.Partitioned() }

// faultTransport wraps the memberlist network transport (mlnet.go) to cut partitioned
// peers' packets and outgoing streams (the chat transport has its own
// decorator, transport.WithFaults, driven by the same injector). Only used when Config.Faults is set.
type faultTransport struct {
	*mlNetTransport
	n       *Node
	packets chan *memberlist.Packet
	done    chan struct{}
	once    sync.Once
}

var _ memberlist.NodeAwareTransport = (*faultTransport)(nil)

func newFaultTransport(n *Node, nt *mlNetTransport) (*faultTransport, error) {
	t := &faultTransport{mlNetTransport: nt, n: n, packets: make(chan *memberlist.Packet, 64), done: make(chan struct{})}
	if !n.spawn(t.pump) {
		return nil, ErrShutdown
	}
	return t, nil
}

// pump forwards incoming packets, dropping those from partitioned peers.
func (t *faultTransport) pump() {
	in := t.mlNetTransport.PacketCh()
	for {
		select {
		case p := <-in:
			if t.n.faults.BlocksAddr(p.From.String()) {
				t.n.faults.CountDrop()
				continue
			}
			select {
			case t.packets <- p:
			case <-t.done:
				return
			}
		case <-t.done:
			return
		}
	}
}

func (t *faultTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *faultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.n.faults.BlocksAddr(addr) {
		t.n.faults.CountDrop()
		return time.Now(), nil // lost on the way, as UDP would
	}
	return t.mlNetTransport.WriteTo(b, addr)
}

func (t *faultTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

func (t *faultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.n.faults.BlocksAddr(addr) {
		t.n.faults.CountDrop()
		return nil, fmt.Errorf("dial %s: partitioned (fault injection)", addr)
	}
	return t.mlNetTransport.DialTimeout(addr, timeout)
}

func (t *faultTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// Shutdown stops the wrapped transport first and the pump after, so no
// packet the transport hands over is left in its hands (memberlist's own
// reader keeps reading ours until after Shutdown).
func (t *faultTransport) Shutdown() error {
	err := t.mlNetTransport.Shutdown()
	t.once.Do(func() { close(t.done) })
	return err
}
