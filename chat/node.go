// Package chat is the hearsay peer: identity, memberlist membership, the
// signed message envelope, the TLS chat transport and the events a user
// sees. A Node's lifecycle follows cli-chat's step-by-step flow:
//
//	n, err := chat.New(cfg)       // identity and configuration, no I/O on the network
//	err = n.Start(ctx)            // memberlist and chat listener
//	k, err := n.Join(ctx, addrs)  // contact existing members (skip for the first peer)
//	id, err := n.Send(ctx, "lobby", "hello")
//	for ev := range n.Events() { … }
//	n.Leave(ctx)                  // tell the group, with a timeout
//	n.Shutdown()                  // stop everything; idempotent
//
// All methods of Node are safe for concurrent use.
package chat

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

// lifecycle states of a Node.
const (
	stateNew = iota
	stateStarting
	stateStarted
	stateLeft
	stateShutdown
)

// defaultDeadNodeReclaim is how long a dead peer's name stays reserved to
// its old address (see New).
const defaultDeadNodeReclaim = 5 * time.Second

// Node is one hearsay peer. Create it with New.
type Node struct {
	cfg    Config
	id     *Identity
	logger *log.Logger
	stats  counters
	faults *transport.Injector // nil unless Config.Faults is set
	log    msglog.Log          // the message log; closed by Shutdown
	env    *roomEnv            // what the node gives its rooms (rooms.go)
	keys   keyCache            // expanded public keys of origins (verify.go)
	verify combiner            // shares signature batches among streams (verify.go)
	ahead  aheadHints          // held-back bound on disk (heldback.go)

	// speakers are the identities that are or were members: who may
	// speak (memberkeys.go); closed by Shutdown.
	speakers *memberKeys
	shown    *shownMarks // what this peer has shown (shown.go)

	// dm is the direct-message state (direct.go); its store is closed by
	// Shutdown.
	dm *directState
	// ovl drives the dissemination overlay of large groups (overlaydrv.go).
	ovl *overlayDriver
	// backlog marks messages that arrive through catch-up (backlog.go).
	backlog backlogMarks
	// progress follows the states of own room messages (roomstate.go).
	progress progress

	joinMu    sync.Mutex // serialises JoinRoom and PartRoom
	roomsMu   sync.Mutex // guards rooms, peerRooms, roomVer (leaf lock; see room.go)
	rooms     map[string]*room
	peerRooms map[string]*peerRoomSet // what each peer announced, by peer ID
	heldRooms map[string]heldRoomSet  // relayed sets of origins not live here yet (roomsets.go), bounded
	roomVer   int64                   // version of our announced room set
	digests   roomSetDigests          // digests of the held sets (roomsetdigest.go)
	// peerRoomsGen counts the changes of peerRooms and of our own room
	// set's version (roomSetsChangedLocked): with memberGen, what a
	// room's members are computed from (syncMembersLocked). It is not
	// roomsGen: it changes at three events (a peer's newer set taken,
	// takeRoomSet; a forgotten member's set dropped, forgetPeerRooms; our
	// own set given a new version, newRoomSetFrame), roomsGen at the first
	// only. A member view depends on all three; waitRoomSets waits only
	// for peers' sets to arrive: our own version is not among them, and a
	// set is dropped only for a member no longer live, which memberGen
	// already wakes it for.
	peerRoomsGen uint64
	// ownSet is our room set as last signed: announced again until it
	// changes (nil then: roomsets.go).
	ownSet *chatpb.RoomSet
	// roomsGen is closed and replaced when a peer's newer room set is
	// taken (takeRoomSet), to wake waitRoomSets; not when a set is
	// dropped or our own version changes (see peerRoomsGen, bumped then
	// too).
	roomsGen  chan struct{}
	startedAt atomic.Int64 // unix nanoseconds of Start (loadRooms)
	pingNonce atomic.Uint64
	liveCount atomic.Int32 // live members + this node; see numMembers

	// ctx is cancelled by Shutdown; every goroutine of the node watches it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	state     int
	nick      string
	settings  MemberlistSettings
	ml        *memberlist.Memberlist
	tr        transport.Transport // the chat transport; nil before Start
	chatAddr  string
	mlAddr    string                 // memberlist's advertised host:port, set by Start
	members   map[string]*memberInfo // by peer ID, self excluded; see members.go
	peers     map[string]*peerConn   // chat links by peer ID (peerconn.go, links.go)
	memberGen chan struct{}          // closed and replaced on every membership change
	// live caches liveMembers for the membership generation gen (its map
	// is shared, never changed). Guarded by mu.
	live struct {
		gen chan struct{}
		m   map[string]bool
	}
	leaving map[string]time.Time // peers that said Bye, until memberlist reports them gone

	// memberEvents carries memberlist callbacks to the node's event loop
	// (callbacks must not block): at most maxMemberEvents, held in a
	// queue that lets its slice go once drained (fifo.go; a channel of
	// that bound held 64 KB per node for its life). When full, the
	// callback sets resync and the loop rebuilds its view from
	// memberlist.Members().
	memberEvents *signalQueue[memberEvent]
	resync       atomic.Bool

	kv         *kvStore
	broadcasts *memberlist.TransmitLimitedQueue

	// events holds the application's channel and what waits for it
	// (eventqueue.go); closed by Shutdown.
	events *eventQueue

	shutdownOnce sync.Once
}

