package bootstrapserver

import (
	"path/filepath"
	"testing"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	"github.com/hearsay-chat/hearsay/bootstrap-api/apitest"
)

func newTestStore(t testing.TB) *BoltStore {
	t.Helper()
	s, err := OpenBolt(filepath.Join(t.TempDir(), "bootstrap.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	apitest.Run(t, func(t testing.TB) bootstrapapi.Store { return newTestStore(t) }, apitest.Options{})
}

func TestMemStoreConformance(t *testing.T) {
	apitest.Run(t, func(testing.TB) bootstrapapi.Store { return bootstrapapi.NewMemStore() }, apitest.Options{})
}
