// Package peerster speaks Peerster, the gossip chat of a distributed
// systems course (Homework 1) that many independent implementations speak:
// its wire format (wire.go, dedis/protobuf's rules written on protowire),
// a gossiper with simple broadcast, rumor mongering and anti-entropy
// (gossiper.go, protocol.go), the part 3 web GUI (gui.go), and a Bridge
// that relays between a Peerster network and a hearsay room (bridge.go).
//
// Every datagram is adversarial: the gossiper bounds sizes before it
// decodes, counts and drops what does not decode, and caps every table it
// keeps (Config, README.md). Peerster messages are unsigned: nothing here
// authenticates who wrote them.
//
// The package imports no project package but the root (domain types).
package peerster