// New validates cfg, loads or creates the identity in cfg.DataDir, opens
// the message log (Config.MessageLog) and returns a node that is not yet on
// the network. It blocks only for file I/O. Call Shutdown to release the
// log, also when the node was never started.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var id *Identity
	var err error
	if cfg.DataDir == "" {
		id, err = NewIdentity()
	} else {
		id, err = LoadOrCreateIdentity(cfg.DataDir)
	}
	if err != nil {
		return nil, err
	}
	mkeys, err := openMemberKeys(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := mkeys.add(id.Pub); err != nil {
		_ = mkeys.close()
		return nil, err
	}
	shown, err := openShownMarks(cfg.DataDir)
	if err != nil {
		_ = mkeys.close()
		return nil, err
	}
	dm, err := openDirect(cfg, id)
	if err != nil {
		_ = mkeys.close()
		_ = shown.close()
		return nil, err
	}
	mlog, err := openLog(cfg)
	if err != nil {
		_ = mkeys.close()
		_ = shown.close()
		_ = dm.store.close()
		return nil, err
	}
	base, _ := profileConfig(cfg.MemberlistProfile)
	settings := settingsFrom(cfg.MemberlistProfile, base)
	// A peer keeps its name (peer ID) across restarts but usually gets a
	// new port; memberlist refuses a known name at a new address unless
	// the old entry has been dead this long (its default, 0, is never).
	settings.DeadNodeReclaimTime = Duration(defaultDeadNodeReclaim)
	if cfg.Memberlist != nil {
		settings = *cfg.Memberlist
		if settings.Profile == "" {
			settings.Profile = cfg.MemberlistProfile
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg:          cfg,
		id:           id,
		logger:       log.New(cfg.LogOutput, "hearsay: ", log.LstdFlags|log.Lmicroseconds),
		log:          mlog,
		speakers:     mkeys,
		shown:        shown,
		dm:           dm,
		rooms:        make(map[string]*room),
		peerRooms:    make(map[string]*peerRoomSet),
		roomVer:      time.Now().UnixNano(),
		roomsGen:     make(chan struct{}),
		ctx:          ctx,
		cancel:       cancel,
		nick:         cfg.Nick,
		settings:     settings,
		members:      make(map[string]*memberInfo),
		peers:        make(map[string]*peerConn),
		leaving:      make(map[string]time.Time),
		memberGen:    make(chan struct{}),
		memberEvents: newSignalQueue[memberEvent](maxMemberEvents),
		events:       newEventQueue(cfg.EventBuffer, nil),
	}
	n.events.onDrop = func(k int) { n.stats.eventDrops.Add(uint64(k)) }
	n.keys.admit = mkeys.knows // only member identities' keys stay cached
	n.verify.keys = &n.keys
	n.ovl = newOverlayDriver(n)
	n.env = n.newRoomEnv()
	n.kv = newKVStore(n)
	n.liveCount.Store(1)
	if cfg.Faults != nil {
		n.faults = transport.NewInjector(cfg.Faults.settings())
	}
	return n, nil
}

// ID returns the peer ID (the memberlist node name). Never blocks.
func (n *Node) ID() string { return n.id.ID }

// PublicKey returns the node's Ed25519 identity key, which its peer ID is
// derived from and its chat certificate carries.
func (n *Node) PublicKey() ed25519.PublicKey { return n.id.Pub }

// Identity returns the node's identity.
func (n *Node) Identity() *Identity { return n.id }

// Nick returns the current nick.
func (n *Node) Nick() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nick
}

