# Lambgate build, run, test and benchmark targets. See README.md.

GO      ?= go
BIN     := bin
DATA    ?= data
GOFLAGS_BUILD := -trimpath

.PHONY: all build run test deps vet bench plugins clean

all: build

build:
	$(GO) build $(GOFLAGS_BUILD) -o $(BIN)/lambgate ./appliance/cmd/lambgate

# Runs the gateway on the embedded default: SMTP on 127.0.0.1:2525, mail for
# example.test delivered to $(DATA)/maildir. Settings: $(DATA)/lambgate.toml.
run: build
	$(BIN)/lambgate -data $(DATA)

# Installs the Debian packages the tests run against (no-op when present).
deps:
	bash scripts/install-deps.sh

vet:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi

# The whole suite, real components included (Postfix, swaks, smtp-source,
# network namespaces as root).
test: deps vet
	$(GO) test -count=1 -timeout 30m ./...

bench: deps build
	bash scripts/bench.sh

clean:
	rm -rf $(BIN)
