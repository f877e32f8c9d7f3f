# CLI tests for llm-attnviz: images parsed back (perl) and compared pixel by
# pixel with the probabilities they came from; netpbm's pamfile on every
# kind of image (skipped when netpbm is absent); the causal check against a
# planted leak; --stats against sums done here; --head-sim against numpy;
# bad input; and the pipe from llm-gen --dump-attn.
. "$LLM_TOP/tests/cli/lib.sh"

# probs.bin: 2 layers x 3 heads x 5 x 5 causal softmax rows (f32), written by
# perl with a fixed seed; one .npy per layer
perl -e '
    srand(42);
    my ($L, $H, $T) = (2, 3, 5);
    for my $l (1..$L) { for my $h (1..$H) { for my $i (0..$T-1) {
        my @e = map { $_ <= $i ? exp(3 * (rand() - 0.5)) : 0 } 0..$T-1;
        my $s = 0; $s += $_ for @e;
        print pack("f<*", map { $_ / $s } @e);
    } } }' >probs.bin
head -c $((3 * 25 * 4)) probs.bin >l0.bin && tail -c $((3 * 25 * 4)) probs.bin >l1.bin
mknpy '<f4' '(3, 5, 5)' l0.bin l0.npy && mknpy '<f4' '(3, 5, 5)' l1.bin l1.npy
TOK='tokens=<bos> the \x20 c\x5ca t'
llm-tensor from-npy -o attn.llmt --attr "$TOK" layers.0.attn.probs=l0.npy layers.1.attn.probs=l1.npy

# pixels FILE.pgm LAYER HEAD SCALE MAXVAL GAMMA: every pixel of a one-head
# image against round(p^gamma * maxval) from probs.bin
pixels() {
    perl -e '
        my ($img, $layer, $head, $s, $maxval, $gamma) = @ARGV;
        my ($H, $T) = (3, 5);
        open(my $f, "<:raw", "probs.bin") or die; local $/; my @p = unpack("f<*", <$f>);
        open(my $g, "<:raw", $img) or die; my $d = <$g>;
        $d =~ s/\AP5\n(\d+) (\d+)\n(\d+)\n//s or die "header\n";
        ($1 == $T * $s && $2 == $T * $s && $3 == $maxval) or die "size $1 x $2 maxval $3\n";
        my @px = $maxval > 255 ? unpack("n*", $d) : unpack("C*", $d);
        @px == ($T * $s) ** 2 or die "raster of " . scalar(@px) . "\n";
        for my $y (0 .. $T * $s - 1) { for my $x (0 .. $T * $s - 1) {
            my $v = $p[(($layer * $H + $head) * $T + int($y / $s)) * $T + int($x / $s)];
            $v = 0 if $v < 0; $v = 1 if $v > 1;
            my $want = int($v ** $gamma * $maxval + 0.5);
            $px[$y * $T * $s + $x] == $want or die "pixel ($x,$y) $px[$y*$T*$s+$x] != $want\n";
        } }' "$@"
}

expect "one head to stdout" 0 "" -- llm-attnviz --layer 1 --head 2 attn.llmt
cp out h12.pgm
pixels h12.pgm 1 2 1 255 1 && pass "pixels = probabilities (8-bit)" || fail "pixels = probabilities (8-bit)" "see above"
expect "pattern: a file per layer and head" 0 "" -- llm-attnviz -o 'h-L%d-H%d.pgm' --scale 3 --maxval 65535 --gamma 0.5 attn.llmt
[ "$(ls h-L*-H*.pgm | wc -l)" -eq 6 ] && pass "six files" || fail "six files" "$(ls)"
pixels h-L0-H1.pgm 0 1 3 65535 0.5 && pass "pixels = probabilities (16-bit, gamma, scale)" ||
    fail "pixels = probabilities (16-bit, gamma, scale)" "see above"
expect "stdin" 0 "" -- sh -c 'llm-attnviz --layer 1 --head 2 - < attn.llmt'
same "stdin = file" out h12.pgm