// Events returns the channel of events to show. It is bounded
// (Config.EventBuffer); when the reader falls behind, new events are
// dropped and counted (Stats.EventDrops) rather than stalling the network,
// and an "error" event reports the loss. The channel has a few slots; a
// burst beyond them is queued and reaches it, in order, a moment later
// (eventqueue.go). Shutdown emits no new event and closes the channel
// with the events it holds still readable; those still queued behind it
// then are dropped and counted. There must be one reader.
func (n *Node) Events() <-chan hearsay.Event { return n.events.ch }

// emit hands an event to the application without blocking.
func (n *Node) emit(ev hearsay.Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if !n.events.emit(ev) {
		n.stats.eventDrops.Add(1)
	}
}

func (n *Node) emitError(format string, args ...any) {
	n.emit(hearsay.Event{Type: hearsay.EventError, Text: fmt.Sprintf(format, args...)})
}

// Start creates the chat listener and the memberlist node, so that the node
// can be joined and can join others. It blocks until both listen. ctx only
// bounds the start itself.
func (n *Node) Start(ctx context.Context) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	switch n.state {
	case stateShutdown:
		n.mu.Unlock()
		return ErrShutdown
	case stateNew:
	default:
		n.mu.Unlock()
		return ErrAlreadyStarted
	}
	// memberlist.Create calls back into the node (NodeMeta takes n.mu), so
	// n.mu is released while it runs; stateStarting keeps other Starts out.
	n.state = stateStarting
	n.mu.Unlock()
	var closeTr transport.Transport
	defer func() {
		if err == nil {
			return
		}
		if closeTr != nil {
			closeTr.Close()
		}
		n.mu.Lock()
		if n.state == stateStarting {
			n.state = stateNew
		}
		n.mu.Unlock()
	}()

	host, portStr, _ := net.SplitHostPort(n.cfg.BindAddr)
	port, _ := parsePort(portStr)
	advHost := n.cfg.AdvertiseHost
	if advHost == "" {
		advHost = host
		if ip := net.ParseIP(host); ip.IsUnspecified() {
			priv, err := sockaddr.GetPrivateIP()
			if err != nil || priv == "" {
				return fmt.Errorf("bind address %s: no private address to advertise; set an advertise host", n.cfg.BindAddr)
			}
			advHost = priv
		}
	}

	tr, err := n.newTransport(host)
	if err != nil {
		return err
	}
	if !n.spawn(func() {
		if err := tr.Serve(transportHandler{n}); err != nil {
			n.logger.Printf("chat listener stopped: %v", err)
		}
	}) {
		tr.Close()
		return ErrShutdown
	}
	closeTr = tr
	chatAddr := tr.Addr()
	if n.cfg.ChatTransport == nil { // a host:port: advertise our host
		_, p, _ := net.SplitHostPort(chatAddr)
		chatAddr = net.JoinHostPort(advHost, p)
	}

	n.mu.Lock()
	n.chatAddr = chatAddr
	mlc, err := n.memberlistConfigLocked(host, port, advHost)
	n.mu.Unlock()
	if err != nil {
		return err
	}
	n.broadcasts = &memberlist.TransmitLimitedQueue{
		NumNodes:       n.numMembers,
		RetransmitMult: mlc.RetransmitMult,
	}
	// The memberlist transport: the guarded network transport, or the
	// one a simulation supplies (Config.MemberlistTransport).
	var mt memberlist.Transport
	if n.cfg.MemberlistTransport != nil {
		t, err := n.cfg.MemberlistTransport()
		if err != nil {
			return fmt.Errorf("memberlist transport: %w", err)
		}
		mt = t
		mlc.Transport = t
	} else {
		g, err := n.memberlistTransport(mlc, host, port, advHost)
		if err != nil {
			return err
		}
		mt = g
	}
	ml, err := memberlist.Create(mlc)
	if err != nil {
		_ = mt.Shutdown()
		return fmt.Errorf("start memberlist on %s: %w", n.cfg.BindAddr, err)
	}

	n.mu.Lock()
	if n.state != stateStarting { // Shutdown ran meanwhile
		n.mu.Unlock()
		_ = ml.Shutdown()
		return ErrShutdown
	}
	n.ml = ml
	n.tr = closeTr
	n.settings = settingsFrom(n.settings.Profile, mlc)
	ln := ml.LocalNode()
	n.settings.BindPort = int(ln.Port)
	n.settings.AdvertisePort = int(ln.Port)
	n.mlAddr = net.JoinHostPort(ln.Addr.String(), strconv.Itoa(int(ln.Port)))
	n.state = stateStarted
	n.wg.Add(1)
	go n.eventLoop()
	n.wg.Add(1)
	go n.directLoop()
	n.logger.Printf("started %s (%s) memberlist %s chat %s", n.id.ID, n.nick, n.advertiseAddrLocked(), n.chatAddr)
	n.mu.Unlock()
	if err := n.loadRooms(ctx); err != nil {
		return err
	}
	n.spawn(n.antiEntropyLoop)
	n.spawn(n.pruneLoop)
	n.spawn(n.ovl.run)
	return nil
}

