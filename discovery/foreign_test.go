package discovery

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
)

// TestOtherServerOnTheDefaultPort: with another web server on the local
// default address, the first peer neither tries to serve there nor shows
// the server's page: one line says what answers and what to do.
func TestOtherServerOnTheDefaultPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("<!DOCTYPE html>\n<html><body><h1>Not Found</h1></body></html>\n"))
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })

	d, err := Open(context.Background(), testConfig(t, ln.Addr().String()))
	if err == nil {
		d.Close(context.Background())
		t.Fatal("opened an agent on another server's port")
	}
	msg := err.Error()
	t.Log(msg)
	if !errors.Is(err, bootstrapapi.ErrNotBootstrap) || !strings.Contains(msg, "--bootstrap URL") ||
		!strings.Contains(msg, "another port") {
		t.Errorf("error %q: want ErrNotBootstrap and what to do", msg)
	}
	if strings.ContainsAny(msg, "<>\n") {
		t.Errorf("error shows the other server's page: %q", msg)
	}
}
