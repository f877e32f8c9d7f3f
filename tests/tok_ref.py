#!/usr/bin/python3
"""Independent references for the SentencePiece and byte-level BPE
tokenizers (lib/tok_spm.c, lib/tok_gpt2.c), for tests/unit/test_tok_spm.c and
test_tok_gpt2.c.  It shares no code with llmpipe.

usage: tok_ref.py spm OUTDIR            (needs python3-sentencepiece)
       tok_ref.py gpt2 OUTDIR PRE       (PRE: gpt2 | llama3; needs python3-regex)

spm trains a SentencePiece BPE model on a small corpus with the options of
Llama's tokenizer.model (identity normalization, extra whitespace kept, a
dummy prefix, byte fallback, whitespace-only pieces) and encodes the awkward
strings below with sentencepiece itself.  gpt2 trains a byte-level BPE merge
list on the corpus (most frequent pair first, within chunks cut at
whitespace) and encodes the awkward strings with GPT-2's own algorithm (its
encoder.py's bpe(): merge every occurrence of the best-ranked pair, repeat),
the pre-tokenizer regex matched by the `regex` module.

Writes OUTDIR/vocab (one piece a line: type, score, hex of the piece's
bytes), OUTDIR/meta ("bos eos unk"), OUTDIR/merges (gpt2: hex of each
"LEFT RIGHT") and OUTDIR/cases (one string a line: hex of its bytes, the
reference ids, hex of the reference decoding or "-" where the reference
cannot decode, all tab-separated).

Strings with bytes that are not UTF-8: sentencepiece replaces each such byte
with U+FFFD before encoding; llmpipe keeps the byte.  The reference is
sentencepiece's ids for the string with U+FFFD in their place, each U+FFFD's
byte pieces <0xEF><0xBF><0xBD> then replaced by the original byte's piece
(U+FFFD is in neither corpus, so it merges with nothing, like a lone byte).
For gpt2 such a byte is matched by the regex as a character that is neither
a letter, a number nor a space (Python's surrogateescape), as U+FFFD is.
"""
import os
import random
import sys

# Types: GGUF's token_type values.
NORMAL, UNKNOWN, CONTROL, USER, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

AWKWARD = [
    b"",
    b" ",
    b"  ",
    b"hello world",
    b"Hello World! The cat sat on the mat.",
    b"  leading and trailing  ",
    b"tabs\tand\nnewlines\n\n\nend",
    b"\r\n windows\r\nline\r\n",
    b"numbers 1234567 and 3.14159, 42nd, 2024-01-01 and 1,000,000",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00c9t\u00e9".encode(),
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \u4e2d\u6587".encode(),
    "emoji \U0001F600\U0001F680 \U0001F468\u200D\U0001F469\u200D\U0001F467 flag \U0001F1EB\U0001F1F7!".encode(),
    "\u0645\u0631\u062d\u0628\u0627 Greek \u03b1\u03b2\u03b3 Cyrillic \u043f\u0440\u0438\u0432\u0435\u0442".encode(),
    b"it's don't we'll they've I'M You'RE she'd",
    b"a  b   c    d     e",
    b"   \n   \n\t\t \n",
    b"x" * 300,
    b"ab" * 120,
    b"the the the the the the",
    "combining e\u0301 and \u00e9, nbsp\u00a0here, ideographic\u3000space".encode(),
    "\u2581 the lower one-eighth block \u2581\u2581 itself".encode(),
    b"<0x41> looks like a byte piece",
    b"<sep>defined<sep> <sep> x<sep>y <s>control</s> <unk>",
    b"<|endoftext|>text<|endoftext|> <|user|>hi<|user|><|endoftext|>",
    b"\x00nul\x00 and \x01\x7f controls",
    b"\xff",
    b"a\xffb",
    b"\xff\xfe invalid \x80 bytes \xc3\x28 \xe2\x82 cut \xed\xa0\x80 surrogate",
    b"\xf4\x90\x80\x80 too big \xc0\xaf overlong \xe2\x82\xac euro \xf0\x9f\x98 cut emoji",
    b"end with a cut \xe2\x82",
]