expect "layer grid" 0 "" -- llm-attnviz --layer 0 --grid --scale 2 attn.llmt
cp out grid.pgm
[ "$(head -n 2 grid.pgm | tr '\n' ' ')" = "P5 32 10 " ] && pass "grid: 3 cells of 10 px, 1 px lines" ||
    fail "grid: 3 cells of 10 px, 1 px lines" "$(head -n 2 grid.pgm)"
expect "every layer x head" 0 "" -- llm-attnviz --grid attn.llmt
[ "$(head -n 2 out | tr '\n' ' ')" = "P5 17 11 " ] && pass "all layers: 3 columns x 2 rows" ||
    fail "all layers: 3 columns x 2 rows" "$(head -n 2 out)"
expect "ppm with labels" 0 "" -- llm-attnviz --layer 1 --grid --ppm --labels --invert attn.llmt
cp out labels.ppm
expect "a grid file per layer" 0 "" -- llm-attnviz --grid --log -o 'g%d.pgm' attn.llmt
[ -f g0.pgm ] && [ -f g1.pgm ] && pass "g0.pgm g1.pgm" || fail "g0.pgm g1.pgm" "$(ls)"

if command -v pamfile >/dev/null 2>&1; then
    for f in h12.pgm h-L0-H1.pgm grid.pgm labels.ppm g1.pgm; do
        expect "pamfile accepts $f" 0 "" -- pamfile "$f"
    done
    pamfile labels.ppm | grep -q 'PPM raw' &&
        pass "pamfile: labels.ppm is a PPM" || fail "pamfile: labels.ppm is a PPM" "$(pamfile labels.ppm)"
else
    skip "pamfile" "netpbm not installed"
fi

# diagnostics
expect "causal check passes" 0 "" -- llm-attnviz --check-causal attn.llmt
grep -q '^layer 1	ok	max leak 0$' out && pass "causal: ok lines" || fail "causal: ok lines" "$(cat out)"
# plant a leak: layer 0 head 1 row 2 gives 0.3 to key 4
perl -e 'open(my $f, "<:raw", "l0.bin") or die; local $/; my @p = unpack("f<*", <$f>);
         my $r = (1 * 5 + 2) * 5; $p[$r + $_] *= 0.7 for 0..2; $p[$r + 4] = 0.3;
         print pack("f<*", @p)' >leak.bin
mknpy '<f4' '(3, 5, 5)' leak.bin leak.npy
llm-tensor from-npy -o leak.llmt layers.0.attn.probs=leak.npy
expect "causal check catches a planted leak" 1 "layers.0.attn.probs: head 1 row 2 puts 0.3 of its probability on future tokens" -- \
    llm-attnviz --check-causal leak.llmt
expect "a leak under the tolerance" 0 "" -- llm-attnviz --check-causal --tol 0.5 leak.llmt

expect "stats" 0 "" -- llm-attnviz --stats attn.llmt
perl -e '
    open(my $f, "<:raw", "probs.bin") or die; local $/; my @p = unpack("f<*", <$f>);
    open(my $o, "<", "out") or die; my @lines = split /\n/, <$o>;
    shift @lines eq "layer\thead\tentropy\tdistance\tdiagonal\tfirst\tleak" or die "header\n";
    @lines == 6 or die "rows\n";
    for my $line (@lines) {
        my ($l, $h, $ent, $dist, $diag, $first) = split /\t/, $line;
        my ($E, $D, $G, $F) = (0, 0, 0, 0);
        for my $i (0..4) { for my $j (0..4) {
            my $q = $p[(($l * 3 + $h) * 5 + $i) * 5 + $j];
            $E -= $q * log($q) if $q > 0; $D += $q * ($i - $j);
            $G += $q if $i == $j; $F += $q if $j == 0;
        } }
        abs($ent - $E / 5) < 1e-5 && abs($dist - $D / 5) < 1e-4 && abs($diag - $G / 5) < 1e-5 &&
            abs($first - $F / 5) < 1e-5 or die "layer $l head $h: $line vs $E $D $G $F\n";
    }' && pass "stats = sums in perl" || fail "stats = sums in perl" "see above"

