package chat

import (
	"io"

	"google.golang.org/grpc/grpclog"
)

// SetGRPCLogOutput sends the gRPC library's own log (process-wide; by
// default its errors go to standard error, which would corrupt a terminal
// UI) to w. Call it once at program start, before any Node exists: gRPC
// does not allow changing its logger while it is in use. Node logs go to
// Config.LogOutput.
func SetGRPCLogOutput(w io.Writer) {
	if w == nil {
		w = io.Discard
	}
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(w, w, w))
}
