/* tok — tokenizers: text to token ids and back.
 *
 * Five kinds, one API.  The default is byte-level (LLM_TOK_BYTES): every byte
 * of the text is one token (0..255), plus BOS (256) and EOS (257), so any
 * text encodes and a model needs nothing but its checkpoint to read and write
 * text.  LLM_TOK_BPE is the byte-pair tokenizer of llama2.c (tokenizer.bin:
 * pieces with scores, byte fallback "<0xNN>"), encoding and decoding exactly
 * as llama2.c's run.c does.  LLM_TOK_SPM is SentencePiece's BPE (Llama 1 and
 * 2, Mistral: GGUF's tokenizer.ggml.model = "llama") and LLM_TOK_GPT2 the
 * byte-level BPE of GPT-2 and Llama 3 (GGUF's "gpt2"); both are made from
 * plain arrays (llm_tok_spec) by whichever importer read them.  LLM_TOK_IDS
 * knows only how many ids there are: a model imported without its tokenizer
 * takes and gives token ids, and encoding or decoding text is an error.
 *
 *     llm_tok t;
 *     llm_tok_bytes(&t);
 *     int64_t n = llm_tok_encode_text(&t, "hi", 2, ids, &err);   // ids = {104, 105}
 *     char piece[LLM_TOK_MAX_PIECE];
 *     int len = llm_tok_decode(&t, ids[0], piece);    // "h", 1
 *     llm_tok_free(&t);                               // needed for BPE, SPM, GPT2
 *
 * Text is bytes: "a character" below is a well-formed UTF-8 sequence (RFC
 * 3629: no overlong forms, no surrogates, nothing past U+10FFFF), and any
 * byte that does not start one is a character of its own, "invalid".
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
 *   When the vocabulary holds a piece twice, lookups find the lower id.
 *   run.c with bos = 1 merges the BOS piece with the text too; encoding text
 *   and then putting BOS in front differs from it only for a vocabulary
 *   holding a piece that starts with BOS's own piece.
 * BPE decoding (run.c's decode): BOS and EOS decode to nothing; a piece that
 * follows BOS loses a leading space; a piece that is exactly "<0xNN>" (two
 * hex digits) decodes to that one raw byte; any other piece to its bytes.
 *
 * Token types (SPM, GPT2) are GGUF's tokenizer.ggml.token_type values
 * (llm_tok_type; 0, "undefined", counts as normal).
 *
 * SPM encoding, as sentencepiece's BPE model encodes with the identity
 * normalizer and remove_extra_whitespaces off (how Llama's tokenizer.model
 * is made, and what llama.cpp implements):
 *   1. A non-empty text gets a space in front when space_prefix is set; then
 *      every space (0x20) becomes "▁" (U+2581).
 *   2. Left to right: the longest user-defined piece found at the place
 *      becomes its id, untouched by merges; otherwise one character becomes a
 *      symbol.
 *   3. Between user-defined pieces, adjacent symbols whose concatenation is a
 *      normal or user-defined piece merge, the highest score first (the
 *      leftmost on ties), until none does.
 *   4. Each symbol becomes the id of its text (any type; the lowest id when
 *      held twice).  One that is no piece, or is the unknown piece, becomes
 *      the byte pieces ("<0xNN>", type byte) of its bytes when the vocabulary
 *      has byte pieces, else the unknown id (a run of such symbols: one id);
 *      with neither, the text cannot be encoded (LLM_ERR_ARG).
 *   Departures, each where sentencepiece has no answer or llama.cpp differs:
 *   an invalid byte is a symbol of its own and keeps its value (sentencepiece
 *   puts U+FFFD in its place, llama.cpp takes the lead byte's length); unused
 *   pieces never merge (sentencepiece merges through them and splits them
 *   again); control pieces in the text are text (llama.cpp can parse them;
 *   sentencepiece does not); a user-defined piece is not followed by a
 *   dummy-prefix space (llama.cpp puts one after it; sentencepiece does not).
 * SPM decoding: control pieces and BOS, EOS decode to nothing, the unknown
 * piece to " ⁇ " (sentencepiece's), byte pieces to their byte, other pieces
 * to their text with "▁" turned back into spaces, and after BOS a leading
 * space is dropped when space_prefix is set.
 *
 * GPT2 encoding (GPT-2's encoder, Hugging Face's tokenizers and llama.cpp):
 * pieces are written in GPT-2's byte-to-unicode mapping (byte b is the
 * character b for the printable ranges 0x21..0x7E, 0xA1..0xAC, 0xAE..0xFF and
 * 256 + k for the k-th of the other bytes in order; a space is "Ġ"), except
 * control and user-defined pieces, which are literal text; merges are
 * "LEFT RIGHT", the first merge the best.
 *   1. Control and user-defined pieces are found in the text first, the
 *      leftmost and then the longest; between them,
 *   2. the pre-tokenizer cuts the text into chunks with the regex pre names
 *      (LLM_TOK_PRE_GPT2: GPT-2's; LLM_TOK_PRE_LLAMA3: Llama 3's, as
 *      llama.cpp writes it), matched as Unicode (PCRE2 with UTF and UCP); an
 *      invalid byte is matched as U+FFFD would be and stays itself.
 *   3. Each chunk, as the pieces of its bytes, is merged by rank, the best
 *      first (the leftmost on ties); with ignore_merges, a chunk that is a
 *      piece whole becomes that piece.  A byte whose piece is missing becomes
 *      the unknown id, or the text cannot be encoded.
 * GPT2 decoding: normal pieces are mapped back to bytes, user-defined pieces
 * are their text, control and unknown pieces (BOS, EOS) are nothing.
 *
 * In checkpoints the tokenizer is one metadata record named "tokenizer"
 * (llm_tok_write, llm_tok_read), dtype u8, shape [P] (P payload bytes), with
 * the attributes
 *     kind=bytes|bpe|ids|spm|gpt2  vocab=V  bos=B  eos=E   (decimal; -1: none)
 * and, for kind=bpe only, a payload of P = 8V + S bytes, little-endian:
 *     f32 score[V]       merge priority of each piece
 *     u32 len[V]         piece lengths in bytes, each 0..LLM_TOK_MAX_PIECE
 *     u8  bytes[S]       the pieces back to back, S = the sum of len
 * Pieces are raw bytes (any value, NUL included).  kind=bytes (V = 258,
 * B = 256, E = 257) and kind=ids have an empty payload (P = 0).  kind=spm and
 * kind=gpt2 add the attributes
 *     unk=U  add_bos=0|1  add_eos=0|1  space_prefix=0|1  merges=M
 *     pre=gpt2|llama3  ignore_merges=0|1                 (gpt2 only)
 * (M = 0 for spm) and a payload of P = 9V + 4M + S + SM bytes:
 *     f32 score[V]  u8 type[V]  u32 len[V]  u32 merge_len[M]
 *     u8  bytes[S]  u8 merge_bytes[SM]
 * merges being "LEFT RIGHT" strings of 3..2*LLM_TOK_MAX_PIECE+1 bytes.  A
 * reader checks V against 1..2^22, M against 0..2^22, B, E and U against
 * -1..V-1, P against its bounds, each length, that the lengths add up to the
 * payload exactly, and never holds more memory than the payload's bytes that
 * have arrived.  Old files (kinds bytes, bpe, ids) read as before.
 */
