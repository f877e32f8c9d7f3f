#!/bin/bash
# CLI tests for llm-train's data parallelism over MPI: 2 ranks against one
# process with the same global batch (--accum 2), ZeRO-1 sharding, overlap on
# and off, checkpoints moving between rank counts, a killed rank, SIGINT to
# mpirun; and, without MPI, the "MPI is missing" path.  Every run is a tiny
# model, one thread per rank, on this machine.
. "$(dirname "$0")/lib.sh"

training_text text.txt
head -c 20000 text.txt >a.txt
tiny="--dim 32 --layers 2 --heads 4 --kv-heads 2 --seq 32 --batch 4 --threads 1"
export OMP_NUM_THREADS=1
# Open MPI under ASan: its own allocations outlive MPI_Finalize by design
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

# --- without MPI: a build whose lib/dist.c has no MPI says so -------------
lib="$LLM_BIN/../lib/libllm.a"
if ! command -v cc >/dev/null || ! command -v pkg-config >/dev/null || [ ! -r "$lib" ]; then
    skip "build without MPI" "needs cc, pkg-config and $lib"
elif nm "$lib" 2>/dev/null | grep -q __asan; then
    skip "build without MPI" "checked in the plain build, not under ASan"
elif ! cc -std=c11 -D_GNU_SOURCE -fopenmp -I"$LLM_TOP/lib" $(pkg-config --cflags libzstd openblas libpcre2-8) \
        "$LLM_TOP/bin/llm-train.c" "$LLM_TOP/lib/dist.c" "$lib" -o nompi-train \
        $(pkg-config --libs libzstd openblas libpcre2-8) -fopenmp -lm 2>cc.err; then
    fail "build without MPI" "$(head -c 300 cc.err)"
else
    pass "build without MPI"
    expect "no MPI: --help works" 0 "" -- ./nompi-train --help
    expect "no MPI: --dist says MPI is missing" 1 "^llm-train: MPI is missing" -- \
        ./nompi-train --data a.txt --out x.llmt $tiny --steps 2 --dist
    expect "no MPI: --shard-optim says MPI is missing" 1 "MPI is missing.*libopenmpi-dev" -- \
        ./nompi-train --data a.txt --out x.llmt $tiny --steps 2 --shard-optim
    expect "no MPI: under a launcher says MPI is missing" 1 "MPI is missing" -- \
        env OMPI_COMM_WORLD_SIZE=2 ./nompi-train --data a.txt --out x.llmt $tiny --steps 2
    expect "no MPI: one process trains as before" 0 "saved x.llmt at step 2" -- \
        ./nompi-train --data a.txt --out x.llmt $tiny --steps 2 --eval-every 0
fi

# --- with MPI ---------------------------------------------------------------
if ! command -v mpirun >/dev/null; then
    skip "MPI runs" "no mpirun (Debian: openmpi-bin)"
    exit 0
fi
if llm-train --data a.txt --out probe.llmt $tiny --steps 1 --dist 2>&1 | grep -q "MPI is missing"; then
    skip "MPI runs" "llm-train was built without MPI (Debian: libopenmpi-dev)"
    exit 0
fi
# local only, oversubscribed 2-core machines, root in CI
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo \
    OMPI_MCA_btl_base_warn_component_unused=0
root=""
[ "$(id -u)" = 0 ] && root=--allow-run-as-root
mpi() { # N, llm-train arguments...
    n=$1; shift
    timeout 60 mpirun $root --oversubscribe -np "$n" -x OMP_NUM_THREADS -x ASAN_OPTIONS llm-train "$@"
}
py=$(numpy_python)
# reldiff A.llmt B.llmt: the largest ||a - b|| / ||a|| over every tensor
# (weights and optimizer moments), numpy reading llm-tensor's .npy output.
reldiff() {
    "$py" - "$1" "$2" <<'EOF'
import io, subprocess, sys
import numpy as np
def names(path):
    out = subprocess.run(["llm-tensor", "ls", path], capture_output=True, text=True, check=True).stdout
    return [l.split()[0] for l in out.splitlines() if l.split()[0] != "meta"]
def load(path, name):
    raw = subprocess.run(["llm-tensor", "to-npy", name, path], capture_output=True, check=True).stdout
    return np.load(io.BytesIO(raw)).astype(np.float64)
a, b = sys.argv[1], sys.argv[2]
na, nb = names(a), names(b)
if na != nb:
    print("different tensors"); sys.exit(0)
worst = 0.0
for n in na:
    x, y = load(a, n), load(b, n)
    worst = max(worst, np.linalg.norm(x - y) / max(np.linalg.norm(x), 1e-30))
print("%.3g" % worst)
EOF
}
# within NAME A.llmt B.llmt: every tensor within 1e-5 relative
within() {
    if [ -z "$py" ]; then skip "$1" "no numpy for /usr/bin/python3"; return; fi
    d=$(reldiff "$2" "$3")
    awk -v d="$d" 'BEGIN {exit !(d ~ /^[0-9.e+-]+$/ && d + 0 < 1e-5)}' && pass "$1" || fail "$1" "relative difference $d"
}
# curves NAME A.tsv B.tsv: train losses of every step within 1e-5 relative
curves() {
    paste "$2" "$3" | awk -F'\t' -v n="$(head -1 "$2" | awk -F'\t' '{print NF}')" '
        NR > 1 { a = $2; b = $(n + 2); d = a - b; if (d < 0) d = -d; if (d > 1e-5 * a) bad = NR; rows++ }
        END { exit !(rows > 0 && !bad) }' && pass "$1" || fail "$1" "loss curves differ: $(paste "$2" "$3" | cut -f2,8 | tail -3 | tr '\n' ' ')"
}

