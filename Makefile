# azaion-loader. `make demo` runs the loader's main job on its embedded
# default; `make test` installs what the tests need and runs them.
GO      ?= go
GOBIN   := $(shell $(GO) env GOPATH)/bin
export MINIO_BIN ?= $(GOBIN)/minio

.PHONY: all build demo test vet lint fuzz bench bench-quick clean

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

clean:
	rm -rf bin
