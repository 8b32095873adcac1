package chat

// The protobuf and gRPC code in chatpb/ is generated from chat.proto and
// committed. Regenerate it after changing chat.proto (protoc from the
// protobuf-compiler package, plus
// go install google.golang.org/protobuf/cmd/protoc-gen-go@latest and
// go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@latest):
//go:generate protoc --proto_path=. --go_out=chatpb --go_opt=paths=source_relative --go-grpc_out=chatpb --go-grpc_opt=paths=source_relative chat.proto
