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
# and zstd (pkg-config), libllm links lib/libllm.a, as built, with those,
# PCRE2 and OpenMP.
helper() {
    _name=$1
    case ${2:-} in
        '') set -- ;;
        openmp) set -- -fopenmp ;;
        blas|libllm)
            _pkgs="libzstd openblas"
            [ "$2" = libllm ] && _pkgs="$_pkgs libpcre2-8" # the tokenizers' regexes
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

# Repeated runs.  Every measurement is taken BENCH_RUNS times (default 3), in
# rounds that go round all the variants (ours, peer, ours, peer, ...), so that
# load from other users of the machine falls on all alike.  A table gives the
# median of the runs and their range, "694 (566–720)", never the best one: a
# best is what a newcomer cannot reproduce.  A ratio against the peer is the
# median (and range) of the per-round ratios, ours in round i over the peer
# in round i, not the ratio of the medians: a burst of load that slows one
# round slows both sides of that round's ratio.  Fewer than 3 runs are
# allowed for a quick check of the script, and the table's caption then says
# that its figures are not a result.
#
# runs=$(bench_runs) || exit: BENCH_RUNS, a whole number, at least 1.
bench_runs() {
    _r=$(number BENCH_RUNS 3 1) || exit
    [ "$_r" -ge 3 ] || say "BENCH_RUNS=$_r: fewer than 3 runs, a quick check, not a result"
    echo "$_r"
}
# in_turn FUNCTION KIND...: the runs, round by round: FUNCTION KIND ROUND for
# each KIND in turn, in each of the $runs rounds (ours, peer, ours, peer...).
# FUNCTION runs in this shell (so it can append to lists) under set -e.
in_turn() {
    _fn=$1
    shift
    _round=1
    while [ "$_round" -le "$runs" ]; do
        for _kind; do "$_fn" "$_kind" "$_round"; done
        _round=$((_round + 1))
    done
}
# append NAME VALUE: adds VALUE to the list (words) in the variable NAME.
append() { eval "$1=\"\${$1:-} \$2\""; }
# runs_caption RUNS: how the figures were taken, for a table's caption.
runs_caption() {
    if [ "$1" -ge 3 ]; then
        echo "each figure the median (min–max) of $1 runs taken in turn, a ratio the median (min–max) of the per-round ratios"
    else
        echo "only $1 run(s) (BENCH_RUNS=$1, fewer than 3): a quick check of the script, NOT A RESULT; each figure the median (min–max) of the runs taken in turn, a ratio that of the per-round ratios"
    fi
}

# The statistics, as awk functions on lists of numbers separated by spaces,
# for the scripts' own awk programs:  awk "$stats_awk"'PROGRAM'
#   median(L)           the middle value; the mean of the two middle ones when
#                       L has an even count
#   summary(FORMAT, L)  "median (min–max)", each printed with FORMAT (%.0f ...)
#   ratios(A, B)        the list of A[i] / B[i] (A and B: one value per round)
#   scaled(L, K)        the list of L[i] x K
#   over(K, L)          the list of K / L[i] (seconds to a rate)
stats_awk='
function stats_sorted(l, v,   n, i, j, x) {
    n = split(l, v, " ")
    for (i = 2; i <= n; i++) {
        x = v[i] + 0
        for (j = i - 1; j >= 1 && v[j] + 0 > x; j--) v[j + 1] = v[j]
        v[j + 1] = x
    }
    if (n == 0) { print "bench: no numbers to summarize" > "/dev/stderr"; exit 1 }
    return n
}
function median(l,   v, n) {
    n = stats_sorted(l, v)
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function summary(f, l,   v, n) {
    n = stats_sorted(l, v)
    return sprintf(f " (" f "–" f ")", median(l), v[1], v[n])
}
function ratios(a, b,   x, y, n, i, r) {
    n = split(a, x, " ")
    if (split(b, y, " ") != n) { print "bench: ratios of lists of different lengths" > "/dev/stderr"; exit 1 }
    for (i = 1; i <= n; i++) r = r (i > 1 ? " " : "") (y[i] != 0 ? x[i] / y[i] : 0)
    return r
}
function scaled(l, k,   x, n, i, r) {
    n = split(l, x, " ")
    for (i = 1; i <= n; i++) r = r (i > 1 ? " " : "") x[i] * k
    return r
}
function over(k, l,   x, n, i, r) {
    n = split(l, x, " ")
    for (i = 1; i <= n; i++) r = r (i > 1 ? " " : "") (x[i] != 0 ? k / x[i] : 0)
    return r
}
'
# The same in the shell: median NUMBER...; summary FORMAT NUMBER....
# max NUMBER...: the largest (for peak memory, where the largest of the runs
# is the figure).
median() { awk -v l="$*" "$stats_awk"'BEGIN { print median(l) }'; }
summary() { _f=$1; shift; awk -v f="$_f" -v l="$*" "$stats_awk"'BEGIN { print summary(f, l) }'; }
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
