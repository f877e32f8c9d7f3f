/* tok — tokenizers: text to token ids and back.
 *
 * Three kinds.  The default is byte-level (LLM_TOK_BYTES): every byte of the
 * text is one token (0..255), plus BOS (256) and EOS (257), so any text
 * encodes and a model needs nothing but its checkpoint to read and write text.
 * LLM_TOK_BPE is the SentencePiece-style byte-pair tokenizer of llama2.c
 * (tokenizer.bin: pieces with scores, byte fallback "<0xNN>"), encoding and
 * decoding exactly as llama2.c's run.c does.  LLM_TOK_IDS knows only how many
 * ids there are: a model imported without its tokenizer takes and gives token
 * ids, and encoding or decoding text is an error.
 *
 *     llm_tok t;
 *     llm_tok_bytes(&t);
 *     int64_t n = llm_tok_encode_text(&t, "hi", 2, ids, &err);   // ids = {104, 105}
 *     char piece[LLM_TOK_MAX_PIECE];
 *     int len = llm_tok_decode(&t, ids[0], piece);    // "h", 1
 *     llm_tok_free(&t);                               // needed for BPE only
 *
 * BPE encoding (run.c's encode with bos = eos = 0):
 *   1. A non-empty text gets a dummy-prefix space in front.
 *   2. The text is cut into UTF-8 code points: a byte that is not a
 *      continuation byte (10xxxxxx) starts one, followed by at most three
 *      continuation bytes.  A code point whose bytes are a piece becomes that
 *      piece's id; otherwise each of its bytes b becomes id b + 3 (the byte
 *      pieces <0x00>..<0xFF> follow <unk>, <s>, </s>); a vocabulary too small
 *      for that makes the text unencodable (LLM_ERR_ARG).
 *   3. Repeatedly, of all adjacent pairs whose concatenated pieces are a piece
 *      with score > -1e10, the one with the highest score is merged (the
 *      leftmost on ties), until none is left.  The pieces are concatenated as
 *      stored, so a byte token's piece is the six characters "<0xNN>".
 *   This takes O(n log n) time (a heap of candidate pairs) where run.c takes
 *   O(n^2); the result is the same.  When the vocabulary holds a piece twice,
 *   lookups find the lower id.  run.c with bos = 1 merges the BOS piece with
 *   the text too; encoding text and then putting BOS in front differs from it
 *   only for a vocabulary holding a piece that starts with BOS's own piece.
 * BPE decoding (run.c's decode): BOS and EOS decode to nothing; a piece that
 * follows BOS loses a leading space; a piece that is exactly "<0xNN>" (two
 * hex digits) decodes to that one raw byte; any other piece to its bytes.
 *
 * In checkpoints the tokenizer is one metadata record named "tokenizer"
 * (llm_tok_write, llm_tok_read), dtype u8, shape [P] (P payload bytes), with
 * the attributes
 *     kind=bytes|bpe|ids  vocab=V  bos=B  eos=E        (decimal; -1: none)
 * and, for kind=bpe only, a payload of P = 8V + S bytes, little-endian:
 *     f32 score[V]       merge priority of each piece
 *     u32 len[V]         piece lengths in bytes, each 0..LLM_TOK_MAX_PIECE
 *     u8  bytes[S]       the pieces back to back, S = the sum of len
 * Pieces are raw bytes (any value, NUL included).  kind=bytes (V = 258,
 * B = 256, E = 257) and kind=ids have an empty payload (P = 0).  A reader
 * checks V against 1..2^22, B and E against -1..V-1, P against its bounds
 * before reading, each length, and that the lengths add up to S exactly.
 */
#ifndef LLM_TOK_H
#define LLM_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "stream.h"

/* The longest piece, in bytes: what llm_tok_decode can write. */
#define LLM_TOK_MAX_PIECE 256
/* The largest vocabulary a tokenizer record may declare. */
#define LLM_TOK_MAX_VOCAB (1 << 22)

/* Stable values. */
typedef enum llm_tok_kind { LLM_TOK_BYTES = 0, LLM_TOK_BPE = 1, LLM_TOK_IDS = 2 } llm_tok_kind;

/* A tokenizer.  The BPE arrays are owned by it (llm_tok_free); a copy of the
 * struct shares them, so exactly one copy is freed. */
