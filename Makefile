# llmpipe — builds lib/libllm.a, then every bin/llm-*.c against it.
#   make            build           make check       all tests
#   make demo       run the pipeline  make check-asan  tests under ASan + UBSan
#   make bench      benchmarks      make fuzz-run    short libFuzzer runs
#   make install PREFIX=/usr/local DESTDIR=        make clean
# CC, CFLAGS, LDFLAGS, PREFIX and DESTDIR may be overridden; CI=1 makes
# warnings errors.

PREFIX ?= /usr/local
DESTDIR ?=
CFLAGS ?= -O2 -g
LDFLAGS ?=
# OUT: where lib/libllm.a, bin/ and the test binaries go (the ASan build
# uses build/asan); OBJ: object files.
OUT ?= .
OBJ ?= build/obj

PKGS = libzstd openblas libpcre2-8
# OpenBLAS's OpenMP build when it is there (Debian: libopenblas-openmp-dev):
# its kernels then run on OpenMP's threads, one pool with the library's own
# loops (see llm_cli_threads).  Debian installs it beside the default pthreads
# build, so the binaries record where it is (rpath).
OPENBLAS_OPENMP ?= $(firstword $(wildcard /usr/lib/*/openblas-openmp/pkgconfig/openblas.pc))
ifneq ($(OPENBLAS_OPENMP),)
export PKG_CONFIG_PATH := $(dir $(OPENBLAS_OPENMP))$(if $(PKG_CONFIG_PATH),:$(PKG_CONFIG_PATH))
BLAS_RPATH = -Wl,-rpath,$(shell PKG_CONFIG_PATH=$(PKG_CONFIG_PATH) pkg-config --variable=libdir openblas)
endif
PKG_CFLAGS = $(shell PKG_CONFIG_PATH=$(PKG_CONFIG_PATH) pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell PKG_CONFIG_PATH=$(PKG_CONFIG_PATH) pkg-config --libs $(PKGS)) $(BLAS_RPATH)
WARN = -Wall -Wextra -Wvla
ifneq ($(CI),)
WARN += -Werror
endif
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -fopenmp -Ilib $(PKG_CFLAGS) $(CFLAGS)
LDLIBS = $(PKG_LIBS) -fopenmp -lm

# MPI, optional, for llm-train's data parallelism: Open MPI through
# pkg-config (ompi-c), else whatever mpicc wraps; MPI=none builds without.
# Only lib/dist.o is compiled with it, and only llm-train and the unit tests
# that use dist.o link it; without MPI, dist.o says MPI is missing.
MPI ?= $(shell if pkg-config --exists ompi-c 2>/dev/null; then echo ompi-c; \
                elif command -v mpicc >/dev/null 2>&1; then echo mpicc; else echo none; fi)
ifeq ($(MPI),ompi-c)
MPI_CFLAGS = -DLLM_HAVE_MPI $(shell pkg-config --cflags ompi-c)
MPI_LIBS = $(shell pkg-config --libs ompi-c)
else ifeq ($(MPI),mpicc)
MPI_CFLAGS = -DLLM_HAVE_MPI $(shell mpicc --showme:compile 2>/dev/null || mpicc -compile-info | cut -d' ' -f2-)
MPI_LIBS = $(shell mpicc --showme:link 2>/dev/null || mpicc -link-info | cut -d' ' -f2-)
endif
$(OBJ)/lib/dist.o: EXTRA_CFLAGS = $(MPI_CFLAGS)
$(OUT)/bin/llm-train: EXTRA_LIBS = $(MPI_LIBS)
$(OBJ)/tests/test_dist: EXTRA_LIBS = $(MPI_LIBS)

LIB_SRC = $(sort $(wildcard lib/*.c))
LIB_OBJ = $(LIB_SRC:lib/%.c=$(OBJ)/lib/%.o)
LIB = $(OUT)/lib/libllm.a
TOOL_SRC = $(sort $(wildcard bin/llm-*.c))
TOOLS = $(TOOL_SRC:bin/%.c=$(OUT)/bin/%)
UNIT_SRC = $(sort $(wildcard tests/unit/test_*.c))
UNIT_TESTS = $(UNIT_SRC:tests/unit/%.c=$(OBJ)/tests/%)
# The unit tests' shared objects: the harness, and allocations that fail on
# request (tests/unit/nomem.h), put in place of malloc, calloc and realloc
# by --wrap.
CHECK_OBJ = $(OBJ)/tests/check.o $(OBJ)/tests/nomem.o
MAN1 = $(sort $(wildcard man/man1/*.1))
MAN5 = $(sort $(wildcard man/man5/*.5))

# Debian packages the build needs (make deps installs them), and ones that
# only enable optional tests.
DEB_BUILD = gcc make pkg-config libzstd-dev libopenblas-openmp-dev libpcre2-dev zstd
DEB_OPTIONAL = python3-numpy python3-torch python3-sentencepiece python3-regex clang libclang-rt-dev netpbm libopenmpi-dev openmpi-bin npm

.PHONY: all deps have-deps check check-run check-asan demo bench fuzz fuzz-run install clean
all: $(LIB) $(TOOLS)

# Header dependencies come from the compiler: each compile writes a .d file
# beside its object (-MMD), naming the headers it read (-MP: a deleted
# header is not an error).
DEPFLAGS = -MMD -MP -MF $(OBJ)/dep/$(subst /,_,$@).d -MT $@

$(OBJ)/lib/%.o: lib/%.c
	@mkdir -p $(@D) $(OBJ)/dep
	$(CC) $(ALL_CFLAGS) $(EXTRA_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

$(OUT)/bin/%: bin/%.c $(LIB)
	@mkdir -p $(@D) $(OBJ)/dep
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) $< -o $@ $(LDFLAGS) $(LIB) $(EXTRA_LIBS) $(LDLIBS)

$(CHECK_OBJ): $(OBJ)/tests/%.o: tests/unit/%.c
	@mkdir -p $(@D) $(OBJ)/dep
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(OBJ)/tests/%: tests/unit/%.c $(CHECK_OBJ) $(LIB)
	@mkdir -p $(@D) $(OBJ)/dep
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -Itests/unit $< -o $@ $(LDFLAGS) -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc $(CHECK_OBJ) $(TEST_OBJ) $(LIB) $(EXTRA_LIBS) $(LDLIBS)

# References some tests share (TEST_OBJ, linked before the library): the
# calibration tests' data and references, the double-precision model, and
# the tokenizer tests' shared checks.
CALIB_TESTS = $(patsubst %,$(OBJ)/tests/test_calib%,_hist _amax _table) $(OBJ)/tests/test_calib
$(CALIB_TESTS): $(OBJ)/tests/calib_ref.o
$(CALIB_TESTS): TEST_OBJ += $(OBJ)/tests/calib_ref.o
REF_MODEL_TESTS = $(patsubst %,$(OBJ)/tests/test_%,model adapter infer llama2c)
$(REF_MODEL_TESTS): $(OBJ)/tests/ref_model.o
$(REF_MODEL_TESTS): TEST_OBJ += $(OBJ)/tests/ref_model.o
TOK_REF_TESTS = $(patsubst %,$(OBJ)/tests/test_tok%,_spm _gpt2) $(OBJ)/tests/test_tok $(OBJ)/tests/test_gguf_tok
$(TOK_REF_TESTS): $(OBJ)/tests/tok_ref.o
$(TOK_REF_TESTS): TEST_OBJ += $(OBJ)/tests/tok_ref.o
$(OBJ)/tests/calib_ref.o $(OBJ)/tests/ref_model.o $(OBJ)/tests/tok_ref.o: $(OBJ)/tests/%.o: tests/unit/%.c
	@mkdir -p $(@D) $(OBJ)/dep
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -Itests/unit -c $< -o $@

# Finds missing Debian build packages.  make deps (and make demo) installs
# them when run as root, else says exactly what to run; make check and the
# other targets only say what is missing, and never install anything.
define find_deps
	@missing=""; \
	if command -v dpkg-query >/dev/null 2>&1; then \
	  for p in $(DEB_BUILD); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	  done; \
	elif ! pkg-config --exists $(PKGS) 2>/dev/null; then \
	  echo "llmpipe needs libzstd, OpenBLAS and PCRE2 (pkg-config: $(PKGS)) and a C compiler with OpenMP"; exit 1; \
	fi; \
	[ -z "$$missing" ] && exit 0; \
	if [ $(1) = install ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	else \
	  echo "missing Debian packages:$$missing"; \
	  echo "run: make deps (as root), or: sudo apt-get install$$missing"; \
	  echo "(optional, for more tests: sudo apt-get install $(DEB_OPTIONAL))"; exit 1; \
	fi
endef

deps:
	$(call find_deps,install)

have-deps:
	$(call find_deps,report)

check: have-deps
	@$(MAKE) --no-print-directory check-run

check-run: all $(UNIT_TESTS)
	@sh tests/run.sh $(OUT)/bin $(OBJ)/tests

check-asan: have-deps
	@$(MAKE) --no-print-directory OUT=build/asan OBJ=build/asan/obj \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" check-run

demo: deps
	@$(MAKE) --no-print-directory all
	@sh tests/demo.sh $(OUT)/bin

bench: have-deps
	@$(MAKE) --no-print-directory all
	@sh tests/bench/run.sh .

# libFuzzer targets (Debian's clang): every parser of outside input.
FUZZ_SRC = $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN = $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_SECONDS ?= 60
# The library is compiled once for every target (instrumented for coverage,
# ASan and UBSan), then each target links against it.
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -Wno-pass-failed -Ilib $(PKG_CFLAGS) -fopenmp
FUZZ_LIB_OBJ = $(LIB_SRC:lib/%.c=build/fuzz/obj/%.o)
build/fuzz/obj/%.o: lib/%.c
	@mkdir -p $(@D) build/fuzz/dep
	clang $(FUZZ_CFLAGS) -MMD -MP -MF build/fuzz/dep/$*.o.d -MT $@ -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@
build/fuzz/libllm.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^
build/fuzz/%: tests/fuzz/%.c build/fuzz/libllm.a
	@mkdir -p $(@D) build/fuzz/dep
	clang $(FUZZ_CFLAGS) -MMD -MP -MF build/fuzz/dep/$*.d -MT $@ -fsanitize=fuzzer,address,undefined $< build/fuzz/libllm.a -o $@ $(PKG_LIBS) -lm
fuzz: $(FUZZ_BIN)
fuzz-run: fuzz
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	$(if $(MAN1),install -m 644 $(MAN1) $(DESTDIR)$(PREFIX)/share/man/man1/)
	$(if $(MAN5),install -m 644 $(MAN5) $(DESTDIR)$(PREFIX)/share/man/man5/)

clean:
	rm -rf build lib/libllm.a $(TOOLS)

-include $(wildcard $(OBJ)/dep/*.d build/fuzz/dep/*.d)
