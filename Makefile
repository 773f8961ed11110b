# tabacco: build, test, demo and install.
PREFIX ?= /usr/local
DESTDIR ?=
CARGO ?= cargo
BIN := target/release/tabacco

.PHONY: all build test check demo bench install uninstall clean

all: build

build:
	$(CARGO) build --release --locked

# The whole test suite: unit tests and end-to-end tests against real restic.
test:
	$(CARGO) test --locked

# What CI and reviewers expect clean.
check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO) test --locked

# A real backup of a demo directory and a pipe source into a local restic
# repository under ./demo, recorded in the embedded metadb, then listed.
demo: build
	sh contrib/demo/setup.sh demo
	$(BIN) --config demo/etc/agent.yml check
	$(BIN) --config demo/etc/agent.yml -v run
	$(BIN) --config demo/etc/agent.yml query --table '*'

# Overhead against raw restic, and tabacco's memory while streaming.
bench: build
	sh contrib/bench/run.sh

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/tabacco

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/tabacco

clean:
	$(CARGO) clean
	rm -rf demo
