package hearsay

// RoomInfo describes a room as a node sees it.
type RoomInfo struct {
	// Name is the room name without '#'.
	Name string `json:"name"`
	// Mode is the room's ordering mode (zero when not known).
	Mode OrderMode `json:"mode"`
	// Joined is true when the node is a member.
	Joined bool `json:"joined"`
	// Members are the peer IDs of the live members of the room (the node
	// included when it has joined), sorted.
	Members []string `json:"members"`
	// Received counts the room's chat messages stored by the node (own
	// ones included; ordering control messages excluded; since Start,
	// replayed ones excluded).
	Received uint64 `json:"received"`
	// Delivered counts the data messages whose ordering condition held
	// (shown, own ones included, since Start).
	Delivered uint64 `json:"delivered"`
	// HeldBack is how many received messages wait for their ordering
	// condition now.
	HeldBack int `json:"held_back"`
}
