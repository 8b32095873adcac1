package bootstrapcf

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	"github.com/hearsay-chat/hearsay/bootstrap-cloudfunctions/firestoretest"
)

const testToken = "t0ken"

// exchange is one request of the parity script.
type exchange struct {
	method, path, ctype, body string
	admin                     bool
	// fixedPath keeps the path unprefixed on the function (the 404
	// message echoes the path).
	fixedPath bool
}

// parityScript exercises both formats, every operation, the admin token
// and the error answers.
var parityScript = []exchange{
	{method: "POST", path: "/ping"},
	{method: "GET", path: "/v1/ping"},
	{method: "POST", path: "/config", ctype: "text/plain", body: "10 4"},
	{method: "POST", path: "/config", ctype: "text/plain", body: "10 4", admin: true},
	{method: "POST", path: "/join", ctype: "text/plain", body: "a1 alice 127.0.0.1 7001 tcp online 100"},
	{method: "POST", path: "/join", ctype: "text/plain", body: "a2 bob 10.0.0.2 7002 udp online 50\n"},
	{method: "POST", path: "/refill", ctype: "text/plain", body: "a3 carol 10.0.0.3 7003 tcp online 10"},
	{method: "POST", path: "/refill", ctype: "text/plain", body: "a4 dave 10.0.0.4 7004 tcp online 5"},
	{method: "POST", path: "/list"},
	{method: "POST", path: "/leave", ctype: "text/plain", body: "a2"},
	{method: "POST", path: "/v1/join", ctype: "application/json", body: `{"id":"v1","nick":"vee","addr":"192.0.2.1:9000","protocol":"grpc"}`},
	{method: "POST", path: "/v1/join", ctype: "application/json", body: `{"id":"v1","nick":"vee","addr":"192.0.2.1:9000","protocol":"grpc"}`},
	{method: "POST", path: "/v1/refill", ctype: "application/json", body: `{"id":"v2","addr":"host.example:9001"}`},
	{method: "GET", path: "/v1/list"},
	{method: "POST", path: "/v1/list", ctype: "application/json", body: `{"n":50}`}, // at least all: a smaller n picks at random
	{method: "POST", path: "/v1/leave", ctype: "application/json", body: `{"id":"v1"}`},
	{method: "GET", path: "/v1/config"},
	{method: "POST", path: "/v1/config", ctype: "application/json", body: `{"max_peers":5}`, admin: true},
	{method: "POST", path: "/list"},
	// Errors: same status and same JSON message.
	{method: "POST", path: "/join", ctype: "text/plain", body: "a9 only-three-fields 1.2.3.4"},
	{method: "POST", path: "/join", ctype: "text/plain", body: "a9 n 1.2.3.4 99999 tcp online 1"},
	{method: "POST", path: "/v1/join", ctype: "text/plain", body: `{"id":"x","addr":"1.2.3.4:5"}`},
	{method: "POST", path: "/v1/join", ctype: "application/json", body: `{"id":"x","addr":"1.2.3.4:5","extra":1}`},
	{method: "GET", path: "/join"},
	{method: "POST", path: "/v1/reset"},
	{method: "POST", path: "/nope", fixedPath: true},
	{method: "POST", path: "/reset", admin: true},
	{method: "POST", path: "/list"},
}

// answer is a response reduced to what must match: status and the JSON
// body with clock-dependent fields removed and lists sorted.
type answer struct {
	status int
	body   string
}

