# rcc-pipeline. `make` builds bin/pipelined and bin/pipelinectl; `make test`
# runs every test; `make run` serves on etc/pipelined.conf. Missing
# libraries are installed with apt-get first (see `deps`).

CC       ?= gcc
BUILD    ?= build
BINDIR   ?= bin
SANITIZE ?=
OPT      ?= -O2 -g
CFLAGS_EXTRA ?=

# pkg-config runs once, and only after `deps` has had its chance.
PKGS = libevent libcurl json-c libconfig openssl
PKG_CFLAGS = $(eval PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS)))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $(shell pkg-config --libs $(PKGS)))$(PKG_LIBS)
CUNIT_LIBS = $(eval CUNIT_LIBS := $(shell pkg-config --libs cunit))$(CUNIT_LIBS)
# hiredis: the daemon's cluster mode (master/cluster.c) alone uses it.
HIREDIS_CFLAGS = $(eval HIREDIS_CFLAGS := $(shell pkg-config --cflags hiredis))$(HIREDIS_CFLAGS)
HIREDIS_LIBS = $(eval HIREDIS_LIBS := $(shell pkg-config --libs hiredis))$(HIREDIS_LIBS)

CFLAGS  = -std=gnu11 -D_GNU_SOURCE $(OPT) -Wall -Wextra -Werror -Iinclude $(PKG_CFLAGS) \
          -MMD -MP $(SANITIZE) $(CFLAGS_EXTRA)
LDFLAGS = $(SANITIZE)
LDLIBS  = $(PKG_LIBS) -lpthread -lm

