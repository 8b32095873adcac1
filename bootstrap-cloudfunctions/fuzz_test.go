package bootstrapcf

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
)

// FuzzDecodeState feeds the stored-state decoder arbitrary bytes (the
// database is input too): it must never panic, and whatever it accepts
// must survive an encode/decode round trip unchanged (after one
// normalizing trip, since JSON rewrites invalid UTF-8).
func FuzzDecodeState(f *testing.F) {
	seed, _ := json.Marshal(bootstrapapi.NewState())
	f.Add(seed)
	full := bootstrapapi.NewState()
	full.Peers["a1"] = bootstrapapi.Record{ID: "a1", Name: "alice", IP: "127.0.0.1", Port: "7001", Protocol: "tcp",
		Status: "online", Timestamp: 100, ExpiresUnixMilli: 1 << 42}
	seed, _ = json.Marshal(full)
	f.Add(seed)
	for _, s := range []string{"", "{}", "null", "[]", `{"peers":{"x":{"id":"y"}}}`, `{"config":{"max_peers":-1}}`,
		`{"peers":{"x":{"id":"x","timestamp":"no"}}}`, "{\"peers\":{\"\xff\":{\"id\":\"\xff\"}}}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		st, err := decodeState(raw)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "decode") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		if st.Peers == nil {
			t.Fatal("decoded state has a nil peer map")
		}
		again := func(s *bootstrapapi.State) *bootstrapapi.State {
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatalf("encode a decoded state: %v", err)
			}
			out, err := decodeState(b)
			if err != nil {
				t.Fatalf("decode an encoded state %s: %v", b, err)
			}
			return out
		}
		st2 := again(st)
		if st3 := again(st2); !reflect.DeepEqual(st2, st3) {
			t.Fatalf("round trip changed the state:\n%+v\n%+v", st2, st3)
		}
	})
}
