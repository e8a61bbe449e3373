# Waypost build, test and check targets. `make test` is the test command;
# `make check` is what CI runs.
GO       ?= go
PKGS     ?= ./...
BIN      ?= bin/waypost
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
TESTFLAGS ?= -race -count=1 -timeout 15m
BENCHTIME ?= 1s
BENCHCOUNT ?= 5

.PHONY: all build test check fmt-check vet staticcheck generate bench run clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/waypost

## test: unit and integration tests with the race detector. Integration
## tests skip (naming the server) when a server is unreachable, and fail
## instead with WAYPOST_REQUIRE_SERVICES=1.
test:
	$(GO) test $(TESTFLAGS) $(PKGS)

## check: formatting, vet, staticcheck, then the tests — the same as CI.
check: fmt-check vet staticcheck test

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

staticcheck:
	$(GO) tool staticcheck $(PKGS)

## generate: regenerate committed generated code.
generate:
	$(GO) generate $(PKGS)

## bench: the platform benchmarks quoted in docs/PERFORMANCE.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) ./internal/platform/...

run:
	$(GO) run ./cmd/waypost up

clean:
	rm -rf bin data
