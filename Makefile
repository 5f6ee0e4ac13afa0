EXTENSION = pgqueue
EXTVERSION = 0.4.0

MODULE_big = pgqueue
OBJS = src/pgqueue.o src/catalog.o src/acl.o src/config.o \
       src/partition_state.o src/topic.o src/segment.o \
       src/send.o src/headers.o src/payload.o src/murmur2.o src/fetch.o src/wait.o \
       src/group.o src/group_admin.o src/position.o src/commit.o \
       src/poll.o src/seek.o src/lag.o src/producer.o \
       src/worker.o src/retention.o

DATA = $(wildcard sql/$(EXTENSION)--*.sql)

REGRESS = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --outputdir=test --load-extension=$(EXTENSION)

ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test --outputdir=test/isolation --load-extension=$(EXTENSION)

PROVE_TESTS ?= test/t/*.pl

EXTRA_CLEAN = test/results test/regression.diffs test/regression.out \
              test/isolation test/tmp_check test/stress/stress \
              test/stress/group_stress

PG_CPPFLAGS = -I$(srcdir)/src -DPGQ_EXTVERSION='"$(EXTVERSION)"'
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter \
            -Wmissing-prototypes -Wpointer-arith -Werror=vla

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# pgqueue-kafka, the Kafka protocol gateway (gateway/, docs/gateway.md): a
# daemon of its own, built, installed (next to Postgres's programs) and
# cleaned with the extension.
all: gateway

gateway:
	$(MAKE) -C gateway PG_CONFIG='$(PG_CONFIG)'

install: install-gateway

install-gateway: gateway
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) gateway/pgqueue-kafka '$(DESTDIR)$(bindir)/pgqueue-kafka'

uninstall: uninstall-gateway

uninstall-gateway:
	rm -f '$(DESTDIR)$(bindir)/pgqueue-kafka'

clean: clean-gateway

clean-gateway:
	$(MAKE) -C gateway clean

.PHONY: gateway install-gateway uninstall-gateway clean-gateway

# The stress client is a plain libpq program, built on demand by scripts/test.sh.
test/stress/stress: test/stress/stress.c test/stress/stress_common.c \
		test/stress/stress_common.h
	$(CC) $(CFLAGS) -I$(shell $(PG_CONFIG) --includedir) -o $@ $< \
		test/stress/stress_common.c -L$(shell $(PG_CONFIG) --libdir) -lpq

test/stress/group_stress: test/stress/group_stress.c \
		test/stress/stress_common.c test/stress/stress_common.h
	$(CC) $(CFLAGS) -I$(shell $(PG_CONFIG) --includedir) -o $@ $< \
		test/stress/stress_common.c -L$(shell $(PG_CONFIG) --libdir) -lpq

# TAP tests (PostgreSQL::Test::Cluster) against the installed extension.  Not
# part of installcheck: they run initdb, so scripts/test.sh runs them as the
# postgres user over a copy of the tree.
.PHONY: prove_installcheck
prove_installcheck:
	$(prove_installcheck)

# every source file includes the shared header and some module headers
$(OBJS): $(wildcard src/*.h)