// memberlistConfigLocked builds the memberlist configuration. Caller holds n.mu.
func (n *Node) memberlistConfigLocked(host string, port int, advHost string) (*memberlist.Config, error) {
	profile := n.settings.Profile
	if profile == "" {
		profile = n.cfg.MemberlistProfile
	}
	mlc, err := profileConfig(profile)
	if err != nil {
		return nil, err
	}
	n.settings.apply(mlc)
	mlc.Name = n.id.ID
	mlc.BindAddr = host
	mlc.BindPort = port
	if n.cfg.AdvertiseHost != "" || net.ParseIP(host).IsUnspecified() {
		mlc.AdvertiseAddr = advHost
	}
	mlc.Label = n.cfg.ClusterLabel
	if len(n.cfg.ClusterKey) > 0 {
		kr, err := memberlist.NewKeyring(nil, n.cfg.ClusterKey)
		if err != nil {
			return nil, fmt.Errorf("cluster key: %w", err)
		}
		mlc.Keyring = kr
		mlc.GossipVerifyIncoming = true
		mlc.GossipVerifyOutgoing = true
	}
	mlc.Delegate = &delegate{n: n}
	mlc.Events = &eventDelegate{n: n}
	mlc.Logger = log.New(n.cfg.LogOutput, "memberlist: ", log.LstdFlags|log.Lmicroseconds)
	mlc.LogOutput = nil
	if n.cfg.TuneMemberlist != nil {
		n.cfg.TuneMemberlist(mlc)
	}
	return mlc, nil
}

// Join contacts existing members at addrs (memberlist "host:port") and
// returns how many answered. It blocks until memberlist's join completes or
// ctx ends (memberlist cannot cancel a join: one still running then may
// complete afterwards; Shutdown waits for it). A cluster key mismatch is
// reported as ErrClusterKey.
func (n *Node) Join(ctx context.Context, addrs []string) (int, error) {
	ml, err := n.active()
	if err != nil {
		return 0, err
	}
	if len(addrs) == 0 {
		return 0, errors.New("join: no contact addresses")
	}
	type result struct {
		k   int
		err error
	}
	done := make(chan result, 1)
	if !n.spawn(func() {
		k, err := ml.Join(addrs)
		done <- result{k, err}
	}) {
		return 0, ErrShutdown
	}
	select {
	case r := <-done:
		if r.k == 0 && r.err != nil {
			return 0, n.joinError(addrs, r.err)
		}
		if r.err != nil {
			n.logger.Printf("join: some contacts failed: %v", r.err)
		}
		return r.k, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("join %v: %w", addrs, ctx.Err())
	}
}

