// Package pb holds the generated protobuf and gRPC code of the provider plugin protocol
// (provider.proto). The generated files are committed, so a build never needs protoc; after an
// edit of provider.proto run ./install-generators.sh once, then `go generate` here.
package pb

//go:generate protoc -I . --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative provider.proto