#ifndef LLM_TOK_H
#define LLM_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "stream.h"

/* The longest piece, in bytes: what llm_tok_decode can write. */
#define LLM_TOK_MAX_PIECE 256
/* The largest vocabulary (and merge list) a tokenizer may have. */
#define LLM_TOK_MAX_VOCAB (1 << 22)

/* Stable values. */
typedef enum llm_tok_kind {
    LLM_TOK_BYTES = 0,
    LLM_TOK_BPE = 1,
    LLM_TOK_IDS = 2,
    LLM_TOK_SPM = 3,
    LLM_TOK_GPT2 = 4,
} llm_tok_kind;

/* A piece's type: GGUF's (and llama.cpp's) values. */
typedef enum llm_tok_type {
    LLM_TOKT_NORMAL = 1,
    LLM_TOKT_UNKNOWN = 2,
    LLM_TOKT_CONTROL = 3,
    LLM_TOKT_USER = 4, /* user-defined */
    LLM_TOKT_UNUSED = 5,
    LLM_TOKT_BYTE = 6,
} llm_tok_type;

/* GPT2's pre-tokenizer regexes (stable values). */
typedef enum llm_tok_pre { LLM_TOK_PRE_GPT2 = 0, LLM_TOK_PRE_LLAMA3 = 1 } llm_tok_pre;

