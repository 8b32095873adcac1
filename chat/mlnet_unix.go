//go:build unix

package chat

import (
	"net"
	"strconv"
	"syscall"

	"github.com/hashicorp/memberlist"
)

// readPacket waits until the UDP socket has a packet, then reads it into a
// shared buffer (udpBufs) and returns a copy of its size: a transport waiting for
// gossip holds no buffer (memberlist's NetTransport held 64 KB each).
func (t *mlNetTransport) readPacket() (*memberlist.Packet, error) {
	var p *memberlist.Packet
	var rerr error
	err := t.raw.Read(func(fd uintptr) bool {
		bp := getUDPBuf()
		defer putUDPBuf(bp)
		n, sa, e := syscall.Recvfrom(int(fd), *bp, 0)
		for e == syscall.EINTR {
			n, sa, e = syscall.Recvfrom(int(fd), *bp, 0)
		}
		if e == syscall.EAGAIN || e == syscall.EWOULDBLOCK {
			return false // nothing yet: wait for the poller
		}
		if e != nil {
			rerr = e
			return true
		}
		p = packetOf((*bp)[:n], udpAddrOf(sa))
		return true
	})
	if err != nil {
		return nil, err
	}
	return p, rerr
}

// udpAddrOf converts the sender's socket address.
func udpAddrOf(sa syscall.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.UDPAddr{IP: net.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port}
	case *syscall.SockaddrInet6:
		ua := &net.UDPAddr{IP: net.IP(append([]byte(nil), a.Addr[:]...)), Port: a.Port}
		if a.ZoneId != 0 {
			// The numeric zone, which net accepts: looking the
			// interface's name up cost a netlink dump per packet.
			ua.Zone = strconv.Itoa(int(a.ZoneId))
		}
		return ua
	}
	return &net.UDPAddr{}
}
