// Package dag runs graphs of atomic steps: each node runs one step once its
// dependencies are done, nodes whose inputs are ready run concurrently, and
// values flow between nodes by key. It knows nothing of the domain; the hub's
// sort flow is one of its users.
//
// A Graph is compiled once by New (validated, immutable) and Run any number
// of times, concurrently. Each node has a policy (Required fails the run,
// Optional falls back to its Default), an optional timeout capped by the
// run's deadline, and may be skipped by a condition or a market override.
// A run yields every node's status, start and duration, the total, the
// critical path, and one OpenTelemetry span per node.
//
// Flows can also be written as config (YAML or JSON): a base flow per
// operation plus per-market overrides, whose nodes name step kinds from a
// Catalog the application fills. A Registry validates a config, compiles it
// and swaps it in atomically as a new version; lookups are lock-free. See
// docs/dag.md for the config format, the timeout rule and measured figures.
package dag
