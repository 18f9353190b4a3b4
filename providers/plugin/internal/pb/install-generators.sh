#!/usr/bin/env bash
# install-generators.sh: installs what `go generate` in this folder needs: protoc (Debian package
# protobuf-compiler) and the Go generators at the versions the committed code was made with.
# Only needed after an edit of provider.proto; a build never needs them.
set -euo pipefail
cd "$(dirname "$0")"
../../../../scripts/apt-ensure protobuf-compiler
GOFLAGS= go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
GOFLAGS= go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
echo "protoc-gen-go and protoc-gen-go-grpc are in $(go env GOPATH)/bin; put it on PATH, then run: go generate ./providers/plugin/internal/pb" >&2