py=$(numpy_python)
expect "head similarity" 0 "" -- llm-attnviz --head-sim --sim-threshold 0.0 -o 'sim%d.pgm' attn.llmt
cp out sim.txt
if [ -n "$py" ]; then
    llm-tensor to-npy 'layers.*' attn.llmt >p.npy
    "$py" -c "
import numpy as np
f = open('p.npy', 'rb')
lines = [l for l in open('sim.txt').read().splitlines()]
for layer in range(2):
    p = np.load(f).astype(np.float64).reshape(3, -1)
    n = p / np.linalg.norm(p, axis=1, keepdims=True)
    want = n @ n.T
    at = lines.index('# layer %d: cosine similarity of the heads\' attention maps' % layer)
    got = np.array([[float(x) for x in lines[at + 1 + a].split('\t')[1:]] for a in range(3)])
    assert np.abs(got - want).max() < 1e-4, (got, want)
" && pass "head similarity = numpy" || fail "head similarity = numpy" "see above"
else
    skip "head similarity = numpy" "Debian python3-numpy not installed"
fi
[ "$(grep -c '^redundant' sim.txt)" -eq 6 ] && pass "threshold 0 flags every pair" || fail "threshold 0 flags every pair" "$(cat sim.txt)"
[ "$(head -n 2 sim0.pgm | tr '\n' ' ')" = "P5 48 48 " ] && pass "similarity image: 3 heads x 16 px" ||
    fail "similarity image: 3 heads x 16 px" "$(head -n 2 sim0.pgm)"

# bad input
printf 'x' >f.bin
mknpy '<f4' '(1, 1, 1)' f.bin bad1.npy 2>/dev/null
perl -e 'print pack("f<*", (0.25) x 24)' >s.bin && mknpy '<f4' '(2, 3, 4)' s.bin s.npy
llm-tensor from-npy -o shape.llmt layers.0.attn.probs=s.npy
expect "not [heads, T, T]" 1 "shape.llmt: layers.0.attn.probs: shape \[2,3,4\] is not \[heads, T, T\]" -- \
    llm-attnviz --layer 0 --head 0 shape.llmt
perl -e 'print pack("f<*", 1, 0, 0.5, "NaN")' >n.bin && mknpy '<f4' '(1, 2, 2)' n.bin n.npy
llm-tensor from-npy -o nan.llmt layers.0.attn.probs=n.npy
expect "NaN" 1 "nan.llmt: layers.0.attn.probs: head 0 row 1 column 1 is NaN" -- llm-attnviz --layer 0 --head 0 -o nan.pgm nan.llmt
[ ! -e nan.pgm ] && [ -z "$(ls | grep '\.tmp\.')" ] && pass "no output left after an error" || fail "no output left after an error" "$(ls)"
perl -e 'print pack("f<*", 0.5, 0, 0.5, 0.25)' >u.bin && mknpy '<f4' '(1, 2, 2)' u.bin u.npy
llm-tensor from-npy -o sums.llmt layers.0.attn.probs=u.npy
expect "rows not summing to 1: a warning" 0 "2 rows do not sum to 1 \(head 0 row 0 sums to 0.5\)" -- \
    llm-attnviz --layer 0 --head 0 sums.llmt
expect "beyond the pixel limit" 1 "a 20480 x 20480 image is beyond the limit of 268435456 pixels \(--force draws it\)" -- \
    llm-attnviz --layer 0 --head 0 --scale 4096 -o big.pgm attn.llmt