// joinError turns memberlist's join error (a multi-line multierror) into
// one line a user can act on, still wrapping the original.
func (n *Node) joinError(addrs []string, err error) error {
	detail := strings.Join(strings.Fields(err.Error()), " ")
	detail = strings.TrimPrefix(detail, "1 error occurred: * ")
	msg := fmt.Sprintf("join %s: %s", strings.Join(addrs, ", "), detail)
	if isKeyError(err) {
		hint := "the group uses another cluster key (or none); use the same --cluster-key as the group"
		if len(n.cfg.ClusterKey) == 0 {
			hint = "the group uses a cluster key and this peer has none; use --cluster-key"
		}
		return &joinErr{msg: fmt.Sprintf("join %s: %v: %s (%s)", strings.Join(addrs, ", "), ErrClusterKey, hint, detail), errs: []error{ErrClusterKey, err}}
	}
	return &joinErr{msg: msg, errs: []error{err}}
}

// joinErr is a one-line join error that wraps the underlying ones.
type joinErr struct {
	msg  string
	errs []error
}

func (e *joinErr) Error() string   { return e.msg }
func (e *joinErr) Unwrap() []error { return e.errs }

// Leave tells the group this node is leaving and waits (bounded by ctx's
// deadline, or Config.LeaveTimeout) for the news to spread: first a Bye on
// every chat stream (so peers report "left", not "failed"), then
// memberlist's leave. memberlist cannot rejoin after leaving: afterwards
// the node only answers Members, Health and Stats, and calls that need the
// group return ErrLeft until Shutdown.
func (n *Node) Leave(ctx context.Context) error {
	ml, err := n.active()
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.LeaveTimeout)
		defer cancel()
	}
	dl, _ := ctx.Deadline()

	n.mu.Lock()
	peers := n.peers
	n.peers = make(map[string]*peerConn)
	if n.state == stateStarted {
		n.state = stateLeft
	}
	n.mu.Unlock()

	// Bye to every peer in parallel, with half of the time left.
	byeCtx, cancel := context.WithTimeout(ctx, time.Until(dl)/2)
	var wg sync.WaitGroup
	for _, p := range peers {
		if !p.connected.Load() {
			continue // it would only wait for the timeout
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.bye(byeCtx); err != nil {
				n.logger.Printf("leave: %v", err)
			}
		}()
	}
	wg.Wait()
	cancel()
	for _, p := range peers {
		p.stop()
	}
	timeout := time.Until(dl)
	if timeout <= 0 {
		return fmt.Errorf("leave: %w", context.DeadlineExceeded)
	}
	if err := ml.Leave(timeout); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	return nil
}

// markLeaving records that peer said Bye.
func (n *Node) markLeaving(peer string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.leaving[peer] = time.Now()
	// Bound the map: entries are removed when memberlist reports the peer
	// gone; a peer that said Bye and stayed is forgotten after a minute.
	for id, t := range n.leaving {
		if time.Since(t) > time.Minute {
			delete(n.leaving, id)
		}
	}
}

// Shutdown stops the node without telling the group (call Leave first for
// a graceful exit): memberlist, the chat listener, every peer stream and
// goroutine. It blocks until they have stopped, then closes Events. It is
// idempotent and safe to call at any time.
func (n *Node) Shutdown() error {
	var err error
	n.shutdownOnce.Do(func() {
		n.mu.Lock()
		n.state = stateShutdown
		ml, tr := n.ml, n.tr
		peers := n.peers
		n.peers = make(map[string]*peerConn)
		n.mu.Unlock()

		n.cancel()
		if ml != nil {
			if e := ml.Shutdown(); e != nil {
				err = fmt.Errorf("shutdown memberlist: %w", e)
			}
		}
		if tr != nil {
			if e := tr.Close(); e != nil && err == nil {
				err = fmt.Errorf("close chat transport: %w", e)
			}
		}
		for _, p := range peers {
			p.stop()
		}
		n.wg.Wait()
		if e := n.log.Close(); e != nil && err == nil {
			err = fmt.Errorf("close message log: %w", e)
		}
		if e := n.speakers.close(); e != nil && err == nil {
			err = fmt.Errorf("close member keys: %w", e)
		}
		if e := n.shown.close(); e != nil && err == nil {
			err = fmt.Errorf("close shown marks: %w", e)
		}
		if e := n.dm.store.close(); e != nil && err == nil {
			err = fmt.Errorf("close direct store: %w", e)
		}
		n.events.close()
	})
	return err
}

