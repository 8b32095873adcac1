package chat

// Fault injection, for tests and experiments only: it is off unless
// Config.Faults is set, and then it can be changed at run time.
//
//   - Outgoing chat frames may be dropped (DropRatio) and delayed (Delay
//     plus a uniform Jitter, which reorders frames: each peer connection
//     sends its frames in due-time order, not queue order).
//   - Partition cuts this node off from named peers: chat frames to and
//     from them are dropped, and so are memberlist packets to and from
//     their memberlist addresses and streams this node opens to them.
//     Incoming memberlist TCP streams cannot be attributed to a peer (they
//     come from ephemeral ports), so a full partition between A and B is
//     made by calling Partition on both sides.
//
// Everything dropped here is counted in Stats.FaultDrops.

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
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

// faultState is the node's current faults. Safe for concurrent use.
type faultState struct {
	mu      sync.Mutex
	f       Faults
	rng     *rand.Rand
	blocked map[string]string // peer ID -> its memberlist address when known
}

func newFaultState(f Faults) *faultState {
	seed := f.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	return &faultState{f: f, rng: rand.New(rand.NewSource(seed)), blocked: make(map[string]string)}
}

// outgoing decides the fate of one frame to peer: dropped, or sent after
// delay.
func (s *faultState) outgoing(peer string) (drop bool, delay time.Duration) {
	if s == nil {
		return false, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blocked[peer]; ok {
		return true, 0
	}
	if s.f.DropRatio > 0 && s.rng.Float64() < s.f.DropRatio {
		return true, 0
	}
	delay = time.Duration(s.f.Delay)
	if s.f.Jitter > 0 {
		delay += time.Duration(s.rng.Int63n(int64(s.f.Jitter)))
	}
	return false, delay
}

// blocks reports whether traffic with peer is cut.
func (s *faultState) blocks(peer string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.blocked[peer]
	return ok
}

// blocksAddr reports whether a memberlist address belongs to a cut peer.
func (s *faultState) blocksAddr(addr string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.blocked {
		if a == addr {
			return true
		}
	}
	return false
}

// noteAddr records a peer's memberlist address if the peer is cut.
func (s *faultState) noteAddr(peer, addr string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blocked[peer]; ok {
		s.blocked[peer] = addr
	}
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
	n.faults.mu.Lock()
	defer n.faults.mu.Unlock()
	n.faults.f = f
	if f.Seed != 0 {
		n.faults.rng = rand.New(rand.NewSource(f.Seed))
	}
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
	n.faults.mu.Lock()
	defer n.faults.mu.Unlock()
	for _, m := range ms {
		n.faults.blocked[m.ID] = m.Addr
	}
	return nil
}

// Heal ends every partition made with Partition.
func (n *Node) Heal() error {
	if n.faults == nil {
		return ErrNoFaults
	}
	n.faults.mu.Lock()
	defer n.faults.mu.Unlock()
	clear(n.faults.blocked)
	return nil
}

// Partitioned returns the peer IDs this node is cut off from, sorted.
func (n *Node) Partitioned() []string {
	if n.faults == nil {
		return nil
	}
	n.faults.mu.Lock()
	defer n.faults.mu.Unlock()
	out := make([]string, 0, len(n.faults.blocked))
	for id := range n.faults.blocked {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// delayLine holds delayed frames in due-time order (a min-heap).
type delayLine []delayedFrame

type delayedFrame struct {
	due time.Time
	seq uint64 // tie-break: equal due times keep queue order
	f   *chatpb.Frame
}

func (d delayLine) Len() int { return len(d) }
func (d delayLine) Less(i, j int) bool {
	if d[i].due.Equal(d[j].due) {
		return d[i].seq < d[j].seq
	}
	return d[i].due.Before(d[j].due)
}
func (d delayLine) Swap(i, j int) { d[i], d[j] = d[j], d[i] }
func (d *delayLine) Push(x any)   { *d = append(*d, x.(delayedFrame)) }
func (d *delayLine) Pop() any {
	old := *d
	x := old[len(old)-1]
	*d = old[:len(old)-1]
	return x
}

func (d *delayLine) add(df delayedFrame) { heap.Push(d, df) }
func (d *delayLine) popDue(now time.Time) (*chatpb.Frame, bool) {
	if len(*d) == 0 || (*d)[0].due.After(now) {
		return nil, false
	}
	return heap.Pop(d).(delayedFrame).f, true
}

// faultTransport wraps memberlist's network transport to cut partitioned
// peers' packets and outgoing streams. Only used when Config.Faults is set.
type faultTransport struct {
	*memberlist.NetTransport
	n       *Node
	packets chan *memberlist.Packet
	done    chan struct{}
	once    sync.Once
}

var _ memberlist.NodeAwareTransport = (*faultTransport)(nil)

func newFaultTransport(n *Node, nt *memberlist.NetTransport) (*faultTransport, error) {
	t := &faultTransport{NetTransport: nt, n: n, packets: make(chan *memberlist.Packet, 64), done: make(chan struct{})}
	if !n.spawn(t.pump) {
		return nil, ErrShutdown
	}
	return t, nil
}

// pump forwards incoming packets, dropping those from partitioned peers.
func (t *faultTransport) pump() {
	in := t.NetTransport.PacketCh()
	for {
		select {
		case p := <-in:
			if t.n.faults.blocksAddr(p.From.String()) {
				t.n.stats.faultDrops.Add(1)
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
	if t.n.faults.blocksAddr(addr) {
		t.n.stats.faultDrops.Add(1)
		return time.Now(), nil // lost on the way, as UDP would
	}
	return t.NetTransport.WriteTo(b, addr)
}

func (t *faultTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

func (t *faultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.n.faults.blocksAddr(addr) {
		t.n.stats.faultDrops.Add(1)
		return nil, fmt.Errorf("dial %s: partitioned (fault injection)", addr)
	}
	return t.NetTransport.DialTimeout(addr, timeout)
}

func (t *faultTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// Shutdown stops the wrapped transport first and the pump after: the
// transport's UDP reader blocks on its packet channel until someone reads,
// and NetTransport.Shutdown waits for that reader, so the pump must keep
// draining until it returns (memberlist's own reader keeps reading ours
// until after Shutdown).
func (t *faultTransport) Shutdown() error {
	err := t.NetTransport.Shutdown()
	t.once.Do(func() { close(t.done) })
	return err
}
