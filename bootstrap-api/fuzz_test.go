package bootstrapapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzParseLegacyPeer checks that the legacy decoder never panics and that
// whatever it accepts is a record the service can render and re-parse.
func FuzzParseLegacyPeer(f *testing.F) {
	for _, s := range []string{
		"a1 alice 127.0.0.1 7001 tcp online 1700000000",
		"a1 alice ::1 7001 tcp online 1",
		"a b c", "", " ", "id name host 1 p s 0\n", "id name 127.0.0.1 65536 tcp online 1",
		"id\x00 n 1.2.3.4 1 p s 1", "id n 1.2.3.4 1 p s 99999999999999999999",
		// cli-chat's shapes: empty status, empty timestamp, both, no
		// address, a timestamp that is not a number.
		"a1 alice 127.0.0.1 7001 tcp  1700000000", "a1 alice 127.0.0.1 7001 tcp online ",
		"a1 alice 127.0.0.1 7001 tcp  ", "a1    tcp online 5", "a1 alice 127.0.0.1 7001 tcp online x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		rec, err := ParseLegacyPeer(body)
		if err != nil {
			if ErrorCode(err) != ECodeInvalid {
				t.Fatalf("error %v has code %q, want invalid", err, ErrorCode(err))
			}
			return
		}
		line := strings.Join([]string{rec.ID, rec.Name, rec.IP, rec.Port, rec.Protocol, rec.Status,
			legacyView(&State{Peers: map[string]Record{rec.ID: rec}}).Peers[rec.ID].Timestamp}, " ")
		again, err := ParseLegacyPeer(line)
		if err != nil || again != rec {
			t.Fatalf("accepted %q but re-parse of %q gave %+v, %v", body, line, again, err)
		}
	})
}

// FuzzParseLegacyConfig checks the legacy config decoder.
func FuzzParseLegacyConfig(f *testing.F) {
	for _, s := range []string{"3 10", "0 0", "-1 5", "x y", "1", "1 2 3", "99999999999999999999 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		u, err := ParseLegacyConfig(body)
		if err != nil {
			return
		}
		if u.MaxPeers == nil || u.MinRefillCandidates == nil {
			t.Fatalf("accepted %q without both fields", body)
		}
	})
}

// FuzzHandler sends arbitrary bodies to every endpoint of both formats:
// the handler must answer 200 or a 4xx with a {code,message} body, never
// a 5xx, and invalid requests must leave the state unchanged.
func FuzzHandler(f *testing.F) {
	seeds := []struct {
		path, body string
	}{
		{"/v1/join", `{"id":"a","addr":"127.0.0.1:1"}`},
		{"/v1/refill", `{"id":"a","nick":"x","addr":"[::1]:80","protocol":"p"}`},
		{"/v1/leave", `{"id":"a"}`},
		{"/v1/list", `{"n":2}`},
		{"/v1/config", `{"max_peers":5,"lease_ttl_seconds":30}`},
		{"/v1/reset", ``},
		{"/join", "a n 127.0.0.1 1 tcp on 5"},
		{"/refill", "a n 127.0.0.1 1 tcp on 5"},
		{"/config", "4 4"},
		{"/leave", "a"},
		{"/join", "a n 127.0.0.1 1 tcp  5"},
		{"/refill", "a n 127.0.0.1 1 tcp  "},
		{"/refill", "a      "},
		{"/v1/join", `{"id":"a","addr":"127.0.0.1:1"}{}`},
		{"/v1/join", `[1,2,3]`},
		{"/v1/join", `{"id":"\u0000"}`},
	}
	for _, s := range seeds {
		f.Add(s.path, s.body)
	}
	// Signed requests at the fuzz handler's clock, so the fuzzer starts
	// from bodies that pass verification and mutates them.
	k := testKey(1)
	join := JoinRequest{ID: testID(k), Addr: "127.0.0.1:1"}
	SignJoin(NewKeySigner(k), "join", &join, 1_800_000_000_000)
	leave := LeaveRequest{ID: testID(k)}
	SignLeave(NewKeySigner(k), &leave, 1_800_000_000_000)
	for path, v := range map[string]any{"/v1/join": join, "/v1/leave": leave} {
		b, _ := json.Marshal(v)
		f.Add(path, string(b))
	}
	f.Fuzz(func(t *testing.T, path, body string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		store := NewMemStore()
		now := time.Unix(1_800_000_000, 0)
		h := NewHandler(store, HandlerConfig{Now: func() time.Time { return now }})
		req, err := http.NewRequest(http.MethodPost, "http://x"+path, strings.NewReader(body))
		if err != nil {
			return // not a URL a client could send
		}
		req.Header.Set("Content-Type", "application/json")
		var before bytes.Buffer
		_ = json.NewEncoder(&before).Encode(snapshot(t, store))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("POST %q %q: status %d %s", path, body, w.Code, w.Body)
		}
		if w.Code != http.StatusOK {
			var e Error
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code == "" || e.Message == "" {
				t.Fatalf("POST %q: error body %q", path, w.Body)
			}
			var after bytes.Buffer
			_ = json.NewEncoder(&after).Encode(snapshot(t, store))
			if before.String() != after.String() {
				t.Fatalf("POST %q %q failed with %d but changed state", path, body, w.Code)
			}
		}
	})
}

func snapshot(t *testing.T, s Store) *State {
	var out *State
	if err := s.View(context.Background(), func(st *State) error { out = st.Clone(); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}
