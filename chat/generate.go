package chat

// The protobuf code in chatpb/ is generated from chat.proto and committed.
// Regenerate it after changing chat.proto (protoc from the
// protobuf-compiler package, plus
// go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12):
//go:generate protoc --proto_path=. --go_out=chatpb --go_opt=paths=source_relative chat.proto
