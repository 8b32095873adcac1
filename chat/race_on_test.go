//go:build race

package chat_test

// raceEnabled: the race detector slows every goroutine several times, and
// dozens of peers with N² TLS streams in one process do not converge on
// a shared 2-core machine under it; the tests that need a large group
// run a smaller one there (the detector checks concurrency, not scale).
const raceEnabled = true
