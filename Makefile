# azaion-loader. `make demo` runs the loader's main job on its embedded
# default; `make test` installs what the tests need and runs them.
GO      ?= go
GOBIN   := $(shell $(GO) env GOPATH)/bin
export MINIO_BIN ?= $(GOBIN)/minio

.PHONY: all build demo test vet lint fuzz fuzz-smoke bench bench-quick clean

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

# Fuzz targets as package:target. `make fuzz` runs each for FUZZTIME (at
# least a minute); `make fuzz-smoke` runs each briefly, for CI.
FUZZ_TARGETS = ./resources:FuzzDecrypt ./resources:FuzzDecryptReader \
	./resources:FuzzReaderVsWhole ./resources:FuzzSplit ./resources:FuzzValidName \
	./resources/cdn:FuzzParseConfig ./resources/api:FuzzClaims
FUZZTIME ?= 1m

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZTIME) $${t%%:*}; \
	done

fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=5s

clean:
	rm -rf bin