// spawn runs fn on a goroutine owned by the node (Shutdown waits for it),
// unless the node is shut down: then it reports false. The state check and
// wg.Add happen under n.mu, and Shutdown marks the state under n.mu before
// it waits, so no goroutine is added to a finished wait.
func (n *Node) spawn(fn func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state == stateShutdown {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
	return true
}

// active returns the memberlist of a node that is started and has not
// left the group, or why it is not.
func (n *Node) active() (*memberlist.Memberlist, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch n.state {
	case stateNew, stateStarting:
		return nil, ErrNotStarted
	case stateLeft:
		return nil, ErrLeft
	case stateShutdown:
		return nil, ErrShutdown
	}
	return n.ml, nil
}

// memberlist returns the running memberlist or why there is none.
func (n *Node) memberlist() (*memberlist.Memberlist, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch n.state {
	case stateNew, stateStarting:
		return nil, ErrNotStarted
	case stateShutdown:
		return nil, ErrShutdown
	}
	return n.ml, nil
}

// AdvertiseAddr returns the memberlist address other peers reach this node
// at ("host:port"), the one to register with the bootstrap service; empty
// before Start.
func (n *Node) AdvertiseAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.advertiseAddrLocked()
}

// advertiseAddrLocked: read once, at Start. memberlist's LocalNode dereferences
// our entry in its node map, which it deletes GossipToTheDeadTime after we
// leave (Members after Leave panicked).
func (n *Node) advertiseAddrLocked() string { return n.mlAddr }

// ChatAddr returns the chat listener's advertised address; empty before
// Start.
func (n *Node) ChatAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.chatAddr
}

// Health returns memberlist's health score (0 is healthy; higher means this
// node is missing probes, so its own view is less trustworthy), or -1
// before Start.
func (n *Node) Health() int {
	ml, err := n.memberlist()
	if err != nil {
		return -1
	}
	return ml.GetHealthScore()
}

// Started reports whether Start succeeded and Shutdown has not been called.
func (n *Node) Started() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state == stateStarted || n.state == stateLeft
}

// MemberlistConfigJSON returns the tunable memberlist settings as indented
// JSON: the ones Start will use, or the ones in use once started. Before
// Start the ports are those of Config.BindAddr (0: a free port chosen at
// Start), not the profile's 7946, which Start never binds.
func (n *Node) MemberlistConfigJSON() ([]byte, error) {
	n.mu.Lock()
	s := n.settings
	if n.ml == nil {
		port := 0
		if _, p, err := net.SplitHostPort(n.cfg.BindAddr); err == nil {
			port, _ = strconv.Atoi(p) // validated by Config.check
		}
		s.BindPort, s.AdvertisePort = port, port
	}
	n.mu.Unlock()
	return jsonIndent(s)
}

// LoadMemberlistConfigJSON replaces the memberlist settings (see
// DecodeMemberlistSettings). It must be called before Start: memberlist
// cannot be reconfigured while it runs.
func (n *Node) LoadMemberlistConfigJSON(data []byte) error {
	s, err := DecodeMemberlistSettings(data)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state != stateNew {
		return errors.New("memberlist config can only be loaded before start")
	}
	n.settings = s
	return nil
}

// SetNick changes the nick and tells the group through a node meta update.
// It blocks until memberlist has queued the update (at most a few seconds).
func (n *Node) SetNick(nick string) error {
	if err := ValidateNick(nick); err != nil {
		return err
	}
	n.mu.Lock()
	old := n.nick
	n.nick = nick
	ml := n.ml
	state := n.state
	n.mu.Unlock()
	if old == nick {
		return nil
	}
	if ml != nil && state == stateStarted {
		if err := ml.UpdateNode(5 * time.Second); err != nil {
			return fmt.Errorf("announce nick: %w", err)
		}
		n.pushMeta(ml)
	}
	n.emit(hearsay.Event{Type: hearsay.EventNick, From: n.displayName(n.id.ID, nick), FromID: n.id.ID, Self: true, Text: old})
	return nil
}

// metaPushPeers is how many live members a meta change is pushed to over
// TCP, besides memberlist's gossip.
const metaPushPeers = 3