# one process with --accum 2 is the reference: the same global batch
llm-train --data a.txt --out one.llmt $tiny --accum 2 --steps 20 --eval-every 10 --log one.tsv -q
expect "2 ranks" 0 "data parallel over 2 ranks .*2 micro-batches of 4 per step" -- \
    mpi 2 --data a.txt --out two.llmt $tiny --steps 20 --eval-every 10 --log two.tsv
grep -q "communication: [0-9.]* MiB sent per rank per step (1.00 x the [0-9.]* MiB gradient); [0-9.]* s of [0-9.]* s per step waiting on it" err &&
    pass "communication report" || fail "communication report" "$(tail -2 err)"
[ "$(grep -c 'llm-train: step' err)" -eq 2 ] && pass "rank 0 alone reports" || fail "rank 0 alone reports" "$(cat err)"
head -1 two.tsv | grep -q "grad_norm	comm_bytes	comm_s	step_s$" && [ "$(wc -l <two.tsv)" -eq 21 ] &&
    pass "log has communication columns" || fail "log has communication columns" "$(head -2 two.tsv)"
curves "2 ranks: loss curve of 1 process with --accum 2" one.tsv two.tsv
within "2 ranks: weights of 1 process with --accum 2" one.llmt two.llmt
awk -F'\t' 'NR == 11 && $3 != "" {ok = 1} END {exit !ok}' two.tsv && pass "validation shared among ranks" ||
    fail "validation shared among ranks" "$(sed -n 11p two.tsv)"
d=$(paste one.tsv two.tsv | awk -F'\t' 'NR == 11 {d = $3 - $9; print (d < 0 ? -d : d) < 1e-5 * $3}')
[ "$d" = 1 ] && pass "validation loss of 2 ranks equals 1 process" || fail "validation loss of 2 ranks equals 1 process" "$(sed -n 11p one.tsv two.tsv)"

expect "ZeRO-1" 0 "optimizer adamw: 0.13 MiB of state per rank \(2 floats per parameter, sharded 1/2\)" -- \
    mpi 2 --data a.txt --out shard.llmt $tiny --steps 20 --eval-every 0 --log shard.tsv --shard-optim
expect "1 process state" 0 "optimizer adamw: 0.25 MiB of state \(2 floats per parameter\)" -- \
    llm-train --data a.txt --out x.llmt $tiny --steps 1 --eval-every 0
curves "ZeRO-1: loss curve unchanged" one.tsv shard.tsv
within "ZeRO-1: weights and gathered optimizer state unchanged" one.llmt shard.llmt
mpi 2 --data a.txt --out noov.llmt $tiny --steps 20 --eval-every 0 -q --no-overlap
within "--no-overlap: the same weights" one.llmt noov.llmt
mpi 2 --data a.txt --out layer.llmt $tiny --steps 20 --eval-every 0 -q --bucket-mb 0 --shard-optim
within "a bucket per layer, sharded: the same weights" one.llmt layer.llmt
mpi 3 --data a.txt --out three.llmt $tiny --accum 6 --steps 6 --eval-every 0 -q --shard-optim &&
    llm-train --data a.txt --out three1.llmt $tiny --accum 6 --steps 6 --eval-every 0 -q
within "3 ranks, 2 micro-batches each, sharded unevenly" three1.llmt three.llmt

