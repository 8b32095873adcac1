package chat_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// A request for room sets is answered only with a credit (a digest we
// greeted the peer with) and at most once per second: a peer that earns a
// credit per greeting by flipping the kept mark, and asks with an empty
// list, would otherwise get every member's signed set per flip. Each
// check syncs on a marker envelope sent after the request on the same
// link: frames leave a link in order. a's digest clock stands still
// unless the test moves it: "at once" holds however long a check takes
// on a slow machine.
func TestRoomSetDigestRequestBounds(t *testing.T) {
	var mu sync.Mutex
	sets, markers := 0, map[string]bool{}
	start := time.Now()
	var ahead atomic.Int64 // how far the test moved a's digest clock
	peers := chattest.Cluster(t, 2, func(i int, cfg *chat.Config) {
		cfg.AntiEntropyInterval = time.Hour // no refreshes
		if i != 0 {
			return
		}
		chat.SetDigestClockForTest(cfg, func() time.Time { return start.Add(time.Duration(ahead.Load())) })
		chat.SetFrameHookForTest(cfg, func(_ string, f *chatpb.Frame) {
			mu.Lock()
			defer mu.Unlock()
			if f.GetRoomSet() != nil {
				sets++
			}
			if env := f.GetEnvelope(); env != nil {
				markers[string(env.Body)] = true
			}
		})
	})
	a, b := peers[0], peers[1]
	seq := a.NextSeqForTest("lobby")
	// ask sends b's empty request to a, then a marker, and returns how
	// many room sets a sent b in between.
	ask := func(marker string) int {
		t.Helper()
		mu.Lock()
		before := sets
		mu.Unlock()
		a.RoomSetDigestFromForTest(b.ID(), &chatpb.RoomSetDigest{Request: true})
		if !a.SendFrameForTest(b.ID(), signedLobby(a, marker, seq)) {
			t.Fatal("marker not queued")
		}
		seq++
		chattest.WaitFor(t, timeout, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return markers[marker]
		}, "marker %q sent", marker)
		mu.Lock()
		defer mu.Unlock()
		return sets - before
	}
	if got := ask("no credit"); got != 0 {
		t.Errorf("a request without a credit brought %d room sets, want 0", got)
	}
	if !a.GrantDigestForTest(b.ID()) {
		t.Fatal("no link to b")
	}
	if got := ask("credit"); got == 0 {
		t.Error("a request with a credit brought no room set, want a's own at least")
	}
	if !a.GrantDigestForTest(b.ID()) {
		t.Fatal("no link to b")
	}
	if got := ask("again at once"); got != 0 {
		t.Errorf("a second request within a second brought %d room sets, want 0", got)
	}
	// The credit of the request refused for the rate is still there.
	ahead.Add(int64(chat.DigestAnswerEveryForTest))
	if got := ask("a period later"); got == 0 {
		t.Error("a request with a credit a period after the last answer brought no room set")
	}
}
