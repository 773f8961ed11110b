# tabacco: build, test, demo and install.
PREFIX ?= /usr/local
DESTDIR ?=
CARGO ?= cargo
# The binary `install` copies (cargo's, under CARGO_TARGET_DIR if set);
# `make install BIN=...` installs another build.
BIN ?= $(or $(CARGO_TARGET_DIR),target)/release/tabacco

BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/tabacco
EXAMPLEDIR ?= $(DOCDIR)/examples
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
# Units go where systemd's own pkg-config file says on Debian 12
# (systemdsystemunitdir=/lib/systemd/system) for a distribution install
# (PREFIX=/usr), which is also where debhelper 13 and lintian expect them;
# a local install uses $(PREFIX)/lib/systemd/system, which systemd also
# searches for PREFIX=/usr/local.
# zsh: Debian's directory for packaged completions, or the site directory
# zsh searches for local installs.
ifeq ($(PREFIX),/usr)
UNITDIR ?= /lib/systemd/system
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/vendor-completions
else
UNITDIR ?= $(PREFIX)/lib/systemd/system
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
endif

MANPAGES := $(wildcard man/*.[1-8])
UNITS := $(wildcard contrib/systemd/*.service)
INITSCRIPTS := $(wildcard contrib/init.d/tabacco-*)
# Example configurations, as paths below contrib/examples.
EXAMPLES := $(patsubst contrib/examples/%,%,$(wildcard contrib/examples/*.yml contrib/examples/*/*.yml))
# Everything install writes, for uninstall to remove exactly that.
INSTALLED := $(BINDIR)/tabacco \
	$(foreach m,$(MANPAGES),$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m))) \
	$(foreach u,$(UNITS),$(UNITDIR)/$(notdir $(u))) \
	$(foreach e,$(EXAMPLES),$(EXAMPLEDIR)/$(e)) \
	$(EXAMPLEDIR)/metadb-nginx.conf $(EXAMPLEDIR)/cron.d/tabacco \
	$(foreach i,$(INITSCRIPTS),$(EXAMPLEDIR)/init.d/$(notdir $(i))) \
	$(DOCDIR)/README.md \
	$(BASHCOMPDIR)/tabacco $(ZSHCOMPDIR)/_tabacco $(FISHCOMPDIR)/tabacco.fish

.PHONY: all build test test-deps bench-deps deb-deps check demo bench bench-repositories soak install uninstall deb clean

all: build

build:
	$(CARGO) build --release --locked

# What the tests need besides Rust, installed with apt-get when missing:
# restic (the core dependency), promtool (prometheus) for both /metrics,
# sqlite3 for the database round trip, ps and kill (procps), mandoc and
# shellcheck for the man pages and scripts, systemd-analyze (systemd) for the
# units, nginx for the TLS proxy example, rclone for repositories served
# over restic's REST protocol (`rclone serve restic`, append-only too),
# chromium and chromium-driver for the console's pages in a real browser,
# the database servers the shipped handlers are tested against (each test
# starts its own in a temporary directory: no packaged service is used).
TEST_PACKAGES := restic prometheus sqlite3 procps mandoc shellcheck systemd nginx-light rclone \
	chromium chromium-driver postgresql mariadb-server mariadb-client slapd ldap-utils
# restic for the baselines, strip (binutils) for the binary's size,
# postgresql for the shipped handler's case.
BENCH_PACKAGES := restic binutils postgresql
# What `make deb` builds with (contrib/debian/control's Build-Depends, and
# dpkg-buildpackage with the C toolchain the bundled SQLite needs); the Rust
# toolchain comes from PATH.
DEB_PACKAGES := debhelper dpkg-dev build-essential

test-deps: PACKAGES = $(TEST_PACKAGES)
bench-deps: PACKAGES = $(BENCH_PACKAGES)
deb-deps: PACKAGES = $(DEB_PACKAGES)
test-deps bench-deps deb-deps:
	@missing=""; for p in $(PACKAGES); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		policy=""; if [ ! -e /usr/sbin/policy-rc.d ]; then policy=/usr/sbin/policy-rc.d; \
			printf '#!/bin/sh\nexit 101\n' > $$policy && chmod 755 $$policy; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		status=$$?; [ -z "$$policy" ] || rm -f $$policy; exit $$status; \
	fi

