# Cradle's two README commands are `make demo` and `make test`. Every target installs the Debian
# packages it needs first (scripts/apt-ensure skips what is present).

GO      ?= go
BIN     := bin/cradle
PKGS    := ./...
# Debian packages: building (cgo for Fyne's GL driver and gousb's libusb), running headless (Xvfb,
# screenshots, clicks), and the real-USB harness (QEMU with a guest kernel).
APT_BUILD    := gcc pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev \
                libxinerama-dev libxi-dev libxxf86vm-dev libusb-1.0-0-dev
APT_HEADLESS := xvfb xauth xdotool imagemagick x11-utils
APT_USBVM    := qemu-system-x86 linux-image-amd64 busybox-static mtp-tools cpio kmod udev umtp-responder \
                libusb-1.0-0-dev pkg-config
# Checking the .deb (make test-package); the tray test's session bus (test/gui).
APT_PACKAGE  := lintian desktop-file-utils appstream man-db
APT_DBUS     := dbus-bin dbus-daemon dbus-session-bus-common

# make install: PREFIX and DESTDIR as usual (scripts/stage also takes UDEVRULESDIR and
# SYSTEMDUSERUNITDIR).
PREFIX  ?= /usr/local
DESTDIR ?=
VERSION := $(shell sed -n 's/^ *Version *= *"\(.*\)"/\1/p' FyneApp.toml)
# The commit `cradle --version` prints, for builds without Go's VCS stamp (GOFLAGS=-buildvcs=false).
COMMIT  := $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS := -X main.commit=$(COMMIT)
ARCH    := $(shell $(GO) env GOARCH)

.PHONY: all build demo run test vet lint staticcheck bench fuzz package deps deps-headless \
        deps-usbvm deps-package test-usb bench-usb torture clean install uninstall packages test-package test-tutorial

all: build

deps:
	@scripts/apt-ensure $(APT_BUILD)
	@command -v $(GO) >/dev/null || { echo "Go is missing: install Go 1.26 from https://go.dev/dl/" >&2; exit 1; }

deps-headless: deps
	@scripts/apt-ensure $(APT_HEADLESS) $(APT_DBUS)

deps-package:
	@scripts/apt-ensure $(APT_PACKAGE)

deps-usbvm:
	@scripts/apt-ensure $(APT_USBVM)

# Real USB end to end (test/usbvm): QEMU's usb-mtp device behind qemu-xhci and usb-ehci, and
# uMTP-Responder as a USB gadget on the guest's dummy_hcd; the tests of test/usbvm/guest run inside
# a small Linux guest (TCG, no KVM needed).
test-usb: deps deps-usbvm
	$(GO) test -tags usbvm -count=1 -timeout 40m -v ./test/usbvm/

# Get and send of a 100 MiB file through QEMU's usb-mtp (both controllers) and uMTP-Responder,
# Cradle against libmtp's mtp-getfile and mtp-sendfile, and a listing of 10,000 files against
# libmtp's mtp-files, in the same guest; writes the tables into docs/performance-usb.md.
bench-usb: deps deps-usbvm
	$(GO) run ./test/usbvm/cmd/usbbench -doc docs/performance-usb.md

build: deps
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) .

# The window with an emulated device, sample content and ready partnerships, in a temporary
# config dir.
demo: build
	./$(BIN) --demo

run: build
	./$(BIN)

vet: deps
	$(GO) vet $(PKGS)

staticcheck: deps
	$(GO) tool staticcheck $(PKGS)

lint: vet staticcheck
	@scripts/proto --check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi

# Every test, GUI tests included (widget tests on Fyne's test driver; the end-to-end window test
# starts its own Xvfb). Fuzz targets run their seed corpus here; `make fuzz` fuzzes them.
test: deps-headless lint
	$(GO) test -count=1 -timeout 30m $(PKGS)

# docs/providers.md followed as a new provider author would, from empty folders outside the
# repository, for both worked examples (notes, calendar): its commands run, its files written, the
# plugins built and synced with an emulated phone, edits on both sides merged. About two minutes.
test-tutorial: deps
	$(GO) run ./test/tutorial

