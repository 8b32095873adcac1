package order_test

import (
	"fmt"

	"github.com/hearsay-chat/hearsay/chat/order"
)

// Example shows the calls a room makes: Next for a local message,
// Receive for what arrives, MemberUp/MemberDown from membership, and the
// Output handled after each call.
func Example() {
	alice, _ := order.New(order.DefaultConfig("alice", order.Total))
	bob, _ := order.New(order.DefaultConfig("bob", order.Total))
	for _, m := range []*order.Machine{alice, bob} {
		m.MemberUp("alice", 1)
		m.MemberUp("bob", 2)
	}

	// Alice sends: the envelope carries msg's Origin, Seq, Kind, Lamport.
	msg, out, _ := alice.Next()
	fmt.Println("alice delivers at once:", len(out.Deliver))

	// Bob receives it; his Output has an ack to sign, store and send, and
	// he can deliver: his ack puts him past it, and alice is its sender.
	out, _ = bob.Receive(msg)
	ack := out.Send[0]
	fmt.Println("bob sends", ack.Kind, "and delivers", len(out.Deliver))

	// Alice receives the ack: every live member is past her message.
	out, _ = alice.Receive(ack)
	fmt.Println("alice delivers", out.Deliver[0].ID())
	// Output:
	// alice delivers at once: 0
	// bob sends ack and delivers 1
	// alice delivers alice:1
}