WORDS = ("the cat sat on mat dog log a an and of to in is it that was he she they we you "
         "for with as at by this from have had not but what all were when there can said "
         "hello world once upon time little girl boy day sun tree house water play happy "
         "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00e9t\u00e9 \u65e5\u672c\u8a9e \u4e2d\u6587 "
         "\u043f\u0440\u0438\u0432\u0435\u0442 \u03b1\u03b2\u03b3 \u0645\u0631\u062d\u0628\u0627 "
         "don't it's we'll I'm 1 2 3 42 100 2024 3.14 \U0001F600").split()


def corpus_lines(n=1500, seed=7):
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 14))]
        line = " ".join(words)
        if rng.random() < 0.2:
            line = line.capitalize() + "."
        if rng.random() < 0.1:
            line = "  " + line.replace(" ", "   ", 1)
        lines.append(line)
    return lines


def hexs(b):
    return b.hex() if b else "-empty-"


def write_vocab(out, pieces):
    """pieces: [(type, score, bytes)]"""
    with open(os.path.join(out, "vocab"), "w") as f:
        for t, s, p in pieces:
            f.write("%d %r %s\n" % (t, float(s), hexs(p)))


def write_cases(out, cases):
    with open(os.path.join(out, "cases"), "w") as f:
        for text, ids, dec in cases:
            f.write("%s\t%s\t%s\n" % (hexs(text), " ".join(map(str, ids)) or "-",
                                      "-" if dec is None else hexs(dec)))


def is_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def invalid_bytes(b):
    """The bytes of b that start no well-formed UTF-8 character, in order."""
    s = b.decode("utf-8", "surrogateescape")
    return [ord(c) - 0xDC00 for c in s if 0xDC80 <= ord(c) <= 0xDCFF]


def spm_main(out):
    import sentencepiece as spm
    corpus = os.path.join(out, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("\n".join(corpus_lines()) + "\n")
    user = ["<sep>", "@@"]
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=os.path.join(out, "spm"), vocab_size=700, model_type="bpe",
        byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, character_coverage=1.0, user_defined_symbols=user,
        allow_whitespace_only_pieces=True, split_digits=False, num_threads=1, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(out, "spm.model"))
    pieces = []
    for i in range(sp.get_piece_size()):
        p = sp.id_to_piece(i)
        t = (UNKNOWN if sp.is_unknown(i) else CONTROL if sp.is_control(i) else
             UNUSED if sp.is_unused(i) else BYTE if sp.is_byte(i) else
             USER if p in user else NORMAL)
        pieces.append((t, sp.get_score(i), p.encode()))
    write_vocab(out, pieces)
    with open(os.path.join(out, "meta"), "w") as f:
        f.write("%d %d %d\n" % (sp.bos_id(), sp.eos_id(), sp.unk_id()))
    fffd = [sp.piece_to_id("<0x%02X>" % b) for b in b"\xef\xbf\xbd"]
    assert sp.piece_to_id("\ufffd") == sp.unk_id(), "U+FFFD must not be a piece"
    cases = []
    for text in AWKWARD:
        if is_utf8(text):
            ids = sp.encode(text.decode("utf-8"))
            cases.append((text, ids, sp.decode(ids).encode("utf-8")))
            continue
        s = text.decode("utf-8", "surrogateescape")
        s = "".join("\ufffd" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in s)
        ids, bad, out_ids, i = sp.encode(s), invalid_bytes(text), [], 0
        while i < len(ids):
            if ids[i:i + 3] == fffd:
                out_ids.append(sp.piece_to_id("<0x%02X>" % bad.pop(0)))
                i += 3
            else:
                out_ids.append(ids[i])
                i += 1
        assert not bad
        cases.append((text, out_ids, None))
    write_cases(out, cases)


# ---- byte-level BPE ----

PRE = {
    "gpt2": r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    "llama3": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}
SPECIAL = [(b"<|endoftext|>", CONTROL), (b"<|user|>", USER)]


