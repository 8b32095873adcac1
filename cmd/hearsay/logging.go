package main

import (
	"io"
	"sync"

	"google.golang.org/grpc/grpclog"
)

// grpcLog is the process's gRPC log destination (gRPC is the Firestore
// client's transport, used by the cloud commands and the Firestore-backed
// bootstrap; the chat transport is not gRPC). gRPC's logger may only be
// replaced before gRPC is used (replacing it later races with its readers),
// so it is set once, to this writer, and each peer points the writer at
// its own log file. Without it gRPC writes to stderr, which would corrupt
// the prompt.
var (
	grpcLogOnce sync.Once
	grpcLog     = &swapWriter{w: io.Discard}
)

// useGRPCLog sends gRPC's log to w until releaseGRPCLog(w).
func useGRPCLog(w io.Writer) {
	grpcLogOnce.Do(func() { grpclog.SetLoggerV2(grpclog.NewLoggerV2(grpcLog, grpcLog, grpcLog)) })
	grpcLog.set(w)
}

// releaseGRPCLog discards gRPC's log again if it still goes to w (the file
// is about to be closed).
func releaseGRPCLog(w io.Writer) {
	grpcLog.mu.Lock()
	defer grpcLog.mu.Unlock()
	if grpcLog.w == w {
		grpcLog.w = io.Discard
	}
}

// swapWriter is an io.Writer whose destination can change; it is safe for
// concurrent use.
type swapWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *swapWriter) set(w io.Writer) { s.mu.Lock(); s.w = w; s.mu.Unlock() }

func (s *swapWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
