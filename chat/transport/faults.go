package transport

// Fault injection, for tests and experiments only, as a decorator over any
// transport (WithFaults). An Injector holds the faults in force and can be
// changed while streams run:
//
//   - Frames sent on any stream, dialed or accepted, may be dropped
//     (DropRatio) and delayed (Delay plus a uniform Jitter, which reorders
//     them: a stream sends delayed frames in due-time order, not send
//     order). Since chat protocol 6 a pair of peers shares one stream for
//     both directions, so both ends' frames must meet the same faults.
//   - A partition (Partition) cuts named peers off: every frame to or
//     from them, on dialed and accepted streams alike, is dropped. The
//     Injector also remembers their memberlist addresses, so a memberlist
//     transport decorator can cut that traffic too (BlocksAddr).
//
// Everything dropped is counted (Drops).

import (
	"container/heap"
	"context"
	"math/rand"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// FaultSettings are the random faults an Injector applies.
type FaultSettings struct {
	// DropRatio is the probability (0 to 1) that a frame is lost.
	DropRatio float64
	// Delay is added to every frame.
	Delay time.Duration
	// Jitter adds a uniform random delay in [0, Jitter) per frame.
	Jitter time.Duration
	// Seed seeds the random choices; 0 picks a random seed.
	Seed int64
}

// Injector decides the fate of frames. Safe for concurrent use; the
// methods that only read are also safe on a nil Injector (no faults).
type Injector struct {
	mu      sync.Mutex
	s       FaultSettings
	rng     *rand.Rand
	blocked map[string]string // peer ID -> its memberlist address when known
	drops   atomic.Uint64
}

// NewInjector returns an injector with settings s and no partition.
func NewInjector(s FaultSettings) *Injector {
	i := &Injector{blocked: make(map[string]string)}
	i.Set(s)
	return i
}

// Set replaces the random faults. A non-zero Seed restarts the random
// sequence (the first Set always seeds it).
func (i *Injector) Set(s FaultSettings) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.s = s
	if s.Seed != 0 || i.rng == nil {
		seed := s.Seed
		if seed == 0 {
			seed = time.Now().UnixNano()
		}
		i.rng = rand.New(rand.NewSource(seed))
	}
}

// Settings returns the random faults in force.
func (i *Injector) Settings() FaultSettings {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.s
}