# Debian 13's restic (0.18.0), unpacked into the build tree beside the
# system's: a private apt configuration (its own sources file, lists and
# cache under target/) names the machine's own Debian mirror with suite
# trixie, so the machine's apt configuration and state stay untouched.
TRIXIE_DIR := target/restic-trixie
TRIXIE_RESTIC := $(TRIXIE_DIR)/root/usr/bin/restic
TRIXIE_APT = -o Dir::Etc::sourcelist=$(CURDIR)/$(TRIXIE_DIR)/sources.list \
	-o Dir::Etc::sourceparts=/nonexistent \
	-o Dir::State::Lists=$(CURDIR)/$(TRIXIE_DIR)/lists \
	-o Dir::Cache::Archives=$(CURDIR)/$(TRIXIE_DIR)/archives \
	-o Dir::Cache=$(CURDIR)/$(TRIXIE_DIR)/cache \
	-o Debug::NoLocking=1
$(TRIXIE_RESTIC):
	rm -rf $(TRIXIE_DIR) && mkdir -p $(TRIXIE_DIR)/lists/partial \
		$(TRIXIE_DIR)/archives/partial $(TRIXIE_DIR)/cache $(TRIXIE_DIR)/root
	mirror=$$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
		| grep -v security | head -n 1); \
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $${mirror:-http://deb.debian.org/debian} trixie main" \
		> $(TRIXIE_DIR)/sources.list
	apt-get $(TRIXIE_APT) -qq update
	cd $(TRIXIE_DIR)/archives && apt-get $(TRIXIE_APT) -qq download restic
	dpkg-deb -x $(TRIXIE_DIR)/archives/restic_*.deb $(TRIXIE_DIR)/root
	$(TRIXIE_RESTIC) version
test-deps bench-deps: $(TRIXIE_RESTIC)

# The whole test suite: unit tests once, then the end-to-end tests once per
# restic: the system's (Debian 12: 0.14) and Debian 13's (0.18.0). Each
# pass names its restic in TABACCO_TEST_RESTIC and the other one in
# TABACCO_TEST_RESTIC_OTHER, for the test that mixes both on one repository.
# The system's restic is looked up when the tests run: `make test-deps
# test` may just have installed it.
test:
	$(CARGO) test --locked --bins
	system=$$(command -v restic) && trixie=$(CURDIR)/$(TRIXIE_RESTIC) && \
	TABACCO_TEST_RESTIC=$$system TABACCO_TEST_RESTIC_OTHER=$$trixie \
		$(CARGO) test --locked --test integration && \
	TABACCO_TEST_RESTIC=$$trixie TABACCO_TEST_RESTIC_OTHER=$$system \
		$(CARGO) test --locked --test integration

# The soak (issue 26): two agents and one metadb sharing a repository
# while the metadb, restic children and the agents are killed at random
# for SOAK_SECS seconds; it ends with every snapshot recorded exactly once,
# no lock left and `restic check` clean, and prints its figures. Minutes
# long, so not part of `make test`. TABACCO_TEST_RESTIC picks the restic.
SOAK_SECS ?= 240
soak:
	TABACCO_TEST_RESTIC=$${TABACCO_TEST_RESTIC:-$$(command -v restic)} SOAK_SECS=$(SOAK_SECS) \
		$(CARGO) test --locked --test integration soak:: -- --ignored --nocapture

# What CI and reviewers expect clean.
check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO) test --locked

# A real backup of a demo directory and a pipe source into a local restic
# repository under ./demo (created by `tabacco init`), recorded in the
# embedded metadb, then listed.
demo: build
	sh contrib/demo/setup.sh demo
	$(BIN) --config demo/etc/agent.yml init
	$(BIN) --config demo/etc/agent.yml check
	$(BIN) --config demo/etc/agent.yml -v run
	$(BIN) --config demo/etc/agent.yml query --table '*'

# Case 15 of tests/bench, which runs only when named: a one-file backup
# against repositories of 0, 1,000 and 100,000 blobs (BENCH_BLOBS) with
# both restics (about 10 minutes).
bench-repositories: bench-deps
	BENCH_CASES=15 BENCH_RUNS=$${BENCH_RUNS:-5} BENCH_RESTIC_OTHER=$(CURDIR)/$(TRIXIE_RESTIC) \
		$(CARGO) bench --locked --bench bench

