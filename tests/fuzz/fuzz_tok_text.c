/* libFuzzer target for the SentencePiece and byte-level BPE tokenizers:
 * the input makes a vocabulary (and merges), a text and a few byte flips.
 * The vocabulary must give a tokenizer or a clean error; the text must
 * encode and decode without a crash; the tokenizer record written from it,
 * bytes flipped, must read back or fail cleanly.
 *
 * Input: a flags byte (bit 0: GPT2, else SPM; bit 1: Llama 3's regex; bit
 * 2: ignore_merges; bit 3: no dummy prefix), then (fuzz_split) the
 * vocabulary, then (fuzz_split) the text and the flips.  The vocabulary is
 * lines: a first byte >= 0xF0 makes the rest a merge, else the rest is a
 * piece of type (byte % 7) and score (signed byte).  The 256 byte pieces
 * (SPM: "<0xNN>"; GPT2: GPT-2's mapped characters) come first. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "stream.h"
#include "tok.h"

#define MAX_LINES 512

static int byte_piece(int b, char *out)
{
    int n = 0, cp = b;
    int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (!printable) {
        for (int c = 0; c < b; c++) n += !((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE);
        cp = 256 + n;
    }
    if (cp < 0x80) return out[0] = (char)cp, 1;
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

static void encode_decode(const llm_tok *t, const char *text, size_t len)
{
    int32_t *ids = malloc((llm_tok_max_ids(t, len) + 1) * sizeof *ids);
    if (!ids) return;
    llm_error err = {0};
    int64_t n = llm_tok_encode_text(t, text, len, ids, &err);
    char piece[LLM_TOK_MAX_PIECE];
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->vocab) abort(); /* an id outside the vocabulary is a bug */
        (void)llm_tok_decode_next(t, i ? ids[i - 1] : t->bos, ids[i], piece);
    }
    free(ids);
}

/* Writes t raw to memory, flips bytes as flips says, reads it back. */
static void record_round_trip(const llm_tok *t, const uint8_t *flips, size_t n_flips, const char *text,
                              size_t len)
{
    int fd = memfd_create("tok", 0);
    if (fd < 0) return;
    llm_error err = {0};
    llm_writer *w;
    llm_writer_opts opts = {.raw = 1};
    if (llm_writer_open_fd(&w, fd, "mem", &opts, &err) == 0) {
        if (llm_tok_write(t, w, &err) == 0) llm_writer_close(w, &err);
        else llm_writer_abort(w);
    }
    off_t size = lseek(fd, 0, SEEK_END);
    unsigned char *buf = size > 0 ? malloc((size_t)size) : NULL;
    if (buf && pread(fd, buf, (size_t)size, 0) == size) {
        for (size_t i = 0; i + 3 <= n_flips; i += 3) buf[(flips[i] | flips[i + 1] << 8) % size] ^= flips[i + 2];
        llm_reader *r;
        if (llm_reader_open_mem(&r, buf, (size_t)size, "mem", &err) == 0) {
            const llm_record *rec;
            while (llm_reader_next(r, &rec, &err) > 0) {
                if (rec->kind != LLM_RECORD_META || strcmp(rec->name, "tokenizer")) continue;
                llm_tok back = {0};
                if (llm_tok_read(&back, r, rec, &err) == 0) encode_decode(&back, text, len);
                llm_tok_free(&back);
            }
            llm_reader_close(r);
        }
    }
    free(buf);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned flags = data[0];
    data++, size--;
    size_t split;
    if (!fuzz_split(&data, &size, &split)) return 0;
    const uint8_t *vocab = data, *rest = data + split;
    size_t vocab_len = split, rest_len = size - split;
    if (!fuzz_split(&rest, &rest_len, &split)) return 0;
    const char *text = (const char *)rest;
    size_t text_len = split;

    static const char *pieces[256 + MAX_LINES], *merges[MAX_LINES];
    static uint32_t lens[256 + MAX_LINES], merge_lens[MAX_LINES];
    static float scores[256 + MAX_LINES];
    static int32_t types[256 + MAX_LINES];
    static char byte_pieces[256][8];
    int gpt2 = flags & 1, n = 0, m = 0;
    for (int b = 0; b < 256; b++) {
        lens[n] = gpt2 ? (uint32_t)byte_piece(b, byte_pieces[b]) : 6;
        if (!gpt2) memcpy(byte_pieces[b], "<0x", 3), byte_pieces[b][3] = "0123456789ABCDEF"[b >> 4],
                   byte_pieces[b][4] = "0123456789ABCDEF"[b & 15], byte_pieces[b][5] = '>';
        pieces[n] = byte_pieces[b], scores[n] = 0, types[n] = gpt2 ? LLM_TOKT_NORMAL : LLM_TOKT_BYTE;
        n++;
    }
    for (size_t at = 0; at < vocab_len && n < 256 + MAX_LINES && m < MAX_LINES;) {
        const uint8_t *e = memchr(vocab + at, '\n', vocab_len - at);
        size_t end = e ? (size_t)(e - vocab) : vocab_len;
        if (end > at) {
            uint8_t head = vocab[at];
            const char *s = (const char *)vocab + at + 1;
            uint32_t len = (uint32_t)(end - at - 1);
            if (head >= 0xF0) merges[m] = s, merge_lens[m++] = len;
            else pieces[n] = s, lens[n] = len, scores[n] = (float)(int8_t)head, types[n++] = head % 7;
        }
        at = end + 1;
    }
    llm_tok_spec s = {.vocab = n, .pieces = pieces, .lens = lens, .scores = scores, .types = types,
                      .bos = n > 256 ? 256 : -1, .eos = -1, .unk = n > 257 ? 257 : -1,
                      .add_bos = n > 256, .space_prefix = !(flags & 8),
                      .n_merges = gpt2 ? m : 0, .merges = merges, .merge_lens = merge_lens,
                      .pre = flags & 2 ? LLM_TOK_PRE_LLAMA3 : LLM_TOK_PRE_GPT2, .ignore_merges = !!(flags & 4)};
    llm_tok t;
    llm_error err = {0};
    if ((gpt2 ? llm_tok_gpt2(&t, &s, &err) : llm_tok_spm(&t, &s, &err)) < 0) return 0;
    encode_decode(&t, text, text_len);
    record_round_trip(&t, rest + text_len, rest_len - text_len, text, text_len);
    llm_tok_free(&t);
    return 0;
}
