# Lambgate build, run, test and benchmark targets. See README.md.

GO      ?= go
BIN     := bin
DATA    ?= data
GOFLAGS_BUILD := -trimpath

.PHONY: all build run test test-boot deps vet bench plugins image-vm image-pi flash clean

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
# network namespaces and Chromium as root), then the qemu boot tests.
test: deps vet
	$(GO) test -count=1 -timeout 30m ./...
	$(MAKE) test-boot

# Boots the VM and arm64 images in qemu under software emulation.
test-boot:
	$(GO) test -count=1 -tags boottest -timeout 30m ./images/boottest/

# Builds the bundled filter plugins into bin/plugins.
plugins:
	bash plugins/build.sh $(BIN)/plugins

# Appliance images in images/out (see docs/images.md).
image-vm:
	bash images/build.sh vm

image-pi:
	bash images/build.sh pi

# Writes the Raspberry Pi image to a device: make flash DEV=/dev/sdX
flash:
	@test -n "$(DEV)" || { echo "usage: make flash DEV=/dev/sdX"; exit 2; }
	bash images/build.sh flash $(DEV)

bench: deps build
	bash scripts/bench.sh

clean:
	rm -rf $(BIN)
