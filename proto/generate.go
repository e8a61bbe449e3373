// Package proto holds Waypost's protobuf sources (buf workspace) and, under
// gen/go, the Go code generated from them. The generated code is committed;
// `go generate ./proto` (or `make generate`) lints the sources and
// regenerates it with a pinned buf and local plugins, offline.
package proto

//go:generate go run github.com/bufbuild/buf/cmd/buf@v1.75.0 lint
//go:generate go run github.com/bufbuild/buf/cmd/buf@v1.75.0 generate
