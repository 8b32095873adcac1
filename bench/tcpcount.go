package bench

// tcpDelta returns the bytes received on TCP sockets between two
// tcpReceived snapshots: growth of sockets present in both, plus everything
// on sockets opened since.
func tcpDelta(before, after map[string]uint64) uint64 {
	var sum uint64
	for k, v := range after {
		if b, ok := before[k]; ok && v >= b {
			sum += v - b
		} else if !ok {
			sum += v
		}
	}
	return sum
}
