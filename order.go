package hearsay

import (
	"fmt"
	"strings"
)

// OrderMode is a room's ordering mode (docs/DESIGN.md "Ordering"). The
// zero value is no mode: "the room's existing mode, or the default" where
// a mode is optional (JoinRoom).
type OrderMode uint8

// The ordering modes. OrderCausal is the default of a new room.
const (
	OrderFIFO      OrderMode = iota + 1 // per-sender order only
	OrderCausal                         // replies after what they answer
	OrderTotal                          // same sequence everywhere (Lamport timestamps and acks)
	OrderSequencer                      // same sequence everywhere (numbered by the oldest live member)
)

// OrderModes returns the ordering modes in the order help and completion
// list them: the default first.
func OrderModes() []OrderMode {
	return []OrderMode{OrderCausal, OrderFIFO, OrderTotal, OrderSequencer}
}

// String returns the mode's name as ParseOrderMode accepts it; "" for the
// zero mode.
func (m OrderMode) String() string {
	switch m {
	case 0:
		return ""
	case OrderFIFO:
		return "fifo"
	case OrderCausal:
		return "causal"
	case OrderTotal:
		return "total"
	case OrderSequencer:
		return "sequencer"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Valid reports whether m is one of the four modes.
func (m OrderMode) Valid() bool { return m >= OrderFIFO && m <= OrderSequencer }

// ParseOrderMode parses a mode name: fifo, causal, total (alias lamport)
// or sequencer, case-insensitive, surrounding blanks ignored. Anything
// else, "" included, is an error that lists the valid names.
func ParseOrderMode(s string) (OrderMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "fifo":
		return OrderFIFO, nil
	case "causal":
		return OrderCausal, nil
	case "total", "lamport":
		return OrderTotal, nil
	case "sequencer":
		return OrderSequencer, nil
	}
	return 0, fmt.Errorf("unknown ordering mode %q (want fifo, causal, total or sequencer)", s)
}

// MarshalText implements encoding.TextMarshaler: the mode's name ("" for
// the zero mode).
func (m OrderMode) MarshalText() ([]byte, error) {
	if m != 0 && !m.Valid() {
		return nil, fmt.Errorf("encode ordering mode %d: no such mode", uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler: ParseOrderMode, with
// "" the zero mode.
func (m *OrderMode) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*m = 0
		return nil
	}
	v, err := ParseOrderMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}