# Benchmarks against their baselines (test/bench), medians of several runs, written to
# docs/performance.md; about 15 minutes. BENCHFLAGS passes flags (-only P1,P4 -runs 3 -usb ...).
bench: deps-headless
	scripts/bench $(BENCHFLAGS)

fuzz: deps
	FUZZTIME=$${FUZZTIME:-60s} scripts/fuzz

# The reliability campaign (test/torture with CRADLE_TORTURE=1: kills, unplugs, hostile names,
# damaged state, full disks, mass deletions; then the engine's property tests for PROPCHECKS
# random histories, 30000 by default; then every Fuzz target for FUZZTIME, 30s by default),
# written to docs/reliability.md; about 30 minutes. Mounts tmpfs file systems: run as root. `make
# test` runs its short form (go test ./test/torture/).
# TORTURE_USB=1 adds R2 over real USB (QEMU's usb-mtp pulled out with device_del).
torture: deps $(if $(filter 1,$(TORTURE_USB)),deps-usbvm)
	FUZZTIME=$${FUZZTIME:-30s} scripts/torture

# dist/: the .tar.xz of `fyne package` as before, and a .deb and an .rpm made by nfpm (a Go
# tool of go.mod) from the tree scripts/stage lays out for PREFIX=/usr, the same files
# `make install` installs. fyne package bumps the build number in FyneApp.toml; keep the
# committed file as it is.
package: deps packages
	@cp FyneApp.toml .FyneApp.toml.keep
	$(GO) tool fyne package -os linux -name Cradle --app-id io.github.cradle_sync.cradle -icon assets/icon.png; \
	  rc=$$?; mv -f .FyneApp.toml.keep FyneApp.toml; exit $$rc
	@mkdir -p dist && mv -f Cradle.tar.xz dist/ && ls dist/Cradle.tar.xz dist/*.deb dist/*.rpm

# The .deb and the .rpm alone (what make test-package checks).
packages: deps
	@mkdir -p dist
	$(GO) build -ldflags "-s -w $(LDFLAGS)" -o dist/cradle .
	rm -rf dist/pkgroot && scripts/stage dist/pkgroot /usr dist/cradle deb
	ARCH=$(ARCH) VERSION=$(VERSION) RELEASE=1 $(GO) tool nfpm package -f packaging/nfpm.yaml -p deb -t dist/
	rm dist/pkgroot/usr/share/doc/cradle/changelog.Debian.gz
	ARCH=$(ARCH) VERSION=$(VERSION) RELEASE=1 $(GO) tool nfpm package -f packaging/nfpm.yaml -p rpm -t dist/

# Installs the .deb on this machine, checks every file, lintian, desktop-file-validate,
# appstreamcli validate, removes it and checks nothing is left (scripts/test-package; root).
test-package: packages deps-package
	scripts/test-package dist/cradle_$(VERSION)-1_$(ARCH).deb

# The files of the packages, without a package manager.
install: build
	scripts/stage "$(DESTDIR)" "$(PREFIX)" $(BIN)
	@echo "Installed under $(DESTDIR)$(PREFIX). For the udev rule to apply now: sudo udevadm control --reload-rules"

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/cradle $(DESTDIR)$(PREFIX)/share/applications/io.github.cradle_sync.cradle.desktop \
	  $(DESTDIR)$(PREFIX)/share/metainfo/io.github.cradle_sync.cradle.metainfo.xml \
	  $(DESTDIR)$(PREFIX)/share/man/man1/cradle.1.gz \
	  $(DESTDIR)$${SYSTEMDUSERUNITDIR:-$(PREFIX)/lib/systemd/user}/cradle.service \
	  $(DESTDIR)$${UDEVRULESDIR:-/usr/lib/udev/rules.d}/69-cradle-mtp.rules \
	  $(DESTDIR)$(PREFIX)/share/icons/hicolor/*/apps/io.github.cradle_sync.cradle.png
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/cradle

clean:
	rm -rf bin dist
