// Package overlay is hearsay's dissemination overlay for large groups:
// HyParView (Leitão, Pereira, Rodrigues, DSN 2007) keeps a small active
// view of neighbours, each connected, and a larger passive view to repair
// it from; Plumtree (the same authors, SRDS 2007) broadcasts along a
// spanning tree embedded in the active views: a message is pushed eagerly
// along the tree and announced lazily (its ID only, IHAVE) to the other
// neighbours, a peer that hears of a message it never received grafts the
// announcer into the tree (GRAFT), and a peer that receives a duplicate
// prunes the link it came on (PRUNE). Each peer then receives each message
// about once, over a bounded number of connections.
//
// A Node is a pure, deterministic state machine, in the manner of
// etcd-io/raft: it does no I/O, starts no goroutine and reads no clock.
// Its inputs are messages from peers (Step), the failure of a connection
// (PeerDown), local broadcasts (Broadcast) and the passage of time (Tick,
// with the driver's monotonic time); its outputs, collected with Ready,
// are messages to send, messages to deliver, and the neighbours whose
// connection should be opened or may be closed. Randomness comes from a
// generator seeded by Config.Seed, so one seed and one input sequence
// always give the same outputs: the simulator (overlaysim) runs these very
// machines for thousands of peers.
//
// Every input is adversarial: each list in a message is bounded before it
// is used (Config.Max*), every table the machine keeps (views, pending
// requests, lazy queues, received and missing message IDs, the payload
// cache) has a fixed capacity, and arithmetic on counters from the
// network saturates. What the machine cannot check is whether a peer ID
// names a real member: the driver admits connections (in hearsay, only
// verified members reach the overlay).
package overlay
