// Package bench measures hearsay against its baselines: it starts N peers
// of a System on 127.0.0.1 in one process, drives a workload (latency,
// throughput, traffic, loss, cost) and measures it with one clock.
//
// The measurement code is shared by every system: a System only starts
// peers, sends a payload from peer i, reports each delivery to an Observer
// and counts what it puts on the wire. The payload carries the message
// number, so deliveries are matched to sends by the runner, not by the
// system under test.
//
// Systems in this package: hearsay (an adapter over chat.Node, in
// hearsay.go), and naive (cli-chat's design: a new TCP connection to every
// member per message, no repair). The serf baseline lives in a separate Go
// module (bench/serfbench) so that serf never enters the product's
// dependencies; it imports this package and answers the worker protocol
// (worker.go) on stdin/stdout, so it runs exactly the same workload code.
package bench
