package bootstrapserver

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
)

// TestMain lets the test binary act as a server process, so the kill test
// can SIGKILL a real server without building the hearsay binary.
func TestMain(m *testing.M) {
	if db := os.Getenv("HEARSAY_TEST_SERVE_DB"); db != "" {
		// The kill test writes a hundred entries as fast as it can.
		srv, err := Start(Config{Listen: "127.0.0.1:0", DBPath: db, RateLimit: bootstrapapi.RateLimit{Disabled: true}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Println("URL", srv.URL())
		<-srv.Done() // serve until killed
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startChild runs the test binary as a server on db and returns its URL.
func startChild(t *testing.T, db string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HEARSAY_TEST_SERVE_DB="+db)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("server child printed no URL: %v", err)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "URL ")
	if !ok {
		t.Fatalf("server child said %q", line)
	}
	return cmd, url
}

func TestKilledServerLosesNoAcknowledgedWrite(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bootstrap.db")
	cmd, url := startChild(t, db)
	c, _ := bootstrapapi.NewClient([]string{url})
	ctx := context.Background()
	max := 500
	ttl := int64(3600)
	if _, err := c.SetConfig(ctx, bootstrapapi.ConfigUpdate{MaxPeers: &max, LeaseTTLSeconds: &ttl}); err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := range n {
		if _, err := c.Join(ctx, bootstrapapi.JoinRequest{ID: fmt.Sprintf("k%03d", i), Addr: "127.0.0.1:9"}); err != nil {
			t.Fatal(err)
		}
	}
	// SIGKILL right after the last acknowledgement: no graceful close.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	_, url2 := startChild(t, db)
	c2, _ := bootstrapapi.NewClient([]string{url2})
	l, err := c2.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if l.NumPeers != n || l.Config.MaxPeers != max || l.Config.LeaseTTLSeconds != ttl {
		t.Fatalf("after kill and restart: %d peers, config %+v; want %d peers, max %d", l.NumPeers, l.Config, n, max)
	}
}

func TestRestartServesSameState(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bootstrap.db")
	srv, err := Start(Config{Listen: "127.0.0.1:0", DBPath: db})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, _ := bootstrapapi.NewClient([]string{srv.URL()})
	for _, id := range []string{"a", "b"} {
		if _, err := c.Join(ctx, bootstrapapi.JoinRequest{ID: id, Nick: id, Addr: "127.0.0.1:9"}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := c.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	srv2, err := Start(Config{Listen: "127.0.0.1:0", DBPath: db})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close(ctx)
	c2, _ := bootstrapapi.NewClient([]string{srv2.URL()})
	after, err := c2.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if after.NumPeers != 2 || after.NumPeers != before.NumPeers {
		t.Fatalf("after restart %d peers, before %d", after.NumPeers, before.NumPeers)
	}
	got := map[string]bootstrapapi.Contact{}
	for _, p := range after.Peers {
		got[p.ID] = p
	}
	for _, p := range before.Peers {
		if g := got[p.ID]; !g.Expires.Equal(p.Expires) || g.Nick != p.Nick || g.Addr != p.Addr {
			t.Errorf("peer %s changed across restart: %+v -> %+v", p.ID, p, g)
		}
	}
}

func TestSecondProcessCannotOpenLockedDB(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bootstrap.db")
	startChild(t, db)
	start := time.Now()
	_, err := OpenBolt(db)
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("open of a locked db = %v, want a clear 'locked' error", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("locked open took %v", time.Since(start))
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(Config{Listen: "127.0.0.1:0", DBPath: filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")}); err == nil {
		t.Error("start with an impossible db path succeeded")
	}
	db := filepath.Join(t.TempDir(), "x.db")
	if _, err := Start(Config{Listen: "256.0.0.1:99999", DBPath: db}); err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Errorf("start with a bad listen address = %v", err)
	}
	// The failed start must have released the database.
	s, err := OpenBolt(db)
	if err != nil {
		t.Fatalf("db still locked after failed start: %v", err)
	}
	s.Close()
}

func TestCorruptStateIsAnError(t *testing.T) {
	s := newTestStore(t)
	// Write garbage where the state lives; reads must fail cleanly.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketName).Put(stateKey, []byte("{not json")) }); err != nil {
		t.Fatal(err)
	}
	err := s.View(context.Background(), func(*bootstrapapi.State) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "decode stored state") {
		t.Fatalf("view of corrupt state = %v", err)
	}
}
