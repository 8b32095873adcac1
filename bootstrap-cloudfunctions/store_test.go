package bootstrapcf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	"github.com/hearsay-chat/hearsay/bootstrap-api/apitest"
	"github.com/hearsay-chat/hearsay/bootstrap-cloudfunctions/firestoretest"
)

func TestMain(m *testing.M) { os.Exit(firestoretest.RunMain(m)) }

// newEmulatorClient returns a client of a fresh project on the shared
// emulator; the project's documents are deleted when the test ends.
func newEmulatorClient(t testing.TB) (*firestore.Client, string) {
	t.Helper()
	emu := firestoretest.Require(t)
	project := firestoretest.NewProjectID()
	client, err := firestore.NewClient(context.Background(), project)
	if err != nil {
		t.Fatalf("firestore client: %v", err)
	}
	t.Cleanup(func() {
		client.Close()
		if err := emu.Clear(context.Background(), project); err != nil {
			t.Errorf("clear: %v", err)
		}
	})
	return client, project
}

func newTestStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	client, _ := newEmulatorClient(t)
	s, err := NewStore(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFirestoreConformance runs the shared conformance suite, with the
// full 200 concurrent joins of the bootstrap issue, on the emulator.
func TestFirestoreConformance(t *testing.T) {
	apitest.Run(t, func(t testing.TB) bootstrapapi.Store { return newTestStore(t, DefaultConfig()) },
		apitest.Options{Concurrency: concurrency(t, 200)})
}

// TestFirestoreConformanceParts runs the suite with tiny parts, so every
// state spans several documents and shrinking states delete parts.
func TestFirestoreConformanceParts(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PartBytes = 300
	apitest.Run(t, func(t testing.TB) bootstrapapi.Store { return newTestStore(t, cfg) },
		apitest.Options{Concurrency: 20})
}

func TestFirestorePartsShrink(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PartBytes = 400
	s := newTestStore(t, cfg)
	ctx := context.Background()
	add := func(n int) {
		t.Helper()
		if err := s.Update(ctx, func(st *bootstrapapi.State) error {
			for i := range n {
				id := fmt.Sprintf("peer-%03d", i)
				st.Peers[id] = bootstrapapi.Record{ID: id, Name: strings.Repeat("n", 40), ExpiresUnixMilli: 1 << 50}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	parts := func() int {
		t.Helper()
		snap, err := s.head.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n, err := intField(snap, fieldParts)
		if err != nil {
			t.Fatal(err)
		}
		return int(n)
	}
	add(20)
	big := parts()
	if big < 5 {
		t.Fatalf("20 records in 400-byte parts: %d parts, want many", big)
	}
	if err := s.Update(ctx, func(st *bootstrapapi.State) error {
		clear(st.Peers)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := parts(); got >= big {
		t.Fatalf("after emptying: %d parts, want fewer than %d", got, big)
	}
	// The parts past the new count are gone, not left behind.
	for i := parts(); i < big; i++ {
		if _, err := s.partRef(i).Get(ctx); status.Code(err) != codes.NotFound {
			t.Errorf("stale part %d: err %v, want NotFound", i, err)
		}
	}
	var got int
	if err := s.View(ctx, func(st *bootstrapapi.State) error { got = len(st.Peers); return nil }); err != nil {
		t.Fatal(err)
	}
	if got != 0 {
		t.Errorf("after emptying: %d peers", got)
	}
}

// TestFirestoreInstancesShareNothing runs concurrent updates through
// several Stores with their own clients, as separate function instances
// would: only the Firestore transactions serialize them, and none may be
// lost.
func TestFirestoreInstancesShareNothing(t *testing.T) {
	emu := firestoretest.Require(t)
	project := firestoretest.NewProjectID()
	t.Cleanup(func() { _ = emu.Clear(context.Background(), project) })
	const instances, perInstance = 4, 3
	ctx := context.Background()
	stores := make([]*Store, instances)
	for i := range stores {
		client, err := firestore.NewClient(ctx, project)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		if stores[i], err = NewStore(client, DefaultConfig()); err != nil {
			t.Fatal(err)
		}
	}
	var (
		wg    sync.WaitGroup
		calls atomic.Int64
	)
	errs := make(chan error, instances*perInstance)
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perInstance {
				err := s.Update(ctx, func(st *bootstrapapi.State) error {
					calls.Add(1)
					id := fmt.Sprintf("i%d-u%d", i, j)
					st.Peers[id] = bootstrapapi.Record{ID: id, ExpiresUnixMilli: 1 << 50}
					return nil
				})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("update: %v", err)
	}
	var n int
	if err := stores[0].View(ctx, func(st *bootstrapapi.State) error { n = len(st.Peers); return nil }); err != nil {
		t.Fatal(err)
	}
	if n != instances*perInstance {
		t.Errorf("%d instances x %d updates: %d peers stored, want %d", instances, perInstance, n, instances*perInstance)
	}
	t.Logf("%d updates from %d instances: fn ran %d times (re-runs after aborted transactions)",
		instances*perInstance, instances, calls.Load())
}

func TestFirestoreCorruptState(t *testing.T) {
	client, _ := newEmulatorClient(t)
	s, err := NewStore(client, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		doc  map[string]any
		want string
	}{
		{"future format", map[string]any{"format": 9, "parts": 1, "data": []byte("{}")}, "format 9"},
		{"too many parts", map[string]any{"format": 1, "parts": 1000, "data": []byte("{}")}, "part count"},
		{"missing part", map[string]any{"format": 1, "parts": 2, "data": []byte("{}")}, "missing"},
		{"not json", map[string]any{"format": 1, "parts": 1, "data": []byte("{nope")}, "decode"},
		{"data not bytes", map[string]any{"format": 1, "parts": 1, "data": "text"}, "want bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.head.Set(ctx, tc.doc); err != nil {
				t.Fatal(err)
			}
			err := s.View(ctx, func(*bootstrapapi.State) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("View on corrupt state: %v, want an error mentioning %q", err, tc.want)
			}
			if code := bootstrapapi.ErrorCode(err); code != bootstrapapi.ECodeInternal {
				t.Errorf("corrupt state is code %q, want %q", code, bootstrapapi.ECodeInternal)
			}
			called := false
			err = s.Update(ctx, func(*bootstrapapi.State) error { called = true; return nil })
			if err == nil || called {
				t.Fatalf("Update on corrupt state: err %v, fn called %v", err, called)
			}
		})
	}
}

// TestFirestoreContentionUnavailable checks what a transaction that stays
// contended becomes. Two instances (separate clients, so the in-process
// queue does not order them) each read the state and wait for the other
// to have read it too, so their commits must conflict; with one attempt
// allowed, at least one fails, with an error wrapping ErrUnavailable, and
// only the acknowledged update is stored.
func TestFirestoreContentionUnavailable(t *testing.T) {
	emu := firestoretest.Require(t)
	project := firestoretest.NewProjectID()
	t.Cleanup(func() { _ = emu.Clear(context.Background(), project) })
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.MaxAttempts = 1
	const n = 2
	var (
		readers sync.WaitGroup
		wg      sync.WaitGroup
	)
	readers.Add(n)
	bothRead := make(chan struct{})
	go func() { readers.Wait(); close(bothRead) }()
	errs := make([]error, n)
	for i := range n {
		client, err := firestore.NewClient(ctx, project)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		s, err := NewStore(client, cfg)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Update(ctx, func(st *bootstrapapi.State) error {
				readers.Done()
				select {
				case <-bothRead:
				case <-time.After(30 * time.Second):
					return errors.New("the other transaction never read the state")
				}
				id := fmt.Sprintf("p%d", i)
				st.Peers[id] = bootstrapapi.Record{ID: id, ExpiresUnixMilli: 1 << 50}
				return nil
			})
		}()
	}
	wg.Wait()
	ok, unavailable := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, bootstrapapi.ErrUnavailable) && bootstrapapi.ErrorCode(err) == bootstrapapi.ECodeUnavailable:
			unavailable++
		default:
			t.Errorf("update failed with %v, want nil or ErrUnavailable", err)
		}
	}
	if unavailable == 0 {
		t.Errorf("two conflicting single-attempt transactions both committed: %v", errs)
	}
	var stored int
	s, _ := NewStore(mustClient(t, project), DefaultConfig())
	if err := s.View(ctx, func(st *bootstrapapi.State) error { stored = len(st.Peers); return nil }); err != nil {
		t.Fatal(err)
	}
	if stored != ok {
		t.Errorf("%d updates acknowledged but %d stored", ok, stored)
	}
	t.Logf("two conflicting transactions: %d committed, %d unavailable (%v)", ok, unavailable, errs)
}

func mustClient(t *testing.T, project string) *firestore.Client {
	t.Helper()
	client, err := firestore.NewClient(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func TestMapErr(t *testing.T) {
	s := &Store{cfg: DefaultConfig()}
	ctx := context.Background()
	fnErr := errors.New("from fn")
	if got := s.mapErr(ctx, "op", fnErr, fnErr); got != fnErr {
		t.Errorf("fn error: got %v, want it unchanged", got)
	}
	for _, c := range []codes.Code{codes.Aborted, codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded} {
		err := s.mapErr(ctx, "op", status.Error(c, "x"), nil)
		if !errors.Is(err, bootstrapapi.ErrUnavailable) || bootstrapapi.ErrorCode(err) != bootstrapapi.ECodeUnavailable {
			t.Errorf("code %v: got %v, want ErrUnavailable", c, err)
		}
	}
	err := s.mapErr(ctx, "op", status.Error(codes.PermissionDenied, "no"), nil)
	if errors.Is(err, bootstrapapi.ErrUnavailable) || bootstrapapi.ErrorCode(err) != bootstrapapi.ECodeInternal {
		t.Errorf("permission denied: got %v (code %s), want internal", err, bootstrapapi.ErrorCode(err))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.mapErr(cctx, "op", status.Error(codes.Canceled, "c"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}
}

func TestNewStoreValidates(t *testing.T) {
	client := &firestore.Client{}
	for _, mod := range []func(*Config){
		func(c *Config) { c.Collection = "" },
		func(c *Config) { c.Collection = "a/b" },
		func(c *Config) { c.Document = "__x__" },
		func(c *Config) { c.MaxAttempts = 0 },
		func(c *Config) { c.PartBytes = 2 << 20 },
	} {
		cfg := DefaultConfig()
		mod(&cfg)
		if _, err := NewStore(client, cfg); err == nil {
			t.Errorf("NewStore(%+v) accepted an invalid config", cfg)
		}
	}
	if _, err := NewStore(nil, DefaultConfig()); err == nil {
		t.Error("NewStore(nil client) succeeded")
	}
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want []string
	}{
		{"", 3, []string{""}},
		{"abc", 3, []string{"abc"}},
		{"abcd", 3, []string{"abc", "d"}},
		{"abcdef", 3, []string{"abc", "def"}},
	} {
		var got []string
		for _, p := range split([]byte(tc.in), tc.n) {
			got = append(got, string(p))
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("split(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// concurrency returns def, or HEARSAY_FIRESTORE_CONCURRENCY when set (to
// measure the emulator at other loads).
func concurrency(t testing.TB, def int) int {
	if v := os.Getenv("HEARSAY_FIRESTORE_CONCURRENCY"); v != "" {
		var n int
		if _, err := fmt.Sscan(v, &n); err != nil || n < 1 {
			t.Fatalf("HEARSAY_FIRESTORE_CONCURRENCY=%q is not a positive number", v)
		}
		return n
	}
	return def
}

// BenchmarkFirestoreJoin measures one Update (read, modify, write the
// state of 100 peers) on the emulator: the cost of a join or refill.
func BenchmarkFirestoreJoin(b *testing.B) {
	s := newTestStore(b, DefaultConfig())
	ctx := context.Background()
	now := time.Now()
	i := 0
	for b.Loop() {
		err := s.Update(ctx, func(st *bootstrapapi.State) error {
			st.Config.MaxPeers = 1000
			rec := bootstrapapi.Record{ID: fmt.Sprintf("peer-%03d", i%100), IP: "192.0.2.1", Port: "7000", Timestamp: now.Unix()}
			_, err := bootstrapapi.Join(st, rec, now, true)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkFirestoreList measures one View of a 100-peer state: the cost
// of a list or ping.
func BenchmarkFirestoreList(b *testing.B) {
	s := newTestStore(b, DefaultConfig())
	ctx := context.Background()
	if err := s.Update(ctx, func(st *bootstrapapi.State) error {
		for i := range 100 {
			id := fmt.Sprintf("peer-%03d", i)
			st.Peers[id] = bootstrapapi.Record{ID: id, IP: "192.0.2.1", Port: "7000", ExpiresUnixMilli: 1 << 50}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := s.View(ctx, func(st *bootstrapapi.State) error {
			if len(st.Peers) != 100 {
				return fmt.Errorf("%d peers", len(st.Peers))
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}
