# bgeicl - build with `make`, test with `make check` (see README.md).
#
#   make            library (static + shared), the bgeicl binary, bgeicl.pc
#   make SAN=1      the same with ASan+UBSan, into build/san/
#   make unit       build and run the C unit tests
#   make check      everything the README's test command runs after setup

SAN ?= 0
ifeq ($(SAN),1)
  BUILD := build/san
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  OPT := -O1 -g
else
  BUILD := build
  SANFLAGS :=
  OPT := -O2 -g
endif

PREFIX ?= /usr/local
CC ?= cc
PKGS := libutf8proc libcjson openblas libcurl zlib
SERVER_PKGS := libmicrohttpd libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) $(SERVER_PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS))
SERVER_LIBS := $(shell pkg-config --libs $(SERVER_PKGS))

CFLAGS := -std=c11 $(OPT) -Wall -Wextra -Werror -fPIC -pthread -D_GNU_SOURCE \
          -DBGEICL_DATADIR='"$(PREFIX)/share/bgeicl"' \
          -Iinclude -Isrc $(PKG_CFLAGS) $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(SANFLAGS) $(EXTRA_LDFLAGS)
LIBS := $(PKG_LIBS) -lm

# libbgeicl is the engine, the ICL prompt layer, the client (libcurl, with
# zlib for gzip'd request bodies) and the public API. The server and its
# cache are linked into the bgeicl binary (and the unit tests) from an
# internal archive, so that users of the library do not pull in
# libmicrohttpd and libcrypto.
LIB_SRC := $(wildcard src/util/*.c src/tokenizer/*.c src/model/*.c src/kernels/*.c \
                      src/engine/*.c src/icl/*.c src/client/*.c src/api/*.c)
SERVER_SRC := $(wildcard src/server/*.c src/cache/*.c)
CLI_SRC := $(wildcard src/cli/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
BENCH_SRC := $(wildcard bench/*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all unit check clean install bench-bin
all: $(BUILD)/libbgeicl.a $(BUILD)/libbgeicl.so $(BUILD)/bgeicl $(BUILD)/bgeicl.pc

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libbgeicl.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libbgeicl.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/libbgeicl_server.a: $(SERVER_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bgeicl: $(CLI_OBJ) $(BUILD)/libbgeicl_server.a $(BUILD)/libbgeicl.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libbgeicl_server.a $(BUILD)/libbgeicl.a \
	    $(SERVER_LIBS) $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/harness.h tests/unit/test_rand.h $(BUILD)/libbgeicl_server.a $(BUILD)/libbgeicl.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libbgeicl_server.a $(BUILD)/libbgeicl.a $(LDFLAGS) \
	    $(SERVER_LIBS) $(LIBS)

# The cache benchmark measures a server-side piece.
$(BUILD)/bench/cache_bench: bench/cache_bench.c $(BUILD)/libbgeicl_server.a $(BUILD)/libbgeicl.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libbgeicl_server.a $(BUILD)/libbgeicl.a $(LDFLAGS) \
	    $(SERVER_LIBS) $(LIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libbgeicl.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libbgeicl.a $(LDFLAGS) $(LIBS)

$(BUILD)/bgeicl.pc: bgeicl.pc.in
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|0.1.0|' $< > $@

bench-bin: $(BENCH_BIN)

unit: $(UNIT_BIN)
	@BUILD=$(BUILD) tests/unit/run.sh $(UNIT_BIN)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(BUILD)/bgeicl $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(BUILD)/libbgeicl.a $(BUILD)/libbgeicl.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/bgeicl.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/bgeicl.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -d $(DESTDIR)$(PREFIX)/share/bgeicl/icl-examples
	install -m 644 icl/examples/*.json $(DESTDIR)$(PREFIX)/share/bgeicl/icl-examples/

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(SERVER_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