// pushMeta sends this node's state (its new meta among it) to up to
// metaPushPeers random live members by a memberlist push/pull, a TCP
// exchange, in the background. Gossip alone is not enough in a small
// group: memberlist sends a broadcast RetransmitMult × ⌈log10(N+1)⌉ times
// in all (2 in a group of three on the local profile), and a probe that
// piggybacks it uses one of those, so a member can miss a nick change
// until the next push/pull (15 s on the local profile, 30 s on LAN) —
// a peer in the web UI test saw "bob" 15 s after the others saw "bobby".
// In a larger group the members that got it gossip it on; a push/pull is
// what a member whose packets were lost is sure to get.
func (n *Node) pushMeta(ml *memberlist.Memberlist) {
	var addrs []string
	for _, m := range ml.Members() {
		if m.Name != n.id.ID { // Members lists the live and suspect members
			addrs = append(addrs, m.Address())
		}
	}
	rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	addrs = addrs[:min(len(addrs), metaPushPeers)]
	if len(addrs) == 0 {
		return
	}
	n.spawn(func() {
		// One at a time, so that Shutdown waits for one TCP timeout at most.
		for _, a := range addrs {
			if n.ctx.Err() != nil {
				return
			}
			if _, err := ml.Join([]string{a}); err != nil {
				n.logger.Printf("push nick to %s: %v", a, err)
			}
		}
	})
}

// localMeta builds this node's meta. It takes n.mu.
func (n *Node) localMeta() peerMeta {
	n.mu.Lock()
	defer n.mu.Unlock()
	return peerMeta{Protocol: ProtocolVersion, ID: n.id.ID, Nick: n.nick, Pub: n.id.Pub, ChatAddr: n.chatAddr}
}

// Stats returns a snapshot of the counters. Never blocks for long.
func (n *Node) Stats() hearsay.Stats {
	n.mu.Lock()
	streams, kept, keptDown := 0, 0, 0
	for _, p := range n.peers {
		up := p.connected.Load()
		if up {
			streams++
		}
		p.mu.Lock()
		if p.kept {
			kept++
			if !up {
				keptDown++
			}
		}
		p.mu.Unlock()
	}
	var conns transport.ConnCounts
	if cc, ok := n.tr.(transport.ConnCounter); ok {
		conns = cc.OpenConns()
	}
	n.mu.Unlock()
	held := 0
	var late uint64
	for _, r := range n.joinedRooms() {
		r.mu.Lock()
		held += r.m.Stats().Held
		r.mu.Unlock()
		late += r.late.Load()
	}
	c := &n.stats
	st := hearsay.Stats{
		Stored: c.stored.Load(), HeldBack: held, ControlSent: c.controlSent.Load(), Late: late,
		Unjoined: c.unjoined.Load(), HeldDrops: c.heldDrops.Load(), HeldDiskDrops: c.heldDiskDrops.Load(),
		StatusSent: c.statusSent.Load(), StatusReceived: c.statusReceived.Load(),
		RepairSent: c.repairSent.Load(), Repaired: c.repaired.Load(),
		AntiEntropyBytes: c.aeBytes.Load(), Forwarded: c.forwarded.Load(), GapPulls: c.gapPulls.Load(), TailPulls: c.tailPulls.Load(),
		BadFloors: c.badFloors.Load(), Strangers: c.strangers.Load(),
		Sent: c.sent.Load(), Received: c.received.Load(), Delivered: c.delivered.Load(),
		Duplicates: c.duplicates.Load(), Forged: c.forged.Load(), Invalid: c.invalid.Load(),
		BadFrames: c.badFrames.Load(), Refused: c.refused.Load(), MLRefused: c.mlRefused.Load(), QueueDrops: c.queueDrops.Load(), FaultDrops: n.faults.Drops(), EventDrops: c.eventDrops.Load(),
		FramesOut: c.framesOut.Load(), BatchesOut: c.batchesOut.Load(), KVUpdates: c.kvUpdates.Load(), KVDrops: c.kvDrops.Load(),
		Streams: streams, KeptLinks: kept, KeptDown: keptDown, LinkSwaps: c.linkSwaps.Load(), LinkDials: c.linkDials.Load(), ChatConns: conns.Dialed + conns.Accepted,
		FrameBytes: c.frameBytes.snapshot(),
	}
	n.directStats(&st)
	n.overlayStats(&st)
	return st
}
