package bench

import (
	"errors"
	"fmt"
	"strconv"
)

// A payload is printable ASCII, so that every system can carry it as chat
// text: "hsb" + the message number in 16 hex digits, padded with '.' to the
// requested size. The runner numbers messages; systems carry payloads
// untouched.
const (
	payloadPrefix = "hsb"
	payloadHeader = len(payloadPrefix) + 16
	// MinPayload is the smallest payload size (the header).
	MinPayload = payloadHeader
	// MaxPayload is the largest payload size the runner makes (serf's
	// default user event limit is 512 bytes including the event name; the
	// bench checks each system's own limit when it sends).
	MaxPayload = 60 << 10
)

var errNotBench = errors.New("not a bench payload")

// makePayload returns the payload of message id with size bytes.
func makePayload(id uint64, size int) []byte {
	if size < MinPayload {
		size = MinPayload
	}
	b := make([]byte, size)
	copy(b, payloadPrefix)
	const hex = "0123456789abcdef"
	for i := 0; i < 16; i++ {
		b[len(payloadPrefix)+15-i] = hex[(id>>(4*i))&0xf]
	}
	for i := payloadHeader; i < size; i++ {
		b[i] = '.'
	}
	return b
}

// parsePayload returns the message number carried by p.
func parsePayload(p []byte) (uint64, error) {
	if len(p) < payloadHeader || string(p[:len(payloadPrefix)]) != payloadPrefix {
		return 0, errNotBench
	}
	id, err := strconv.ParseUint(string(p[len(payloadPrefix):payloadHeader]), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("payload id: %w", err)
	}
	return id, nil
}
