# azaion-loader. `make demo` runs the loader's main job on its embedded
# default; `make test` installs what the tests need and runs them.
GO      ?= go
GOBIN   := $(shell $(GO) env GOPATH)/bin
export MINIO_BIN ?= $(GOBIN)/minio

# Every binary reports this version, commit and Go version (--version, the
# first log line, /status): cmd/internal/buildinfo, set by the linker.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILDINFO := github.com/azaion/loader/cmd/internal/buildinfo
LDFLAGS := -s -w -X $(BUILDINFO).version=$(VERSION) -X $(BUILDINFO).commit=$(COMMIT)

.PHONY: all build demo test test-arm64 vet lint fuzz fuzz-smoke bench bench-quick bench-unlock bench-wan clean \
	package install boot-test

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/azaion-loader ./cmd/azaion-loader
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/azaion-resource-api ./cmd/azaion-resource-api

demo:
	$(GO) run ./cmd/azaion-loader demo

vet:
	$(GO) vet ./... ./.ci/checkmounts ./.ci/boottest

lint: vet
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt would change:"; echo "$$bad"; exit 1; fi

# Tests mount only under a directory of this run (the TMPDIR of go test,
# so every t.TempDir), and check-mounts judges only mounts under it: a
# loader that serves this machine for real is never touched. check-mounts'
# own test (.ci/checkmounts) runs here too; the boot test and the test of
# the packages' contents need make package and run last.
test: lint
	./.ci/deps
	@root=$$(mktemp -d "$${TMPDIR:-/tmp}/azaion-test.XXXXXX") && \
	  TMPDIR=$$root $(GO) test -race -count=1 -timeout 20m ./... ./.ci/checkmounts ; rc=$$? ; \
	  ./.ci/check-mounts $$root && rm -rf $$root || rc=1 ; exit $$rc
	$(MAKE) --no-print-directory boot-test
	$(MAKE) --no-print-directory test-arm64

# The units under a real systemd (as root): .ci/boot-test boots a Debian
# root with systemd-nspawn, installs the amd64 .deb and checks the service,
# the .mount unit and an fstab line (examples/systemd, README's systemd).
boot-test: package
	./.ci/boot-test

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
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/azaion-bench ./cmd/azaion-bench
	bin/azaion-bench --size 1073741824 --runs 5 --minio "$(MINIO_BIN)" --rclone "$(RCLONE)" --command "make bench"

bench-quick: build
	@test -x "$(MINIO_BIN)" || ./.ci/deps
	@command -v openssl >/dev/null || apt-get install -y openssl
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/azaion-bench ./cmd/azaion-bench
	bin/azaion-bench --size 104857600 --runs 3 --minio "$(MINIO_BIN)" \
		$$(test -x "$(RCLONE)" && echo --rclone "$(RCLONE)") --command "make bench-quick"

# Issue 13's WAN scenario (as root): the CDN and the Resource API behind
# proxies adding 20 ms each way and capping each CDN connection at 25 MB/s;
# a 256 MiB resource read cold through the mount and /load, 16 concurrent
# readers, against ranged GETs, the original loader's download-then-decrypt
# and rclone (only when already built) through the same proxy. Written into
# BENCHMARKS.md's WAN section. WAN_FLAGS adds flags (e.g. --size). Not part
# of `make test`.
WAN_FLAGS ?=

bench-wan: build
	@test -x "$(MINIO_BIN)" || ./.ci/deps
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/azaion-bench ./cmd/azaion-bench
	bin/azaion-bench wan --size 268435456 --runs 3 --minio "$(MINIO_BIN)" \
		$$(test -x "$(RCLONE)" && echo --rclone "$(RCLONE)") --command "$(strip make bench-wan $(WAN_FLAGS))" $(WAN_FLAGS)

# Issue 4's memory figure (as root): `azaion-loader serve` unlocks the
# archive of a 210 MiB image tar into `docker load` on a private dockerd,
# three times; its peak RSS goes into BENCHMARKS.md. Not part of `make test`.
bench-unlock: build
	@command -v dockerd >/dev/null || ./.ci/deps
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/azaion-bench ./cmd/azaion-bench
	bin/azaion-bench unlock --size 220200960 --runs 3 --command "make bench-unlock"

# Debian packages of the loader for each of DEB_ARCHES, built with nfpm
# (fetched at NFPM_VERSION when missing) from examples/package/nfpm.yaml:
# bin/azaion-loader_VERSION_ARCH.deb.
DEB_ARCHES  ?= amd64 arm64
NFPM_VERSION = v2.48.0
NFPM        ?= $(GOBIN)/nfpm
# A Debian version: a tag v1.2.3-4-gabc → 1.2.3+4.gabc; no tag → 0.0.0~gitabc.
DEB_VERSION ?= $(shell echo '$(VERSION)' | sed -E '/^v[0-9]/!s/^/0.0.0~git/; s/^v//; s/-/+/; s/-/./g')

package:
	@test -x "$(NFPM)" || GOFLAGS= $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
	rm -f bin/azaion-loader_*.deb
	@set -e; for arch in $(DEB_ARCHES); do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
			-o bin/package/azaion-loader ./cmd/azaion-loader; \
		GOARCH=$$arch DEB_VERSION='$(DEB_VERSION)' $(NFPM) package --config examples/package/nfpm.yaml --packager deb --target bin/; \
	done

# A source install of what the package holds: make install [DESTDIR=]
# [PREFIX=/usr/local]. The units go where systemd looks under PREFIX and run
# PREFIX/bin/azaion-loader; an existing /etc/azaion/loader.yaml is kept.
PREFIX  ?= /usr/local
UNITDIR ?= $(PREFIX)/lib/systemd/system

install: build
	install -D -m 0755 bin/azaion-loader $(DESTDIR)$(PREFIX)/bin/azaion-loader
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed 's|/usr/bin/azaion-loader|$(PREFIX)/bin/azaion-loader|g' examples/systemd/azaion-loader.service \
		> $(DESTDIR)$(UNITDIR)/azaion-loader.service
	install -m 0644 examples/systemd/mnt-azaion.mount $(DESTDIR)$(UNITDIR)/mnt-azaion.mount
	install -d -m 0700 $(DESTDIR)/etc/azaion/credentials $(DESTDIR)/var/cache/azaion-loader
	install -d -m 0755 $(DESTDIR)/mnt/azaion
	test -e $(DESTDIR)/etc/azaion/loader.yaml || install -m 0640 examples/package/loader.yaml $(DESTDIR)/etc/azaion/loader.yaml
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

clean:
	rm -rf bin
