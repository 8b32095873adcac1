//go:build !unix

package chat

import "github.com/hashicorp/memberlist"

// readPacket reads the next UDP packet into a shared buffer (udpBufs) and returns a
// copy of its size. Without the unix poller's readiness (mlnet_unix.go),
// the read waits holding its buffer.
func (t *mlNetTransport) readPacket() (*memberlist.Packet, error) {
	bp := getUDPBuf()
	defer putUDPBuf(bp)
	n, from, err := t.udp.ReadFromUDP(*bp)
	if err != nil {
		return nil, err
	}
	return packetOf((*bp)[:n], from), nil
}
