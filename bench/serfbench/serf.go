package main

// The serf system: N serf agents in one process, with serf's default
// configuration (memberlist LAN settings, user events up to 512 bytes)
// except the node names, the bind address 127.0.0.1 and free ports.
// Messages are user events (not coalesced); a delivery is a user event
// reaching a peer's event channel.
//
// Counting and faults sit in a memberlist.Transport wrapper around the
// standard NetTransport: it counts every byte received (UDP packets and TCP
// streams: serf's user events ride on gossip packets, with probes and
// membership gossip in the same packets) and drops a ratio of received UDP
// packets. Copies are counted through serf's own metrics: every serf
// message received ("serf.msgs.received" samples; during a workload these
// are the user events, duplicates included).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-metrics"
	"github.com/hashicorp/serf/serf"

	"github.com/hearsay-chat/hearsay/bench"
)

// serfEventName is the user event name of bench messages.
const serfEventName = "m"

// copySink is a go-metrics sink that counts serf messages received. serf
// reports metrics through the process-global go-metrics, so the count is
// over every agent in the process.
type copySink struct{ copies atomic.Uint64 }

var _ metrics.MetricSink = (*copySink)(nil)

func isReceived(key []string) bool {
	return strings.HasSuffix(strings.Join(key, "."), "serf.msgs.received")
}

func (s *copySink) SetGauge([]string, float32)                               {}
func (s *copySink) SetGaugeWithLabels([]string, float32, []metrics.Label)    {}
func (s *copySink) EmitKey([]string, float32)                                {}
func (s *copySink) IncrCounter([]string, float32)                            {}
func (s *copySink) IncrCounterWithLabels([]string, float32, []metrics.Label) {}
func (s *copySink) AddSample(key []string, _ float32) {
	if isReceived(key) {
		s.copies.Add(1)
	}
}
func (s *copySink) AddSampleWithLabels(key []string, v float32, _ []metrics.Label) {
	s.AddSample(key, v)
}

var (
	sinkOnce sync.Once
	sink     = &copySink{}
)

func installSink() error {
	var err error
	sinkOnce.Do(func() {
		cfg := metrics.DefaultConfig("")
		cfg.EnableHostname = false
		cfg.EnableHostnameLabel = false
		cfg.EnableRuntimeMetrics = false
		cfg.EnableServiceLabel = false
		_, err = metrics.NewGlobal(cfg, sink)
	})
	return err
}

// serfSystem is the serf bench.System.
type serfSystem struct {
	agents []*serf.Serf
	trs    []*countingTransport
	obs    bench.Observer
	wg     sync.WaitGroup
	stop   chan struct{}

	stopOnce sync.Once
	stopErr  error
}

var _ bench.System = (*serfSystem)(nil)

func newSerfSystem() *serfSystem { return &serfSystem{stop: make(chan struct{})} }

func (s *serfSystem) Name() string { return "serf" }

// maxSerfPayload is what fits in serf's default 512-byte user event limit
// with the event name and encoding overhead.
const maxSerfPayload = 480

func (s *serfSystem) Start(ctx context.Context, cfg bench.SystemConfig, obs bench.Observer) error {
	if cfg.Size > maxSerfPayload {
		return fmt.Errorf("serf payload of %d bytes: %w (serf's default user event limit is 512 bytes)", cfg.Size, bench.ErrUnsupported)
	}
	if err := installSink(); err != nil {
		return fmt.Errorf("metrics sink: %w", err)
	}
	s.obs = obs
	for i := 0; i < cfg.Peers; i++ {
		tr, err := newCountingTransport(cfg.Drop)
		if err != nil {
			return errors.Join(fmt.Errorf("serf peer %d: %w", i, err), s.Stop())
		}
		c := serf.DefaultConfig()
		c.NodeName = fmt.Sprintf("serf%d", i)
		c.LogOutput = io.Discard
		c.MemberlistConfig.LogOutput = io.Discard
		c.MemberlistConfig.Name = c.NodeName
		c.MemberlistConfig.BindAddr = "127.0.0.1"
		c.MemberlistConfig.BindPort = tr.port
		c.MemberlistConfig.AdvertiseAddr = "127.0.0.1"
		c.MemberlistConfig.AdvertisePort = tr.port
		c.MemberlistConfig.Transport = tr
		events := make(chan serf.Event, 1<<15)
		c.EventCh = events
		a, err := serf.Create(c)
		if err != nil {
			tr.Shutdown()
			return errors.Join(fmt.Errorf("serf peer %d: create: %w", i, err), s.Stop())
		}
		s.agents = append(s.agents, a)
		s.trs = append(s.trs, tr)
		s.wg.Add(1)
		go s.read(i, events)
		if i > 0 {
			if _, err := a.Join([]string{fmt.Sprintf("127.0.0.1:%d", s.trs[0].port)}, true); err != nil {
				return errors.Join(fmt.Errorf("serf peer %d: join: %w", i, err), s.Stop())
			}
		}
	}
	// The agents are checked in order, and one found ready is not checked
	// again: a poll costs one Members call (a copy of every member), not
	// one per agent, which at N=200 and 50 polls a second took a core.
	deadline := time.Now().Add(30*time.Second + 2*time.Duration(cfg.Peers)*time.Second)
	next := 0
	for {
		for next < len(s.agents) {
			alive := 0
			for _, m := range s.agents[next].Members() {
				if m.Status == serf.StatusAlive {
					alive++
				}
			}
			if alive < cfg.Peers {
				break
			}
			next++
		}
		if next == len(s.agents) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("timed out waiting for serf membership: %d of %d agents see every agent alive", next, cfg.Peers), s.Stop())
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), s.Stop())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// read forwards agent i's user events to the observer until Stop.
func (s *serfSystem) read(i int, events <-chan serf.Event) {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case ev := <-events:
			if ue, ok := ev.(serf.UserEvent); ok && ue.Name == serfEventName {
				s.obs.Deliver(i, ue.Payload)
			}
		}
	}
}

func (s *serfSystem) Send(ctx context.Context, from int, payload []byte) error {
	if from < 0 || from >= len(s.agents) {
		return fmt.Errorf("serf: no peer %d", from)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// UserEvent keeps the payload in its broadcast queue: give it a copy.
	p := append([]byte(nil), payload...)
	if err := s.agents[from].UserEvent(serfEventName, p, false); err != nil {
		return fmt.Errorf("serf user event: %w", err)
	}
	// serf does not deliver an agent's own user event to its own event
	// channel before gossip brings it back; the runner ignores the
	// sender's echo either way.
	return nil
}

func (s *serfSystem) Counters() bench.Counters {
	var c bench.Counters
	c.Copies = sink.copies.Load()
	c.WireKnown = true
	for _, t := range s.trs {
		c.WireBytes += t.received.Load()
	}
	return c
}

func (s *serfSystem) Stop() error {
	s.stopOnce.Do(func() {
		var errs []error
		for _, a := range s.agents {
			errs = append(errs, a.Shutdown())
		}
		close(s.stop)
		s.wg.Wait()
		for _, t := range s.trs {
			t.Shutdown() // idempotent after memberlist's own Shutdown
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}