func do(t *testing.T, client *http.Client, base string, x exchange, prefix string) answer {
	t.Helper()
	path := x.path
	if !x.fixedPath {
		path = prefix + path
	}
	req, err := http.NewRequest(x.method, base+path, strings.NewReader(x.body))
	if err != nil {
		t.Fatal(err)
	}
	if x.ctype != "" {
		req.Header.Set("Content-Type", x.ctype)
	}
	if x.admin {
		req.Header.Set("Authorization", "Bearer "+testToken)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", x.method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, canonical(t, b)}
}

// canonical removes the fields that depend on the clock (ping time,
// contact since/expires) and sorts lists of contacts by id.
func canonical(t *testing.T, body []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("answer is not JSON: %q: %v", body, err)
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range []string{"time", "since", "expires"} {
				delete(v, k)
			}
			for k, e := range v {
				v[k] = walk(e)
			}
		case []any:
			for i, e := range v {
				v[i] = walk(e)
			}
			slices.SortFunc(v, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		}
		return v
	}
	out, err := json.Marshal(walk(v))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// runParity plays the script against the reference (the local backend's
// handler on a MemStore) and the function under test, and compares.
func runParity(t *testing.T, fnBase string, fnClient *http.Client) {
	ref := httptest.NewServer(bootstrapapi.NewHandler(bootstrapapi.NewMemStore(), bootstrapapi.HandlerConfig{AdminToken: testToken}))
	t.Cleanup(ref.Close)
	prefixes := []string{"", "/" + FunctionName, "/any/prefix"}
	for i, x := range parityScript {
		want := do(t, ref.Client(), ref.URL, x, "")
		prefix := prefixes[i%len(prefixes)]
		got := do(t, fnClient, fnBase, x, prefix)
		if got != want {
			t.Errorf("step %d %s %s%s %q:\n function: %d %s\n local:    %d %s", i, x.method, prefix, x.path, x.body,
				got.status, got.body, want.status, want.body)
		}
	}
}

// TestFirestoreFunctionParity serves the function in-process (the handler
// the framework wraps) on the emulator and compares it with the local
// backend.
func TestFirestoreFunctionParity(t *testing.T) {
	firestoretest.Require(t)
	fn := NewFunction(FunctionConfig{ProjectID: firestoretest.NewProjectID(), AdminToken: testToken,
		Store: DefaultConfig(), Logf: t.Logf})
	t.Cleanup(func() { fn.Close() })
	srv := httptest.NewServer(fn)
	t.Cleanup(srv.Close)
	runParity(t, srv.URL, srv.Client())
}

// TestFirestoreFrameworkParity builds the local runner and serves the
// function through functions-framework-go (FUNCTION_TARGET, PORT), on the
// emulator, then compares it with the local backend.
func TestFirestoreFrameworkParity(t *testing.T) {
	emu := firestoretest.Require(t)
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build the runner: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "local")
	build := exec.Command(gobin, "build", "-o", bin, "./cmd/local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the local runner: %v\n%s", err, out)
	}
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(),
		"PORT="+port,
		"FUNCTION_TARGET="+FunctionName,
		EnvProject+"="+firestoretest.NewProjectID(),
		"FIRESTORE_EMULATOR_HOST="+emu.Host,
		EnvAdminToken+"="+testToken,
	)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("runner output:\n%s", out.String())
		}
	})
	base := "http://127.0.0.1:" + port
	client := &http.Client{Timeout: 30 * time.Second}
	waitFor(t, 60*time.Second, exited, func() bool {
		resp, err := client.Get(base + "/v1/ping")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	runParity(t, base, client)
}

func TestFunctionNotConfigured(t *testing.T) {
	var logged []string
	fn := NewFunction(FunctionConfig{Store: DefaultConfig(), Logf: func(f string, a ...any) {
		logged = append(logged, fmt.Sprintf(f, a...))
	}})
	defer fn.Close()
	for _, path := range []string{"/v1/ping", "/join", "/" + FunctionName + "/v1/list"} {
		rec := httptest.NewRecorder()
		fn.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var e bootstrapapi.Error
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
			t.Fatalf("%s: answer %q is not an API error: %v", path, rec.Body, err)
		}
		if path == "/join" {
			// Method checks come before the store.
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("GET /join: status %d, want 405", rec.Code)
			}
			continue
		}
		if rec.Code != http.StatusServiceUnavailable || e.Code != bootstrapapi.ECodeUnavailable ||
			!strings.Contains(e.Message, EnvProject) {
			t.Errorf("%s without a project: %d %+v, want 503 naming %s", path, rec.Code, e, EnvProject)
		}
	}
	if len(logged) == 0 {
		t.Error("the configuration error was not logged")
	}
}