/* What an importer hands over (GGUF's tokenizer.ggml.* in brackets).  The
 * arrays are read, not kept. */
typedef struct llm_tok_spec {
    int vocab;                   /* V, 1..LLM_TOK_MAX_VOCAB */
    const char *const *pieces;   /* [V] (tokens) */
    const uint32_t *lens;        /* [V] byte lengths; NULL: pieces are NUL-terminated */
    const float *scores;         /* [V] (scores); NULL: all 0 */
    const int32_t *types;        /* [V] llm_tok_type (token_type); NULL: all normal */
    int bos, eos, unk;           /* ids or -1 (bos_token_id, eos_token_id, unknown_token_id) */
    int add_bos, add_eos;        /* 0/1 (add_bos_token, add_eos_token) */
    int space_prefix;            /* SPM: 0/1 (add_space_prefix) */
    int n_merges;                /* GPT2: M, 0..LLM_TOK_MAX_VOCAB (merges) */
    const char *const *merges;   /* [M] "LEFT RIGHT" */
    const uint32_t *merge_lens;  /* [M]; NULL: NUL-terminated */
    llm_tok_pre pre;             /* GPT2 (pre: see llm_tok_pre_from_name) */
    int ignore_merges;           /* GPT2: 0/1 (llama.cpp sets it for "llama-bpe") */
} llm_tok_spec;

typedef struct llm_tok_aux llm_tok_aux;

/* A tokenizer.  The arrays are owned by it (llm_tok_free); a copy of the
 * struct shares them, so exactly one copy is freed. */