[ ! -e big.pgm ] && pass "nothing written beyond the limit" || fail "nothing written beyond the limit" "$(ls -l big.pgm)"
expect "no such layer" 1 "attn.llmt: no layers.7.attn.probs record" -- llm-attnviz --layer 7 --head 0 attn.llmt
expect "no such head" 1 "no head 3: the record has 3" -- llm-attnviz --layer 0 --head 3 attn.llmt
llm-tensor from-npy -o notok.llmt layers.0.attn.probs=l0.npy
expect "labels without tokens" 1 "no tokens attribute" -- llm-attnviz --layer 0 --grid --labels notok.llmt
llm-tensor from-npy -o badtok.llmt --attr 'tokens=a b' layers.0.attn.probs=l0.npy
expect "labels that do not match T" 1 "tokens: 2 labels for 5 positions" -- llm-attnviz --layer 0 --grid --labels badtok.llmt
cat attn.llmt attn.llmt >twice.llmt
expect "a layer twice" 1 "layer 0 appears twice" -- llm-attnviz --grid -o 't%d.pgm' twice.llmt
expect "not a stream" 1 "probs.bin: .*not a tensor stream" -- llm-attnviz --grid probs.bin

# more temporary files in one run than any fixed table holds: -o writes a
# file per layer; killed inside the 11th record (its temporary file open, the
# ten before renamed into place), it leaves none behind
args=
for l in $(seq 0 9); do args="$args layers.$l.attn.probs=l0.npy"; done
llm-tensor from-npy --raw -o ten.llmt $args && llm-tensor from-npy --raw -o more.llmt layers.10.attn.probs=l0.npy
{ cat ten.llmt; head -c 150 more.llmt; sleep 5; } | llm-attnviz --grid -o 'many%d.pgm' - &
victim=$!
for i in $(seq 100); do ls | grep -q 'many10.pgm.tmp' && break; sleep 0.05; done
kill -TERM "$victim"
wait "$victim"
status=$?
[ "$status" -eq 143 ] && [ "$(ls many*.pgm | wc -l)" -eq 10 ] && [ -z "$(ls | grep '\.tmp\.')" ] &&
    pass "killed after 10 files: no temporary file left" ||
    fail "killed after 10 files: no temporary file left" "status $status; $(ls | grep many)"

# every output checked: a full disk is an error that names the output
full "image to a full disk" stdout -- llm-attnviz --layer 1 --head 2 attn.llmt
full "grid to a full disk" stdout -- llm-attnviz --grid attn.llmt
full "stats to a full disk" stdout -- llm-attnviz --stats attn.llmt
full "head-sim to a full disk" stdout -- llm-attnviz --head-sim attn.llmt
full "check-causal to a full disk" stdout -- llm-attnviz --check-causal attn.llmt
full "help to a full disk" stdout -- llm-attnviz --help

# usage
expect "several heads in one image" 2 "add --grid" -- llm-attnviz --layer 0 attn.llmt
expect "--head with --grid" 2 "exclude each other" -- llm-attnviz --head 0 --grid attn.llmt
expect "bad maxval" 2 "neither 255 nor 65535" -- llm-attnviz --maxval 1000 --grid attn.llmt
expect "labels too small" 2 "--labels needs --scale 8" -- llm-attnviz --grid --labels --scale 2 attn.llmt
expect "bad pattern" 2 "only %d" -- llm-attnviz --grid -o 'x%s.pgm' attn.llmt
expect "--help" 0 "" -- llm-attnviz --help
expect "--version" 0 "" -- llm-attnviz --version

# the pipe from llm-gen
for k in 1 2 3; do printf 'the cat sat on the mat. the dog sat on the log. ' ; done >text.txt
if llm-train --data text.txt --out m.llmt --dim 16 --layers 2 --heads 2 --seq 8 --batch 1 --steps 1 \
    --eval-every 0 -q 2>/dev/null; then
    expect "llm-gen | llm-attnviz" 0 "" -- sh -c 'llm-gen -m m.llmt --dump-attn -p "the cat" -q | llm-attnviz --layer 1 --grid --labels'
    [ "$(head -c 3 out)" = "$(printf 'P5\n')" ] && pass "llm-gen pipe gives a PGM" || fail "llm-gen pipe gives a PGM" "$(head -c 20 out | od -c)"
    expect "llm-gen: causal" 0 "" -- sh -c 'llm-gen -m m.llmt --dump-attn -p "the cat" -q | llm-attnviz --check-causal'
else
    fail "llm-train for the pipe" "could not train a tiny model"
fi
