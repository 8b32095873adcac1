// Command replsmoke runs the REPL with a fake peer, for the pseudo-terminal
// screen tests and for trying the REPL by hand. SIGUSR1 makes "bob" send a
// message to the lobby; SIGUSR2 makes "carol" join. With -flood D, SIGUSR1
// instead starts bob sending "rb1", "rb2", ... every D; the next SIGUSR1, or
// reaching -flood-max lines, stops him for good: he then says how many he
// sent ("flood over after N"). With -direct the peer has direct messages
// and SIGUSR1 steps through a conversation instead: bob writes to alice,
// then alice's last direct message becomes sent, delivered and read, then
// two messages of #lobby arrive as catch-up (backlog), then bob writes in
// #lobby.
//
//	go run ./repl/internal/replsmoke -history /tmp/h
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/repl"
	"github.com/hearsay-chat/hearsay/repl/repltest"
)

func main() {
	os.Exit(run())
}

func run() int {
	history := flag.String("history", "", "history file")
	marker := flag.String("signal-marker", "", "file to write when OnSignal runs")
	rooms := flag.Bool("rooms", false, "give the fake peer rooms (/join, /switch, /part, /rooms, /history)")
	flood := flag.Duration("flood", 0, "SIGUSR1 starts and stops bob sending a line every `interval`")
	floodMax := flag.Int("flood-max", 500, "the most lines bob sends with -flood")
	direct := flag.Bool("direct", false, "give the fake peer direct messages; SIGUSR1 steps through a conversation")
	flag.Parse()

	peer := repltest.NewPeer("p-alice-0001", "alice")
	peer.SetEmitOwn(true)
	peer.AddMember(hearsay.Member{ID: "p-bob-0002", Nick: "bob", Addr: "127.0.0.1:7950", State: "alive"})
	peer.AddMember(hearsay.Member{ID: "p-bobby-0003", Nick: "bobby", Addr: "127.0.0.1:7951", State: "alive"})

	cfg := repl.DefaultConfig()
	cfg.Peer = peer
	cfg.Bootstrap = repltest.NewBootstrap(time.Now)
	cfg.HistoryFile = *history
	if *rooms {
		cfg.Rooms = peer
	}
	if *direct {
		cfg.Direct = peer
	}
	cfg.OnSignal = func(sig os.Signal) {
		if *marker != "" {
			_ = os.WriteFile(*marker, []byte(fmt.Sprint(sig)), 0o600)
		}
	}
	r, err := repl.New(cfg, repl.StdIO())
	if err != nil {
		fmt.Fprintln(os.Stderr, "replsmoke:", err)
		return 1
	}
	defer r.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	usr := make(chan os.Signal, 4)
	signal.Notify(usr, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(usr)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 0
		// The flood's ticker; nil (its channel never ready) when bob is quiet.
		var tick *time.Ticker
		var tickC <-chan time.Time
		defer func() {
			if tick != nil {
				tick.Stop()
			}
		}()
		sent := 0
		floodOver := false
		bob := func(id, text string) {
			peer.Emit(hearsay.Event{Type: hearsay.EventMessage, Room: "lobby", From: "bob", FromID: "p-bob-0002",
				ID: id, Text: text})
		}
		stopFlood := func() {
			tick.Stop()
			tick, tickC = nil, nil
			floodOver = true
			bob("p-bob-0002/over", fmt.Sprintf("flood over after %d", sent))
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-tickC:
				sent++
				bob(fmt.Sprintf("p-bob-0002/rb%d", sent), fmt.Sprintf("rb%d", sent))
				if sent >= *floodMax {
					stopFlood()
				}
				continue
			case s := <-usr:
				n++
				if s == syscall.SIGUSR2 {
					peer.Emit(hearsay.Event{Type: hearsay.EventJoin, From: "carol", FromID: "p-carol-0004"})
					continue
				}
				if *direct {
					directStep(peer, n)
					continue
				}
				if *flood > 0 {
					switch {
					case floodOver:
					case tick == nil:
						tick = time.NewTicker(*flood)
						tickC = tick.C
					default:
						stopFlood()
					}
					continue
				}
				peer.Emit(hearsay.Event{Type: hearsay.EventMessage, Room: "lobby", From: "bob", FromID: "p-bob-0002",
					ID: fmt.Sprintf("p-bob-0002/%d", n), Text: fmt.Sprintf("incoming message %d", n)})
			}
		}
	}()
	err = r.Run(ctx)
	cancel()
	wg.Wait()
	if err != nil {
		fmt.Fprintln(os.Stderr, "replsmoke:", err)
		return 1
	}
	fmt.Println("bye")
	return 0
}

// directStep plays step n (from 1) of the -direct conversation.
func directStep(peer *repltest.Peer, n int) {
	switch n {
	case 1:
		peer.ReceiveDirect("p-bob-0002", "bob", "psst alice")
	case 2:
		peer.SetDirectState(hearsay.StateSent)
	case 3:
		peer.SetDirectState(hearsay.StateDelivered)
	case 4:
		peer.SetDirectState(hearsay.StateRead)
	case 5:
		old := time.Now().Add(-time.Hour)
		for i := 1; i <= 2; i++ {
			peer.Emit(hearsay.Event{Type: hearsay.EventMessage, Time: old.Add(time.Duration(i) * time.Minute), Room: "lobby",
				From: "bob", FromID: "p-bob-0002", ID: fmt.Sprintf("p-bob-0002/b%d", i), Text: fmt.Sprintf("while away %d", i), Backlog: true})
		}
	default:
		peer.Emit(hearsay.Event{Type: hearsay.EventMessage, Room: "lobby", From: "bob", FromID: "p-bob-0002",
			ID: fmt.Sprintf("p-bob-0002/%d", n), Text: fmt.Sprintf("incoming message %d", n)})
	}
}
