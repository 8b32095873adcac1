package chat

import "testing"

// benchAddMember makes id a member identity of n.
func benchAddMember(tb testing.TB, n *Node, id *Identity) {
	tb.Helper()
	if err := n.speakers.add(id.Pub); err != nil {
		tb.Fatal(err)
	}
}
