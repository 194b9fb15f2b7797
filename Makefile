# azaion-loader. `make demo` runs the loader's main job on its embedded
# default; `make test` installs what the tests need and runs them.
GO      ?= go
GOBIN   := $(shell $(GO) env GOPATH)/bin
export MINIO_BIN ?= $(GOBIN)/minio

.PHONY: all build demo test test-arm64 vet lint fuzz fuzz-smoke bench bench-quick bench-unlock clean

all: build

build:
	$(GO) build -o bin/azaion-loader ./cmd/azaion-loader
	$(GO) build -o bin/azaion-resource-api ./cmd/azaion-resource-api

demo:
	$(GO) run ./cmd/azaion-loader demo

vet:
	$(GO) vet ./...

lint: vet
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt would change:"; echo "$$bad"; exit 1; fi

test: lint
	./.ci/deps
	$(GO) test -race -count=1 -timeout 20m ./...
	./.ci/check-mounts
	$(MAKE) --no-print-directory test-arm64

# The packages that need no mount, built for linux/arm64 and tested under
# qemu-user (apt's qemu-user-static and binfmt, set up when missing): a
# few minutes. See .ci/test-arm64 for what runs and what is left out.
test-arm64:
	GO=$(GO) ./.ci/test-arm64

# Fuzz targets as package:target. `make test` runs each target's seeds and
# its testdata/fuzz corpus (plain `go test` does), which is deterministic;
# exploring is `make fuzz` (FUZZTIME each, at least a minute) or
# `make fuzz-smoke` (a fixed count of executions). Exploring stays out of
# `make test`: a fresh find fails whichever unrelated change is on CI that
# day, so a find is fixed and its input committed under testdata/fuzz, and
# from then on `make test` runs it.
FUZZ_TARGETS = ./resources:FuzzDecrypt ./resources:FuzzDecryptReader \
	./resources:FuzzReaderVsWhole ./resources:FuzzSplit ./resources:FuzzValidName \
	./resources/cdn:FuzzParseConfig ./resources/api:FuzzClaims \
	./resources/aescbc:FuzzMatchesCryptoCipher
FUZZTIME ?= 1m

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZTIME) $${t%%:*}; \
	done

fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=40000x

# The benchmark of issue 5 (as root, on an idle machine): MinIO, the
# reference Resource API and `azaion-loader serve` with its mount on
# loopback, each figure against its baseline in the same run, written into
# BENCHMARKS.md. `bench` reads a 1 GiB resource and builds rclone v1.76.0
# for P8 when missing (a few minutes); `bench-quick` reads 100 MB and runs
# P8 only when rclone is already there. Not part of `make test`.
RCLONE ?= $(GOBIN)/rclone

bench: build
	@test -x "$(MINIO_BIN)" || ./.ci/deps
	@command -v openssl >/dev/null || apt-get install -y openssl
	@test -x "$(RCLONE)" || $(GO) install github.com/rclone/rclone@v1.76.0
	$(GO) build -o bin/azaion-bench ./cmd/azaion-bench
	bin/azaion-bench --size 1073741824 --runs 5 --minio "$(MINIO_BIN)" --rclone "$(RCLONE)" --command "make bench"

bench-quick: build
	@test -x "$(MINIO_BIN)" || ./.ci/deps
	@command -v openssl >/dev/null || apt-get install -y openssl
	$(GO) build -o bin/azaion-bench ./cmd/azaion-bench
	bin/azaion-bench --size 104857600 --runs 3 --minio "$(MINIO_BIN)" \
		$$(test -x "$(RCLONE)" && echo --rclone "$(RCLONE)") --command "make bench-quick"

# Issue 4's memory figure (as root): `azaion-loader serve` unlocks the
# archive of a 210 MiB image tar into `docker load` on a private dockerd,
# three times; its peak RSS goes into BENCHMARKS.md. Not part of `make test`.
bench-unlock: build
	@command -v dockerd >/dev/null || ./.ci/deps
	$(GO) build -o bin/azaion-bench ./cmd/azaion-bench
	bin/azaion-bench unlock --size 220200960 --runs 3 --command "make bench-unlock"

clean:
	rm -rf bin
