// Package pb holds the generated protobuf and gRPC code of the provider plugin protocol
// (provider.proto). The generated files are committed, so a build never needs protoc. After an
// edit of provider.proto run `go generate` here (or scripts/proto from the top of the
// repository): it installs protoc from Debian if needed and runs it with the Go generators pinned
// in go.mod's tool directive. `make lint` checks that the committed files match the .proto.
package pb

//go:generate ../../../../scripts/proto