def bytes_to_unicode():
    """GPT-2's table, as its encoder.py defines it."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + \
        list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def chunks(regex, pattern, text):
    """The pre-tokenizer's chunks of text (bytes), invalid bytes kept."""
    s = text.decode("utf-8", "surrogateescape")
    out, at = [], 0
    for m in regex.finditer(pattern, s):
        if m.start() > at:
            out.append(s[at:m.start()])
        out.append(m.group())
        at = m.end()
    if at < len(s):
        out.append(s[at:])
    return [c.encode("utf-8", "surrogateescape") for c in out]


def split_special(text):
    """text cut at the special pieces (leftmost, then longest): [(bytes, is_special)]"""
    out, start, i = [], 0, 0
    while i < len(text):
        hit = max((p for p, _ in SPECIAL if text.startswith(p, i)), key=len, default=None)
        if hit is None:
            i += 1
            continue
        out.append((text[start:i], False))
        out.append((hit, True))
        i += len(hit)
        start = i
    out.append((text[start:], False))
    return out


def merge_pair(word, pair):
    """word (a tuple of symbols) with every occurrence of pair, left to right, merged."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def train_merges(words, n_merges):
    """Most frequent adjacent pair first (ties: the smaller pair), as many times as asked."""
    vocab = {}
    for w in words:
        vocab[w] = vocab.get(w, 0) + 1
    words = {tuple(w): c for w, c in vocab.items()}
    merges = []
    for _ in range(n_merges):
        counts = {}
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + c
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        new = {}
        for w, c in words.items():
            w = merge_pair(w, best)
            new[w] = new.get(w, 0) + c
        words = new
    return merges


def gpt2_bpe(word, ranks):
    """GPT-2's encoder.py bpe(): word is a tuple of symbols."""
    while len(word) > 1:
        pairs = set(zip(word, word[1:]))
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        word = merge_pair(word, best)
    return word


def gpt2_main(out, pre):
    import regex
    pattern = regex.compile(PRE[pre])
    b2u = bytes_to_unicode()
    u2b = {c: b for b, c in b2u.items()}
    mapped = lambda bs: "".join(b2u[b] for b in bs)
    # trained on chunks cut at whitespace only, so that merges cross the
    # boundaries of letters, numbers and punctuation the regexes draw, and a
    # wrong regex shows in the ids
    words, by_space = [], regex.compile(r"\s?\S+|\s+")
    for line in corpus_lines():
        words += [mapped(c) for c in chunks(regex, by_space, (line + "\n").encode())]
    merges = train_merges(words, 400)
    ranks = {m: i for i, m in enumerate(merges)}
    # the vocabulary: specials first, the 256 byte characters, then the merges' results
    pieces = [(t, 0.0, p) for p, t in SPECIAL]
    pieces += [(NORMAL, 0.0, b2u[b].encode()) for b in range(256)]
    pieces += [(NORMAL, 0.0, (a + b).encode()) for a, b in merges]
    ids = {}
    for i, (t, _, p) in enumerate(pieces):
        ids.setdefault(p.decode(), i)
    write_vocab(out, pieces)
    with open(os.path.join(out, "meta"), "w") as f:
        f.write("0 0 -1\n")
    with open(os.path.join(out, "merges"), "w") as f:
        for a, b in merges:
            f.write((a + " " + b).encode().hex() + "\n")
    ignore_merges = pre == "llama3"
    cases = []
    for text in AWKWARD:
        got = []
        for part, special in split_special(text):
            if special:
                got.append(ids[part.decode()])
                continue
            for c in chunks(regex, pattern, part):
                m = mapped(c)
                if ignore_merges and m in ids and ids[m] >= len(SPECIAL):
                    got.append(ids[m])
                    continue
                got += [ids[s] for s in gpt2_bpe(tuple(m), ranks)]
        dec = b"".join(b"" if pieces[i][0] == CONTROL else pieces[i][2] if pieces[i][0] == USER
                       else bytes(u2b[c] for c in pieces[i][2].decode()) for i in got)
        cases.append((text, got, dec))
    write_cases(out, cases)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "spm":
        spm_main(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "gpt2" and sys.argv[3] in PRE:
        gpt2_main(sys.argv[2], sys.argv[3])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
