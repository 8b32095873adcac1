// Package firestoretest runs the real Cloud Firestore emulator (the Java
// one shipped with the Google Cloud CLI) for tests: it finds the jar, starts
// one emulator process in its own process group on 127.0.0.1 and a free
// port, waits until it answers, and stops the whole group.
//
// A test package shares one Emulator (start it in TestMain) and isolates
// tests by project id: NewProjectID returns a fresh one each call, and
// Clear deletes a project's documents.
package firestoretest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Environment variables the harness reads. Tests are the "cmd" of this
// package, so reading them here is the entry point's job.
const (
	// EnvJar names the emulator jar explicitly (skips the dpkg lookup).
	EnvJar = "HEARSAY_FIRESTORE_EMULATOR_JAR"
	// EnvSkip = 1 lets the Firestore tests skip when the emulator is
	// missing; without it they fail.
	EnvSkip = "HEARSAY_SKIP_FIRESTORE"
)

const (
	debPackage = "google-cloud-cli-firestore-emulator"
	jarName    = "cloud-firestore-emulator.jar"
	mainClass  = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
	// readyTimeout is generous: the JVM starts in 2-4 s on an idle machine
	// but the test machines have two shared cores.
	readyTimeout = 90 * time.Second
)

// Emulator is one running emulator process. Its methods are safe for
// concurrent use.
type Emulator struct {
	// Host is "127.0.0.1:PORT", the value for FIRESTORE_EMULATOR_HOST.
	Host string

	cmd      *exec.Cmd
	out      *tailBuffer
	exited   chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// FindJar returns the emulator jar: $HEARSAY_FIRESTORE_EMULATOR_JAR, the
// file the Debian package installed, or the one beside gcloud's SDK.
func FindJar() (string, error) {
	if p := os.Getenv(EnvJar); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%q: %w", EnvJar, p, err)
		}
		return p, nil
	}
	if out, err := exec.Command("dpkg", "-L", debPackage).Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasSuffix(line, "/"+jarName) {
				return line, nil
			}
		}
	}
	// A Cloud SDK installed from its archive: <sdk>/bin/gcloud and
	// <sdk>/platform/cloud-firestore-emulator/<jar>.
	if gcloud, err := exec.LookPath("gcloud"); err == nil {
		if real, err := filepath.EvalSymlinks(gcloud); err == nil {
			p := filepath.Join(filepath.Dir(filepath.Dir(real)), "platform", "cloud-firestore-emulator", jarName)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("firestore emulator jar not found: install the Debian package %s "+
		"(or set %s to the jar), or set %s=1 to skip the Firestore tests", debPackage, EnvJar, EnvSkip)
}

// Start finds the jar and starts an emulator on 127.0.0.1 and a free
// port. It blocks until the emulator answers HTTP or ctx ends. The caller
// must call Stop.
func Start(ctx context.Context) (*Emulator, error) {
	jar, err := FindJar()
	if err != nil {
		return nil, err
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("firestore emulator needs java on PATH: %w", err)
	}
	// The free port is found by binding port 0 and releasing it; another
	// process may take it before the JVM binds, so retry a few times.
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		e, err := start(ctx, java, jar, port)
		if err == nil {
			return e, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start(ctx context.Context, java, jar string, port int) (*Emulator, error) {
	host := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(java, "-Duser.language=en", "-cp", jar, mainClass,
		"start", "--host=127.0.0.1", fmt.Sprintf("--port=%d", port))
	out := &tailBuffer{max: 64 << 10}
	cmd.Stdout = out
	cmd.Stderr = out
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start firestore emulator: %w", err)
	}
	e := &Emulator{Host: host, cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		e.waitErr = cmd.Wait()
		close(e.exited)
	}()
	if err := e.waitReady(ctx); err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

// waitReady polls the emulator's root URL until it answers 200.
func (e *Emulator) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.Host+"/", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-e.exited:
			return fmt.Errorf("firestore emulator on %s exited before it was ready (%v); output:\n%s", e.Host, e.waitErr, e.out.String())
		case <-ctx.Done():
			return fmt.Errorf("firestore emulator on %s not ready: %w; output:\n%s", e.Host, ctx.Err(), e.out.String())
		case <-tick.C:
		}
	}
}

// Stop terminates the emulator's process group and waits for the JVM to
// exit. It is idempotent.
func (e *Emulator) Stop() {
	e.stopOnce.Do(func() {
		signalGroup(e.cmd, false)
		select {
		case <-e.exited:
		case <-time.After(10 * time.Second):
			signalGroup(e.cmd, true)
			<-e.exited
		}
	})
}

// Output returns the last lines the emulator printed (for failure reports).
func (e *Emulator) Output() string { return e.out.String() }

var projectSeq atomic.Int64

// NewProjectID returns a project id no other call in this process
// returned: a fresh, empty database on the shared emulator.
func NewProjectID() string {
	return fmt.Sprintf("hearsay-test-%d-%d", os.Getpid()%100000, projectSeq.Add(1))
}

// Clear deletes every document of project on the emulator.
func (e *Emulator) Clear(ctx context.Context, project string) error {
	url := fmt.Sprintf("http://%s/emulator/v1/projects/%s/databases/(default)/documents", e.Host, project)
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("clear emulator project %s: %w", project, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("clear emulator project %s: %s %s", project, resp.Status, body)
	}
	return nil
}

// Skip reports whether EnvSkip allows the Firestore tests to skip when
// the emulator cannot start.
func Skip() bool { return os.Getenv(EnvSkip) == "1" }

// tailBuffer keeps the last max bytes written to it. It is safe for
// concurrent use (the JVM's stdout and stderr are copied by two
// goroutines).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