typedef struct llm_tok {
    llm_tok_kind kind;
    int vocab;          /* V: ids are 0..V-1 */
    int bos, eos;       /* -1 when there is none */
    int add_bos;        /* 1: text is encoded after BOS (bytes, BPE, IDS: when there is one) */
    /* LLM_TOK_BPE, SPM, GPT2 (NULL otherwise): */
    float *scores;      /* [V] merge priority, higher first */
    uint32_t *offset;   /* [V+1] piece i is text[offset[i] .. offset[i+1]) */
    char *text;         /* the pieces back to back */
    int32_t *sorted;    /* [V] ids ordered by their pieces' bytes, then id, for lookups */
    int max_len;        /* the longest piece */
    /* LLM_TOK_SPM and GPT2 (NULL / 0 otherwise): */
    uint8_t *types;     /* [V] llm_tok_type */
    int unk;            /* -1 when there is none */
    int add_eos, space_prefix, ignore_merges;
    llm_tok_pre pre;
    int n_merges;
    uint32_t *merge_offset; /* [M+1] merge i is merge_text[merge_offset[i] .. [i+1]) */
    char *merge_text;
    llm_tok_aux *aux;   /* SPM, GPT2: tables derived from the above (tok_internal.h) */
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

/* An SPM (SentencePiece BPE) tokenizer of s: pieces, scores, types, bos,
 * eos, unk, add_bos, add_eos, space_prefix (merges must be absent).  Returns
 * 0, LLM_ERR_ARG (a piece too long, an id out of range, a type outside 0..6;
 * the message names it) or LLM_ERR_NOMEM; on error t is left empty. */
int llm_tok_spm(llm_tok *t, const llm_tok_spec *s, llm_error *err);

/* A GPT2 (byte-level BPE) tokenizer of s: pieces, types (scores kept only to
 * be written back), merges, pre, ignore_merges, bos, eos, unk, add_bos,
 * add_eos.  A merge that is not "LEFT RIGHT" with LEFT, RIGHT and LEFTRIGHT
 * pieces (not control or user-defined) is LLM_ERR_ARG naming it; of a merge
 * listed twice the first counts.  Returns 0,
 * LLM_ERR_ARG or LLM_ERR_NOMEM; on error t is left empty. */
int llm_tok_gpt2(llm_tok *t, const llm_tok_spec *s, llm_error *err);

/* The pre-tokenizer llama.cpp's tokenizer.ggml.pre names: "default" and
 * "gpt2" are GPT-2's regex, "llama-bpe" Llama 3's (so are our record's own
 * names "gpt2" and "llama3").  Returns 0, or LLM_ERR_ARG naming an unknown
 * one.  (llama.cpp's "default" is a looser variant of GPT-2's regex kept for
 * files converted without a pre-tokenizer; GPT-2's own is the one meant.) */
int llm_tok_pre_from_name(const char *name, llm_tok_pre *pre, llm_error *err);

/* Frees what t owns and zeroes it; a second call, or a call on a byte or ids
 * tokenizer, is harmless.  t may be NULL. */
void llm_tok_free(llm_tok *t);

/* 0 when t encodes and decodes text; for LLM_TOK_IDS, LLM_ERR_ARG with the
 * message "this model has no tokenizer; give token ids with --ids". */
int llm_tok_has_text(const llm_tok *t, llm_error *err);

/* The most ids llm_tok_encode_text can make of len bytes with t: len
 * (bytes, GPT2), len + 1 (BPE's dummy-prefix space), 3 len + 3 (SPM: each
 * space is "▁", three byte pieces when "▁" is no piece). */
size_t llm_tok_max_ids(const llm_tok *t, size_t len);

/* Encodes len bytes of text into ids (room for llm_tok_max_ids(len)).
 * Returns the number of ids, or a negative LLM_ERR_*: LLM_ERR_ARG for a
 * tokenizer without text or a byte BPE cannot encode, LLM_ERR_NOMEM (scratch of
 * about 40 bytes per byte of text); err (may be NULL) says why. */
int64_t llm_tok_encode_text(const llm_tok *t, const char *text, size_t len, int32_t *ids,
                            llm_error *err);

/* Writes the text of token id, following token prev (-1: none), into piece
 * (at most LLM_TOK_MAX_PIECE bytes, not terminated); returns its length: 0
 * for BOS, EOS and ids out of range; LLM_ERR_ARG (< 0) for a tokenizer
 * without text.  Only BPE and SPM look at prev (a piece after BOS loses a
 * leading space). */
int llm_tok_decode_next(const llm_tok *t, int32_t prev, int32_t id, char *piece);
/* llm_tok_decode_next with prev = -1. */
int llm_tok_decode(const llm_tok *t, int32_t id, char *piece);

/* The stored piece of id (BPE, SPM, GPT2: its bytes as in the vocabulary,
 * "<0x41>" for a byte token; bytes: the byte; ids: none) in *bytes; returns its length, or
 * -1 when id has none.  *bytes points into t. */
int llm_tok_piece(const llm_tok *t, int32_t id, const char **bytes);

/* Writes t as the metadata record "tokenizer" (layout above). */
int llm_tok_write(const llm_tok *t, llm_writer *w, llm_error *err);

/* Reads the tokenizer record rec, the current record of r (its payload not
 * yet read), into t, replacing (and freeing) what t held only on success.
 * Returns 0 or LLM_ERR_FORMAT / LLM_ERR_NOMEM / a reader error. */
int llm_tok_read(llm_tok *t, llm_reader *r, const llm_record *rec, llm_error *err);

#endif