COMMON_SRC = $(wildcard common/*/*.c)
MASTER_SRC = master/main.c master/master.c master/frontend.c \
             master/http.c master/http_out.c master/relay.c master/supervisor.c \
             master/mreq.c master/reqlog.c master/endpoints.c master/budgets.c \
             master/door_anthropic.c master/control.c master/notify.c \
             master/mcap.c master/cluster.c master/clbreaker.c \
             master/clbudget.c master/clhealth.c \
             master/cloauth.c
WORKER_SRC = $(wildcard worker/*.c)
CTL_SRC    = master/pipelinectl.c master/login.c master/ctlcli.c
UNIT_SRC   = $(wildcard tests/unit/*.c)
MOCK_SRC   = tests/mock/mock_upstream.c
MOCK_OAUTH_SRC = tests/mock/mock_oauth.c
MOCK_ANTH_SRC = tests/mock/mock_anthropic.c
SLOW_SRC   = tests/mock/slow_client.c
HOSTILE_SRC = tests/mock/hostile_client.c
SINK_SRC   = tests/mock/notify_sink.c
CTLC_SRC   = tests/mock/ctl_clients.c
QBENCH_SRC = bench/queue_bench.c
SBENCH_SRC = bench/stream_bench.c

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

COMMON_OBJ = $(call obj,$(COMMON_SRC))
DAEMON_OBJ = $(call obj,$(MASTER_SRC) $(WORKER_SRC)) $(COMMON_OBJ)
CTL_OBJ    = $(call obj,$(CTL_SRC)) $(COMMON_OBJ)
# master/http.c and master/ctlcli.c are unit-tested too (test_http.c,
# test_ctlcli.c), and the worker's modules (test_call.c drives call.c
# through a fake provider; worker.c's worker_main is linked, not run).
UNIT_OBJ   = $(call obj,$(UNIT_SRC) master/http.c master/http_out.c \
             master/ctlcli.c $(WORKER_SRC)) $(COMMON_OBJ)
MOCK_OBJ   = $(call obj,$(MOCK_SRC))
MOCK_OAUTH_OBJ = $(call obj,$(MOCK_OAUTH_SRC))
MOCK_ANTH_OBJ = $(call obj,$(MOCK_ANTH_SRC))
SLOW_OBJ   = $(call obj,$(SLOW_SRC))
HOSTILE_OBJ = $(call obj,$(HOSTILE_SRC))
SINK_OBJ   = $(call obj,$(SINK_SRC))
CTLC_OBJ   = $(call obj,$(CTLC_SRC))
QBENCH_OBJ = $(call obj,$(QBENCH_SRC)) $(COMMON_OBJ)
SBENCH_OBJ = $(call obj,$(SBENCH_SRC))

PROGS = $(BINDIR)/pipelined $(BINDIR)/pipelinectl $(BINDIR)/mock_upstream \
        $(BINDIR)/mock_oauth $(BINDIR)/mock_anthropic \
        $(BINDIR)/slow_client $(BINDIR)/hostile_client $(BINDIR)/notify_sink \
        $(BINDIR)/ctl_clients $(BINDIR)/queue_bench \
        $(BINDIR)/stream_bench \
        $(if $(UNIT_SRC),$(BINDIR)/unit_tests)

.PHONY: all build deps test check run asan bench cluster-demo fuzz lint install clean

PREFIX  ?= /usr/local
SYSCONF ?= /etc/pipelined
UNITDIR ?= /etc/systemd/system
.DEFAULT_GOAL := all

all: deps
	@$(MAKE) --no-print-directory build

build: $(PROGS)

$(BINDIR)/pipelined: $(DAEMON_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(HIREDIS_LIBS) $(LDLIBS)

$(BUILD)/master/cluster.o $(BUILD)/master/clbreaker.o \
$(BUILD)/master/clbudget.o $(BUILD)/master/clhealth.o \
$(BUILD)/master/cloauth.o: CFLAGS += $(HIREDIS_CFLAGS)

$(BINDIR)/pipelinectl: $(CTL_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BINDIR)/mock_upstream: $(MOCK_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BINDIR)/mock_oauth: $(MOCK_OAUTH_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BINDIR)/mock_anthropic: $(MOCK_ANTH_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BINDIR)/slow_client: $(SLOW_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^

$(BINDIR)/hostile_client: $(HOSTILE_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^

$(BINDIR)/notify_sink: $(SINK_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^

$(BINDIR)/ctl_clients: $(CTLC_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^

$(BINDIR)/queue_bench: $(QBENCH_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BINDIR)/stream_bench: $(SBENCH_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^

$(BUILD)/tests/unit/test_http.o: CFLAGS += -Imaster
$(BUILD)/tests/unit/test_ctlcli.o: CFLAGS += -Imaster
$(BUILD)/tests/unit/test_call.o: CFLAGS += -Iworker
$(BUILD)/tests/unit/test_httpc.o $(BUILD)/tests/unit/test_httpc_fail.o \
$(BUILD)/tests/unit/httpc_rig.o: CFLAGS += -Iworker

$(BINDIR)/unit_tests: $(UNIT_OBJ)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(CUNIT_LIBS) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Installs what pkg-config cannot find (Debian package names), and the
# tools the tests use (valgrind, wrk, npm for the official SDK checks,
# redis-server for cluster mode, haproxy for `make cluster-demo`).
DEB_PKGS = libevent:libevent-dev libcurl:libcurl4-openssl-dev \
           json-c:libjson-c-dev libconfig:libconfig-dev openssl:libssl-dev \
           cunit:libcunit1-dev hiredis:libhiredis-dev
deps:
	@missing=""; \
	command -v pkg-config >/dev/null || missing="pkg-config"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v valgrind >/dev/null || missing="$$missing valgrind"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v haproxy >/dev/null || test -x /usr/sbin/haproxy || \
	    missing="$$missing haproxy"; \
	for p in $(DEB_PKGS); do \
	    pkg-config --exists $${p%%:*} 2>/dev/null || missing="$$missing $${p#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    if [ "$$(id -u)" != 0 ]; then sudo=sudo; else sudo=; fi; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    $$sudo apt-get install -y -q $$missing >/dev/null 2>&1 || \
	    { $$sudo apt-get update -q >/dev/null && \
	      $$sudo apt-get install -y -q $$missing; } || exit 1; \
	fi

test: deps
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory asan
	@tests/run.sh

check: build
	@tests/run.sh --quick

run: deps
	@$(MAKE) --no-print-directory build
	$(BINDIR)/pipelined -c etc/pipelined.conf

asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan BINDIR=bin/asan \
	    OPT="-O1 -g" \
	    SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    build

bench: deps
	@$(MAKE) --no-print-directory build
	bench/run.sh
	@echo
	@echo "### Scheduler microbenchmarks (bin/queue_bench)"
	@echo
	@$(BINDIR)/queue_bench

# Three instances in cluster mode behind HAProxy, one Redis, an upstream
# that fails and recovers: a timeline of what each instance sees
# (bench/cluster_demo.sh; exit 0 when it is as expected).
cluster-demo: deps
	@$(MAKE) --no-print-directory build
	@bench/cluster_demo.sh

# libFuzzer targets, FUZZ_SECONDS (60) each; see tests/fuzz/README.md.
fuzz: deps
	tests/fuzz/run.sh

lint:
	cppcheck --enable=warning,style,performance,portability \
	    --error-exitcode=1 --quiet --inline-suppr -Iinclude \
	    --suppress=missingIncludeSystem \
	    common master worker tests/mock tests/unit

# The binaries, the unit, and the shipped configuration unless one is
# there already.
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSCONF) \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/share/doc/rcc-pipeline/docs
	install -m 0755 bin/pipelined bin/pipelinectl $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 etc/pipelined.service $(DESTDIR)$(UNITDIR)/
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/rcc-pipeline/
	install -m 0644 docs/*.md $(DESTDIR)$(PREFIX)/share/doc/rcc-pipeline/docs/
	test -e $(DESTDIR)$(SYSCONF)/pipelined.conf || \
	    install -m 0600 etc/pipelined.conf $(DESTDIR)$(SYSCONF)/

clean:
	rm -rf build bin
