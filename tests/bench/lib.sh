# lib.sh — what the benchmark scripts tests/bench/*.sh share.  Each sources
# it first, after `set -eu`:
#   . "$(dirname "$0")/lib.sh"
# which sets top (the repo top: the script's first argument, default .) and
# defines the helpers below.  Functions keep their own variables in _names so
# they leave the script's alone; tmpdir sets $tmp, so it is called directly,
# not in $(...).

top=$(cd "${1:-.}" && pwd) || exit 2

# say MSG: progress on stderr.  die MSG: a failure, exit 1.  bad MSG: a bad
# setting, exit 2.
say() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }
bad() { echo "bench: $*" >&2; exit 2; }

# number NAME DEFAULT [MIN]: prints the environment's NAME (DEFAULT when it is
# unset or empty); exits 2 unless that is a whole number, at least MIN when
# MIN is given.  Used as  x=$(number BENCH_X 3 1) || exit
number() {
    eval "_v=\${$1:-}"
    [ -n "$_v" ] || _v=$2
    case $_v in ''|*[!0-9]*) bad "$1 must be a whole number, not '$_v'";; esac
    [ -z "${3:-}" ] || [ "$_v" -ge "$3" ] || bad "$1 must be at least $3, not $_v"
    echo "$_v"
}

# need TOOL...: each of TOP/bin/TOOL built.
need() {
    for _t; do
        [ -x "$top/bin/$_t" ] || die "$top/bin/$_t not built (run make)"
    done
}

# on_path TOOL...: puts TOP/bin first on PATH and checks each TOOL: an llm-*
# tool built in TOP/bin, any other on PATH.
on_path() {
    PATH="$top/bin:$PATH"
    export PATH
    for _t; do
        case $_t in
            llm-*) need "$_t" ;;
            *) command -v "$_t" >/dev/null 2>&1 || die "$_t not found (make deps)" ;;
        esac
    done
}

# tmpdir: makes the scratch folder $tmp, removed when the script exits, also
# on INT or TERM (exit 130).
tmpdir() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/llmpipe-bench.XXXXXX") || exit 1
    trap 'rm -rf "$tmp"' EXIT
    trap 'exit 130' INT TERM
}

# private_copy TOOL...: copies TOP/bin/TOOL into $tmp, so that a rebuild
# while the benchmark runs does not change what it measures.
private_copy() {
    for _t; do
        cp "$top/bin/$_t" "$tmp/$_t" || die "cannot copy $_t"
    done
}

# helper NAME [openmp|blas|libllm]: compiles tests/bench/NAME.c into
# $tmp/NAME with CC (default cc); openmp adds -fopenmp, blas links OpenBLAS
# and zstd (pkg-config), libllm links lib/libllm.a, as built, with those and
# OpenMP.
helper() {
    _name=$1
    case ${2:-} in
        '') set -- ;;
        openmp) set -- -fopenmp ;;
        blas|libllm)
            _pkgs="libzstd openblas"
            _cflags=$(pkg-config --cflags $_pkgs) && _libs=$(pkg-config --libs $_pkgs) ||
                die "pkg-config $_pkgs failed (make deps)"
            if [ "$2" = blas ]; then
                set -- $_cflags $_libs
            else
                [ -f "$top/lib/libllm.a" ] || die "$top/lib/libllm.a not built (run make)"
                set -- -fopenmp -I"$top/lib" $_cflags "$top/lib/libllm.a" $_libs
            fi ;;
        *) die "helper $_name: no link kind '$2'" ;;
    esac
    ${CC:-cc} -O2 -std=c11 -D_GNU_SOURCE -o "$tmp/$_name" "$top/tests/bench/$_name.c" "$@" -lm ||
        die "cannot compile $_name.c"
}

# now: the time in seconds.  elapsed T0 T1 [DIGITS]: T1 - T0 with DIGITS
# decimals (default 6).
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" -v d="${3:-6}" 'BEGIN { printf "%." d "f", b - a }'; }

# min NUMBER... / max NUMBER...: the smallest / largest.
min() { printf '%s\n' "$@" | sort -g | head -n 1; }
max() { printf '%s\n' "$@" | sort -g | tail -n 1; }

# kv KEY FILE: the value of the first KEY=VALUE word in FILE.
kv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" "$2" | head -n 1; }

# For the tables' headers: the CPU's model name, how many CPUs are online,
# the load average.
cpu_name() {
    _c=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null) || :
    echo "${_c:-unknown CPU}"
}
cpu_count() { getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null || echo 1; }
load_average() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?"; }

# table_file NAME: makes TOP/build/bench and prints the path of NAME.md in it,
# where the benchmark's tables go besides stdout.
table_file() {
    mkdir -p "$top/build/bench" || die "cannot make $top/build/bench"
    echo "$top/build/bench/$1.md"
}
