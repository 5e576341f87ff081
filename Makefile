# Build and install BenchFS as a C library.
#
#   make                                  cargo build --release --workspace
#                                         (the library and the tools in tools/)
#   make install PREFIX=/opt/benchfs      build, then install into PREFIX
#   make install-only PREFIX=... PROFILE=debug
#                                         install artifacts that are already built,
#                                         without running cargo
#   make uninstall PREFIX=...             remove what install put there
#   make header                           regenerate include/benchfs.h from src/ffi/
#                                         with cbindgen (cbindgen.toml); `cargo test`
#                                         fails while the committed header is stale
#
# Installed layout:
#   $(PREFIX)/lib/libbenchfs.so  $(PREFIX)/lib/libbenchfs.a
#   $(PREFIX)/include/benchfs.h  $(PREFIX)/lib/pkgconfig/benchfs.pc
#   $(PREFIX)/bin/benchfs-bench, $(PREFIX)/bin/benchfs-find
#                                (from tools/; install-only copies each one
#                                only when it has been built)
#   $(PREFIX)/lib/libbenchfs-preload.so
#                                (from preload/: LD_PRELOAD for unmodified
#                                programs; copied when it has been built)
#
# The .pc file adds no rpath: a program linked against a non-system PREFIX
# passes -Wl,-rpath,$(PREFIX)/lib itself or sets LD_LIBRARY_PATH.

PREFIX  ?= /usr/local
DESTDIR ?=
PROFILE ?= release
CARGO   ?= cargo
INSTALL ?= install

# Cargo's own variable decides where artifacts land, so honour it here too.
ifeq ($(strip $(CARGO_TARGET_DIR)),)
TARGET_DIR := target
else
TARGET_DIR := $(CARGO_TARGET_DIR)
endif

# Where the built library files are read from. `cargo test` leaves the
# cdylib and staticlib in the deps/ subdirectory only, so callers that
# install what a test run built point ARTIFACT_DIR there.
ARTIFACT_DIR ?= $(TARGET_DIR)/$(PROFILE)

# cargo names the "debug" output directory after the "dev" profile.
ifeq ($(PROFILE),release)
CARGO_PROFILE_FLAG := --release
else ifeq ($(PROFILE),debug)
CARGO_PROFILE_FLAG :=
else
CARGO_PROFILE_FLAG := --profile $(PROFILE)
endif

# Command-line tools (the benchfs-tools crate in tools/), installed into bin/
# when they have been built. The workspace builds them into the same
# $(TARGET_DIR)/$(PROFILE) as the library.
TOOLS := benchfs-bench benchfs-find

VERSION := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)

LIBDIR     := $(DESTDIR)$(PREFIX)/lib
INCLUDEDIR := $(DESTDIR)$(PREFIX)/include
PCDIR      := $(LIBDIR)/pkgconfig
BINDIR     := $(DESTDIR)$(PREFIX)/bin

.PHONY: all build install install-only uninstall header test clean

all: build

build:
	$(CARGO) build $(CARGO_PROFILE_FLAG) --workspace

install: build
	$(MAKE) install-only PREFIX='$(PREFIX)' DESTDIR='$(DESTDIR)' PROFILE='$(PROFILE)' \
		ARTIFACT_DIR='$(ARTIFACT_DIR)'

# Copies only; a missing library file is an error so that an incomplete
# install never looks like a successful one.
install-only:
	@for f in libbenchfs.so libbenchfs.a; do \
		if [ ! -f '$(ARTIFACT_DIR)'/$$f ]; then \
			echo "install-only: $(ARTIFACT_DIR)/$$f not found; build first (make build PROFILE=$(PROFILE))" >&2; \
			exit 1; \
		fi; \
	done
	$(INSTALL) -d '$(LIBDIR)' '$(INCLUDEDIR)' '$(PCDIR)'
	$(INSTALL) -m 0755 '$(ARTIFACT_DIR)/libbenchfs.so' '$(LIBDIR)/libbenchfs.so'
	$(INSTALL) -m 0644 '$(ARTIFACT_DIR)/libbenchfs.a' '$(LIBDIR)/libbenchfs.a'
	$(INSTALL) -m 0644 include/benchfs.h '$(INCLUDEDIR)/benchfs.h'
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' benchfs.pc.in > '$(PCDIR)/benchfs.pc.tmp'
	mv '$(PCDIR)/benchfs.pc.tmp' '$(PCDIR)/benchfs.pc'
	@if [ -f '$(TARGET_DIR)/$(PROFILE)/libbenchfs_preload.so' ]; then \
		echo "$(INSTALL) -m 0755 $(TARGET_DIR)/$(PROFILE)/libbenchfs_preload.so $(LIBDIR)/libbenchfs-preload.so"; \
		$(INSTALL) -m 0755 '$(TARGET_DIR)/$(PROFILE)/libbenchfs_preload.so' '$(LIBDIR)/libbenchfs-preload.so' || exit 1; \
	fi
	@for tool in $(TOOLS); do \
		if [ -f '$(TARGET_DIR)/$(PROFILE)'/$$tool ]; then \
			echo "$(INSTALL) -m 0755 $(TARGET_DIR)/$(PROFILE)/$$tool $(BINDIR)/$$tool"; \
			$(INSTALL) -d '$(BINDIR)' && \
			$(INSTALL) -m 0755 '$(TARGET_DIR)/$(PROFILE)'/$$tool '$(BINDIR)'/$$tool || exit 1; \
		fi; \
	done

uninstall:
	rm -f '$(LIBDIR)/libbenchfs.so' '$(LIBDIR)/libbenchfs.a' '$(LIBDIR)/libbenchfs-preload.so' \
		'$(INCLUDEDIR)/benchfs.h' '$(PCDIR)/benchfs.pc'
	for tool in $(TOOLS); do rm -f '$(BINDIR)'/$$tool; done

header:
	BENCHFS_BLESS_HEADER=1 $(CARGO) test --test header -- --nocapture

test:
	$(CARGO) test

clean:
	$(CARGO) clean