// Outgoing decides the fate of one frame to peer: dropped, or sent after
// delay.
func (i *Injector) Outgoing(peer string) (drop bool, delay time.Duration) {
	if i == nil {
		return false, 0
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if _, ok := i.blocked[peer]; ok {
		return true, 0
	}
	if i.s.DropRatio > 0 && i.rng.Float64() < i.s.DropRatio {
		return true, 0
	}
	delay = i.s.Delay
	if i.s.Jitter > 0 {
		delay += time.Duration(i.rng.Int63n(int64(i.s.Jitter)))
	}
	return false, delay
}

// Blocks reports whether traffic with peer is cut.
func (i *Injector) Blocks(peer string) bool {
	if i == nil {
		return false
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	_, ok := i.blocked[peer]
	return ok
}

// BlocksAddr reports whether a memberlist address belongs to a cut peer.
func (i *Injector) BlocksAddr(addr string) bool {
	if i == nil {
		return false
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, a := range i.blocked {
		if a == addr {
			return true
		}
	}
	return false
}

// NoteAddr records a peer's memberlist address if the peer is cut.
func (i *Injector) NoteAddr(peer, addr string) {
	if i == nil {
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if _, ok := i.blocked[peer]; ok {
		i.blocked[peer] = addr
	}
}

// Partition cuts peer (with its memberlist address, if known) off, adding
// to the partition in force.
func (i *Injector) Partition(peer, addr string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.blocked[peer] = addr
}

// Heal ends the partition.
func (i *Injector) Heal() {
	i.mu.Lock()
	defer i.mu.Unlock()
	clear(i.blocked)
}

// Partitioned returns the cut peer IDs, sorted.
func (i *Injector) Partitioned() []string {
	if i == nil {
		return nil
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]string, 0, len(i.blocked))
	for id := range i.blocked {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// CountDrop counts one dropped frame or packet.
func (i *Injector) CountDrop() { i.drops.Add(1) }

// Drops returns how many frames and packets were dropped.
func (i *Injector) Drops() uint64 {
	if i == nil {
		return 0
	}
	return i.drops.Load()
}

// WithFaults returns t with the faults of inj applied to its streams.
func WithFaults(t Transport, inj *Injector) Transport {
	return &faultTransport{Transport: t, inj: inj}
}

type faultTransport struct {
	Transport
	inj *Injector
}

// OpenConns forwards to the decorated transport when it counts its
// connections (zero counts otherwise).
func (t *faultTransport) OpenConns() ConnCounts {
	if cc, ok := t.Transport.(ConnCounter); ok {
		return cc.OpenConns()
	}
	return ConnCounts{}
}

func (t *faultTransport) Dial(ctx context.Context, addr string, want Peer) (Conn, error) {
	c, err := t.Transport.Dial(ctx, addr, want)
	if err != nil {
		return nil, err
	}
	return newFaultConn(c, t.inj), nil
}

func (t *faultTransport) Serve(h Handler) error {
	return t.Transport.Serve(faultHandler{h: h, inj: t.inj})
}

type faultHandler struct {
	h   Handler
	inj *Injector
}

func (f faultHandler) Admit(ctx context.Context, p Peer) error { return f.h.Admit(ctx, p) }
func (f faultHandler) ServeConn(c Conn)                        { f.h.ServeConn(newFaultConn(c, f.inj)) }

// maxDelayed bounds the frames one stream holds in its delay line; more
// are dropped (and counted).
const maxDelayed = 1024

// faultConn applies the injector to one stream. Frames it delays wait in a
// delay line that its own goroutine sends from; Close stops that goroutine
// and waits for it.
type faultConn struct {
	Conn
	inj *Injector

	sendMu sync.Mutex // one sender at a time on the inner stream
	mu     sync.Mutex // guards line, err, running
	line   delayLine
	seq    uint64
	err    error // first error of a delayed send, returned by later Sends
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	run    bool
	once   sync.Once
}

func newFaultConn(c Conn, inj *Injector) *faultConn {
	return &faultConn{Conn: c, inj: inj, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// Send reports a frame it drops or delays as sent, with the length of its
// encoding: to the sender a lost frame cost what it would on a lossy
// network, and a delayed one is written later.
func (c *faultConn) Send(f *chatpb.Frame) (int, error) {
	peer := c.Conn.Peer().ID
	drop, delay := c.inj.Outgoing(peer)
	if drop {
		c.inj.CountDrop()
		return proto.Size(f), nil
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	if delay <= 0 && len(c.line) == 0 {
		c.mu.Unlock()
		c.sendMu.Lock()
		defer c.sendMu.Unlock()
		return c.Conn.Send(f)
	}
	if len(c.line) >= maxDelayed {
		c.mu.Unlock()
		c.inj.CountDrop()
		return proto.Size(f), nil
	}
	c.seq++
	heap.Push(&c.line, delayedFrame{due: time.Now().Add(delay), seq: c.seq, f: f})
	if !c.run {
		c.run = true
		go c.pump()
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return proto.Size(f), nil
}

// pump sends delayed frames when they fall due, until Close.
func (c *faultConn) pump() {
	defer close(c.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.mu.Lock()
		now := time.Now()
		var due []*chatpb.Frame
		for len(c.line) > 0 && !c.line[0].due.After(now) {
			due = append(due, heap.Pop(&c.line).(delayedFrame).f)
		}
		next := time.Hour
		if len(c.line) > 0 {
			next = time.Until(c.line[0].due)
		}
		c.mu.Unlock()
		for _, f := range due {
			c.sendMu.Lock()
			_, err := c.Conn.Send(f)
			c.sendMu.Unlock()
			if err != nil {
				c.mu.Lock()
				if c.err == nil {
					c.err = err
				}
				c.mu.Unlock()
			}
		}
		timer.Reset(next)
		select {
		case <-c.stop:
			return
		case <-c.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// Recv drops frames from a cut peer.
func (c *faultConn) Recv() (*chatpb.Frame, error) {
	for {
		f, err := c.Conn.Recv()
		if err != nil {
			return nil, err
		}
		if c.inj.Blocks(c.Conn.Peer().ID) {
			c.inj.CountDrop()
			continue
		}
		return f, nil
	}
}

func (c *faultConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		close(c.stop)
		c.mu.Lock()
		running := c.run
		c.run = true // no pump starts after Close
		c.mu.Unlock()
		if running {
			<-c.done
		}
	})
	return err
}

// delayLine holds delayed frames in due-time order (a min-heap; frames due
// at the same time keep their send order).
type delayLine []delayedFrame

type delayedFrame struct {
	due time.Time
	seq uint64
	f   *chatpb.Frame
}

func (d delayLine) Len() int { return len(d) }
func (d delayLine) Less(i, j int) bool {
	if !d[i].due.Equal(d[j].due) {
		return d[i].due.Before(d[j].due)
	}
	return d[i].seq < d[j].seq
}
func (d delayLine) Swap(i, j int) { d[i], d[j] = d[j], d[i] }
func (d *delayLine) Push(x any)   { *d = append(*d, x.(delayedFrame)) }
func (d *delayLine) Pop() any {
	old := *d
	x := old[len(old)-1]
	*d = old[:len(old)-1]
	return x
}
