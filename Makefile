# Meridian's build and test entry points. `make test` is what CI runs (.ci/run).
export GOTOOLCHAIN := auto

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X meridian.dev/meridian/internal/version.Version=$(VERSION) -X meridian.dev/meridian/internal/version.Commit=$(REVISION)
# The image's time is the commit's, so the same commit gives the same image digest.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
# IMAGE_PUSH=registry/repository:tag makes `make image` push what it built.
IMAGE_PUSH ?=

.PHONY: build build-dev image test check unit testbed schemas demo fuzz

build: ## build bin/meridian
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/meridian ./cmd/meridian

image: ## build the linux/amd64+arm64 OCI image into dist/image (deploy/README.md); IMAGE_PUSH=ref pushes it
	$(GO) run ./cmd/meridian-dev image --version $(VERSION) --revision $(REVISION) --created $(SOURCE_DATE_EPOCH) \
		--out dist/image $(if $(IMAGE_PUSH),--push $(IMAGE_PUSH))

test: check testbed fuzz ## every check and every test, as CI runs them
	$(GO) test -race -count=1 -run '^$$' ./...   # compile every test binary, in parallel
	$(GO) test -race -timeout 30m -p 1 ./...     # run packages one at a time: several start local regions

unit: ## the fast tests only (no local regions)
	MERIDIAN_SKIP_TESTBED=1 $(GO) test -race ./...

check: ## formatting, vet, tidy go.mod
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff

build-dev: ## build bin/meridian-dev: local regions and the demo (never deployed)
	@echo "building bin/meridian-dev (the first build compiles Meridian and its Kubernetes, Helm and AWS libraries: a few minutes on two cores, silently)"
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/meridian-dev ./cmd/meridian-dev

demo: build-dev ## run Meridian end to end on this machine (see README)
	bin/meridian-dev demo

testbed: ## build the local-region components once (cached outside the tree)
	$(GO) run ./cmd/meridian-dev build

schemas: ## regenerate fleet/schema/*.json from the Go types
	$(GO) test ./fleet -run TestSchemas -update

FUZZTIME ?= 20s
FUZZ_TARGETS := FuzzDecode FuzzLoad FuzzMergeValues FuzzHostnames

fuzz: ## run each fuzz target of fleet for FUZZTIME, one at a time
	for f in $(FUZZ_TARGETS); do \
		$(GO) test -run '^$$' -fuzz '^'$$f'$$' -fuzztime=$(FUZZTIME) -parallel 1 ./fleet || exit 1; \
	done
