package bootstrapserver

import (
	"context"
	"fmt"
	"testing"
	"time"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	"github.com/hearsay-chat/hearsay/bootstrap-api/apitest"
)

// BenchmarkJoin measures a v1 join through the HTTP handler and the Go
// client on bbolt (each join is one fsynced transaction).
func BenchmarkJoin(b *testing.B) {
	env := apitest.NewEnv(b, newTestStore(b), bootstrapapi.HandlerConfig{RateLimit: bootstrapapi.RateLimit{Disabled: true}})
	ctx := context.Background()
	max := bootstrapapi.MaxMaxPeers
	if _, err := env.Client.SetConfig(ctx, bootstrapapi.ConfigUpdate{MaxPeers: &max}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// 1000 distinct IDs, then renewals: a realistic mix at full size.
		if _, err := env.Client.Join(ctx, bootstrapapi.JoinRequest{ID: fmt.Sprintf("p%d", i%1000), Addr: "127.0.0.1:7946"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignedJoin is BenchmarkJoin with signed requests: one peer
// renewing its signed entry (signature made by the client, checked by the
// service, replay rule in the transaction).
func BenchmarkSignedJoin(b *testing.B) {
	env := apitest.NewEnv(b, newTestStore(b), bootstrapapi.HandlerConfig{Now: time.Now,
		RateLimit: bootstrapapi.RateLimit{Disabled: true}})
	k := apitest.Key(1)
	c, err := bootstrapapi.NewClient([]string{env.Server.URL}, bootstrapapi.WithHTTPClient(env.Server.Client()),
		bootstrapapi.WithSigner(bootstrapapi.NewKeySigner(k)))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.Join(ctx, bootstrapapi.JoinRequest{ID: apitest.ID(k), Addr: "127.0.0.1:7946"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkList measures a v1 list of 3 random contacts out of 1000.
func BenchmarkList(b *testing.B) {
	env := apitest.NewEnv(b, newTestStore(b), bootstrapapi.HandlerConfig{RateLimit: bootstrapapi.RateLimit{Disabled: true}})
	ctx := context.Background()
	max := 1000
	if _, err := env.Client.SetConfig(ctx, bootstrapapi.ConfigUpdate{MaxPeers: &max}); err != nil {
		b.Fatal(err)
	}
	for i := range max {
		if _, err := env.Client.Join(ctx, bootstrapapi.JoinRequest{ID: fmt.Sprintf("p%d", i), Addr: "127.0.0.1:7946"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := env.Client.List(ctx, 3); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreUpdate measures the bbolt transaction alone.
func BenchmarkStoreUpdate(b *testing.B) {
	s := newTestStore(b)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		if err := s.Update(ctx, func(st *bootstrapapi.State) error {
			st.Peers[fmt.Sprintf("p%d", i%3)] = bootstrapapi.Record{ID: "x", ExpiresUnixMilli: 1 << 50}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}