func TestFunctionConfigFromEnv(t *testing.T) {
	env := map[string]string{EnvProjectLegacy: "p-legacy", EnvDatabase: "db2", EnvCollection: "coll", EnvAdminToken: "tok"}
	cfg := FunctionConfigFromEnv(func(k string) string { return env[k] })
	if cfg.ProjectID != "p-legacy" || cfg.DatabaseID != "db2" || cfg.Store.Collection != "coll" || cfg.AdminToken != "tok" {
		t.Errorf("from %v: %+v", env, cfg)
	}
	env[EnvProject] = "p-new"
	if cfg := FunctionConfigFromEnv(func(k string) string { return env[k] }); cfg.ProjectID != "p-new" {
		t.Errorf("%s should win over %s: got %q", EnvProject, EnvProjectLegacy, cfg.ProjectID)
	}
	for v, want := range map[string]int{"": 0, "2": 2, "x": 0, "-1": 0, "99": 0} {
		env[EnvProxyHops] = v
		if got := FunctionConfigFromEnv(func(k string) string { return env[k] }).ProxyHops; got != want {
			t.Errorf("%s=%q: ProxyHops %d, want %d", EnvProxyHops, v, got, want)
		}
	}
}

// TestFirestoreFunctionRateLimitsPerForwardedClient: behind Google's
// front end every request comes from the proxy, so the function counts
// requests against the address the proxy appended to X-Forwarded-For,
// and an address the client wrote there itself changes nothing.
func TestFirestoreFunctionRateLimitsPerForwardedClient(t *testing.T) {
	firestoretest.Require(t)
	fn := NewFunction(FunctionConfig{ProjectID: firestoretest.NewProjectID(), Store: DefaultConfig(), Logf: t.Logf})
	t.Cleanup(func() { fn.Close() })
	srv := httptest.NewServer(fn)
	t.Cleanup(srv.Close)
	get := func(xff string) (int, string) {
		t.Helper()
		// An unknown path: it is counted like any request and needs no
		// Firestore round trip, so the loop outruns the refill.
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/"+FunctionName+"/v1/nope", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	// A fresh spoofed left-hand entry on every request does not give the
	// client a fresh bucket: it is limited after its burst (plus what
	// refills while the loop runs).
	limited := -1
	for i := range 20 * bootstrapapi.DefaultRateBurst {
		code, retry := get(fmt.Sprintf("10.9.%d.%d, 203.0.113.5", i/250, i%250))
		if code == http.StatusTooManyRequests {
			if retry == "" {
				t.Fatal("429 without Retry-After")
			}
			limited = i
			break
		}
		if code != http.StatusNotFound {
			t.Fatalf("request %d: status %d", i, code)
		}
	}
	if limited < bootstrapapi.DefaultRateBurst {
		t.Fatalf("limited after %d requests; want the burst of %d first, then 429", limited, bootstrapapi.DefaultRateBurst)
	}
	if code, _ := get("203.0.113.6"); code != http.StatusNotFound {
		t.Errorf("another client while 203.0.113.5 is limited: %d, want 404", code)
	}
}

// TestFirestoreFunctionClientReused checks that concurrent first requests
// create one client, and that Close makes later requests fail cleanly.
func TestFirestoreFunctionClientReused(t *testing.T) {
	firestoretest.Require(t)
	fn := NewFunction(FunctionConfig{ProjectID: firestoretest.NewProjectID(), Store: DefaultConfig(), Logf: t.Logf})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			fn.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/ping", nil))
			if rec.Code != http.StatusOK {
				t.Errorf("ping: %d %s", rec.Code, rec.Body)
			}
		}()
	}
	wg.Wait()
	fn.mu.Lock()
	client := fn.client
	fn.mu.Unlock()
	if client == nil {
		t.Fatal("no client after requests")
	}
	rec := httptest.NewRecorder()
	fn.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/ping", nil))
	fn.mu.Lock()
	same := fn.client == client
	fn.mu.Unlock()
	if !same {
		t.Error("a later request replaced the client")
	}
	if err := fn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fn.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	rec = httptest.NewRecorder()
	fn.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/ping", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("after Close: %d, want 503", rec.Code)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// waitFor polls cond until it holds, the process exits, or the timeout.
func waitFor(t *testing.T, timeout time.Duration, exited <-chan struct{}, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-exited:
			t.Fatal("the runner exited before it answered")
		case <-deadline.C:
			t.Fatalf("the runner did not answer within %v", timeout)
		case <-tick.C:
		}
	}
}

// syncBuffer collects a process's output; safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