# tests/bench: tabacco against raw restic, the metadb under load, and the
# footprint; one table of medians and ratios (BENCHMARKS.md), about 11 min;
# then cases 1, 2, 4 and 14 again with Debian 13's restic, 3 rounds unless
# BENCH_RUNS says otherwise (about 2 more minutes).
bench: bench-deps
	$(CARGO) bench --locked --bench bench
	BENCH_RESTIC=$(CURDIR)/$(TRIXIE_RESTIC) BENCH_CASES=1,2,4,14 BENCH_RUNS=$${BENCH_RUNS:-3} \
		$(CARGO) bench --locked --bench bench

# Builds the binary only if it is missing, so that `sudo make install`
# after `make` does not run cargo as root in the source tree.
$(BIN):
	$(CARGO) build --release --locked

# Binary, man pages (by section suffix), systemd units (ExecStart pointing
# at BINDIR), the README, example configurations with the cron and sysvinit
# examples, and bash, zsh and fish completions generated by the binary from
# its --help table.
install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/tabacco
	for m in $(MANPAGES); do \
		s=$${m##*.}; install -D -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/$${m##*/} || exit 1; \
	done
	for u in $(UNITS); do \
		install -d $(DESTDIR)$(UNITDIR) && \
		sed 's|/usr/bin/tabacco|$(BINDIR)/tabacco|g' $$u > $(DESTDIR)$(UNITDIR)/$${u##*/} && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; \
	done
	for e in $(EXAMPLES); do \
		install -D -m 0644 contrib/examples/$$e $(DESTDIR)$(EXAMPLEDIR)/$$e || exit 1; \
	done
	install -D -m 0644 contrib/metadb-nginx.conf $(DESTDIR)$(EXAMPLEDIR)/metadb-nginx.conf
	install -D -m 0644 contrib/cron/tabacco $(DESTDIR)$(EXAMPLEDIR)/cron.d/tabacco
	for i in $(INITSCRIPTS); do \
		install -D -m 0644 $$i $(DESTDIR)$(EXAMPLEDIR)/init.d/$${i##*/} || exit 1; \
	done
	install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -d $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	$(BIN) completion bash > $(DESTDIR)$(BASHCOMPDIR)/tabacco
	$(BIN) completion zsh > $(DESTDIR)$(ZSHCOMPDIR)/_tabacco
	$(BIN) completion fish > $(DESTDIR)$(FISHCOMPDIR)/tabacco.fish
	chmod 0644 $(DESTDIR)$(BASHCOMPDIR)/tabacco $(DESTDIR)$(ZSHCOMPDIR)/_tabacco \
		$(DESTDIR)$(FISHCOMPDIR)/tabacco.fish

# Removes exactly what install wrote, and the directories only tabacco uses.
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(EXAMPLEDIR)/sources $(DESTDIR)$(EXAMPLEDIR)/handlers \
		$(DESTDIR)$(EXAMPLEDIR)/cron.d $(DESTDIR)$(EXAMPLEDIR)/init.d \
		$(DESTDIR)$(EXAMPLEDIR) $(DESTDIR)$(DOCDIR) 2>/dev/null

# A binary Debian package in target/deb/: the sources are copied to a
# scratch tree, contrib/debian becomes its debian/, and dpkg-buildpackage
# builds there (with the Rust toolchain from PATH), so that the working tree
# gets no debian/ directory and no root-owned files. Cargo's output stays
# in target/deb-cargo between runs, so a second `make deb` is quick. Its
# build dependencies: `make deb-deps` (as root) installs them.
DEB_TREE := target/deb/tabacco
deb:
	rm -rf target/deb && mkdir -p $(DEB_TREE) target/deb-cargo
	tar -cf - --exclude=./target --exclude=./demo --exclude=./.git --exclude=./debian . \
		| tar -xf - -C $(DEB_TREE)
	cp -R contrib/debian $(DEB_TREE)/debian
	cd $(DEB_TREE) && CARGO_TARGET_DIR=$(CURDIR)/target/deb-cargo dpkg-buildpackage -us -uc -b
	rm -rf $(DEB_TREE)
	ls -l target/deb/*.deb

clean:
	$(CARGO) clean
	rm -rf demo