# checkpoints move between rank counts
mpi 2 --data a.txt --out half2.llmt $tiny --steps 20 --stop-at 10 --eval-every 0 -q --shard-optim
expect "2-rank sharded checkpoint resumes on 1 process" 0 "resumed" -- \
    llm-train --data a.txt --init half2.llmt --out res1.llmt $tiny --eval-every 0
within "2 ranks then 1 process: the one-run weights" one.llmt res1.llmt
llm-train --data a.txt --out half1.llmt $tiny --accum 2 --steps 20 --stop-at 10 --eval-every 0 -q
expect "1-process checkpoint resumes on 2 ranks" 0 "resumed" -- \
    mpi 2 --data a.txt --init half1.llmt --out res2.llmt $tiny --eval-every 0 --shard-optim
within "1 process then 2 ranks: the one-run weights" one.llmt res2.llmt
# every rank that fails says so, naming itself; mpirun's own status
fails() { # NAME REGEX -- COMMAND...
    name=$1 pattern=$2; shift 3
    "$@" >"$T/out" 2>"$T/err" && { fail "$name" "exit 0"; return; }
    grep -Eq -- "$pattern" "$T/err" && pass "$name" || fail "$name" "stderr: $(head -c 300 "$T/err")"
}
fails "fewer micro-batches than ranks" "^llm-train: rank [0-2]: accum 2 is less than the 3 ranks" -- \
    mpi 3 --data a.txt --init half1.llmt --out x.llmt $tiny
fails "stdin refused" "^llm-train: rank 0: --data -: standard input reaches rank 0 only" -- \
    mpi 2 --data - --out x.llmt $tiny

# a killed rank: the others stop within seconds, mpirun names the rank, the
# last checkpoint is whole
big="--dim 64 --layers 2 --heads 4 --seq 64 --threads 1 --steps 100000 --eval-every 0"
mpi 2 --data text.txt --out kill.llmt $big --save-every 10 -q 2>kill.err &
pid=$!
for i in $(seq 300); do [ -s kill.llmt ] && break; sleep 0.1; done
victim=""
for p in /proc/[0-9]*; do
    grep -qa "kill.llmt" "$p/cmdline" 2>/dev/null && tr '\0' '\n' <"$p/environ" 2>/dev/null |
        grep -qx "OMPI_COMM_WORLD_RANK=1" && victim=${p#/proc/}
done
if [ -z "$victim" ]; then
    fail "killed rank" "rank 1 not found"
    kill $pid 2>/dev/null
else
    start=$(date +%s)
    kill -KILL "$victim"
    wait $pid
    status=$? took=$(($(date +%s) - start))
    [ "$status" -ne 0 ] && [ "$took" -le 10 ] && grep -q "rank 1" kill.err &&
        pass "killed rank: the job stops in ${took}s naming rank 1" ||
        fail "killed rank: the job stops naming rank 1" "status $status after ${took}s: $(head -c 300 kill.err)"
    llm-tensor ls kill.llmt | grep -Eq '^meta train .*step=[0-9]*0 ' && pass "killed rank: the last checkpoint is whole" ||
        fail "killed rank: the last checkpoint is whole" "$(llm-tensor ls kill.llmt 2>&1 | head -3)"
fi

# SIGINT to mpirun: every rank stops at the same step, rank 0 saves
# (mpirun itself in the background: a shell function there would ignore SIGINT)
mpirun $root --oversubscribe -np 2 -x OMP_NUM_THREADS -x ASAN_OPTIONS llm-train --data text.txt --out int.llmt \
    $big 2>int.err &
pid=$!
for i in $(seq 100); do grep -q "data parallel" int.err && break; sleep 0.1; done
sleep 0.5
kill -INT $pid
wait $pid
grep -q "interrupted: saved step" int.err && llm-tensor ls int.llmt | grep -q '^meta train .*step=' &&
    pass "SIGINT to mpirun saves from rank 0" || fail "SIGINT to mpirun saves from rank 0" "$(head -c 300 int.err)"
k=$(llm-tensor ls int.llmt | sed -n 's/^meta train .*step=\([0-9]*\) .*/\1/p')
grep -q "interrupted: saved step $k to int.llmt" int.err && pass "SIGINT: the checkpoint holds the step reported" ||
    fail "SIGINT: the checkpoint holds the step reported" "step $k; $(head -c 300 int.err)"
ls ./*.tmp.* >/dev/null 2>&1 && fail "no temporary files left" "$(ls ./*.tmp.*)" || pass "no temporary files left"