typedef struct llm_tok {
    llm_tok_kind kind;
    int vocab;          /* V: ids are 0..V-1 */
    int bos, eos;       /* -1 when there is none */
    /* LLM_TOK_BPE only (NULL otherwise): */
    float *scores;      /* [V] merge priority, higher first */
    uint32_t *offset;   /* [V+1] piece i is text[offset[i] .. offset[i+1]) */
    char *text;         /* the pieces back to back */
    int32_t *sorted;    /* [V] ids ordered by their pieces' bytes, for lookups */
    int max_len;        /* the longest piece */
} llm_tok;

/* The byte-level tokenizer: vocab 258, BOS 256, EOS 257. */
void llm_tok_bytes(llm_tok *t);

/* A tokenizer without text for vocab ids (1..LLM_TOK_MAX_VOCAB), with the
 * given BOS and EOS (-1..vocab-1).  Returns 0 or LLM_ERR_ARG. */
int llm_tok_ids(llm_tok *t, int vocab, int bos, int eos, llm_error *err);

/* A BPE tokenizer of vocab pieces: piece i is lens[i] bytes at pieces[i]
 * (lens NULL: NUL-terminated strings), with merge priority scores[i]; the
 * pieces and scores are copied.  Lengths must be at most LLM_TOK_MAX_PIECE
 * and bos, eos in -1..vocab-1.  Returns 0, LLM_ERR_ARG or LLM_ERR_NOMEM;
 * on error t is left empty (freeing it is safe). */
int llm_tok_bpe(llm_tok *t, int vocab, const char *const *pieces, const uint32_t *lens,
                const float *scores, int bos, int eos, llm_error *err);

/* Frees what t owns and zeroes it; a second call, or a call on a byte or ids
 * tokenizer, is harmless.  t may be NULL. */
void llm_tok_free(llm_tok *t);

/* 0 when t encodes and decodes text; for LLM_TOK_IDS, LLM_ERR_ARG with the
 * message "this model has no tokenizer; give token ids with --ids". */
int llm_tok_has_text(const llm_tok *t, llm_error *err);

/* The most ids llm_tok_encode_text can make of len bytes: len + 1 (BPE's
 * dummy-prefix space). */
size_t llm_tok_max_ids(size_t len);

/* Encodes len bytes of text into ids (room for llm_tok_max_ids(len)).
 * Returns the number of ids, or a negative LLM_ERR_*: LLM_ERR_ARG for a
 * tokenizer without text or a byte BPE cannot encode, LLM_ERR_NOMEM (BPE
 * uses 20 bytes of scratch per byte of text); err (may be NULL) says why. */
int64_t llm_tok_encode_text(const llm_tok *t, const char *text, size_t len, int32_t *ids,
                            llm_error *err);

/* Writes the text of token id, following token prev (-1: none), into piece
 * (at most LLM_TOK_MAX_PIECE bytes, not terminated); returns its length: 0
 * for BOS, EOS and ids out of range; LLM_ERR_ARG (< 0) for a tokenizer
 * without text.  Only BPE looks at prev (a piece after BOS loses a leading
 * space). */
int llm_tok_decode_next(const llm_tok *t, int32_t prev, int32_t id, char *piece);
/* llm_tok_decode_next with prev = -1. */
int llm_tok_decode(const llm_tok *t, int32_t id, char *piece);

/* The stored piece of id (BPE: its bytes as in the vocabulary, "<0x41>" for a
 * byte token; bytes: the byte; ids: none) in *bytes; returns its length, or
 * -1 when id has none.  *bytes points into t. */
int llm_tok_piece(const llm_tok *t, int32_t id, const char **bytes);

/* Writes t as the metadata record "tokenizer" (layout above). */
int llm_tok_write(const llm_tok *t, llm_writer *w, llm_error *err);

/* Reads the tokenizer record rec, the current record of r (its payload not
 * yet read), into t, replacing (and freeing) what t held only on success.
 * Returns 0 or LLM_ERR_FORMAT / LLM_ERR_NOMEM / a reader error. */
int llm_tok_read(llm_tok *t, llm_reader *r, const llm_record *rec, llm_error *err);

#endif
