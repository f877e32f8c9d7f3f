/* Unit tests for lib/gguf_tok: vocabulary-only GGUF files (no tensors)
 * carrying a SentencePiece model trained by sentencepiece itself and a GPT-2
 * BPE vocabulary with merges (tests/tok_ref.py) are read into tokenizers that
 * encode the awkward strings to the references' ids; llama.cpp's defaults for
 * absent flags; arrays of the wrong length, ids outside the vocabulary and a
 * vocabulary without tokens refused naming the key; an unknown pre-tokenizer
 * gives ids only, saying why; export and import again give the same
 * tokenizer. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "gguf.h"
#include "gguf_tok.h"
#include "tok.h"
#include "tok_ref.h"

/* What write_vocab changes from the reference's spec. */
typedef struct damage {
    int drop_score;     /* scores one short */
    int bos;            /* >= 0: this bos_token_id */
    const char *pre;    /* gpt2: tokenizer.ggml.pre (NULL: absent) */
} damage;

/* A vocabulary-only GGUF file of s (kind "llama" or "gpt2"). */
static const char *write_vocab(const char *name, const char *kind, const llm_tok_spec *s, const damage *d)
{
    llm_gguf_out *o;
    llm_error err = {0};
    const char *path = check_path(name);
    CHECK_OK(llm_gguf_out_new(&o, &err), err);
    llm_gguf_out_str(o, "tokenizer.ggml.model", kind, &err);
    llm_gguf_out_str_array(o, "tokenizer.ggml.tokens", s->pieces, s->lens, (uint64_t)s->vocab, &err);
    if (s->scores) llm_gguf_out_f32_array(o, "tokenizer.ggml.scores", s->scores, (uint64_t)(s->vocab - d->drop_score), &err);
    if (s->types) llm_gguf_out_i32_array(o, "tokenizer.ggml.token_type", s->types, (uint64_t)s->vocab, &err);
    if (s->n_merges) llm_gguf_out_str_array(o, "tokenizer.ggml.merges", s->merges, s->merge_lens, (uint64_t)s->n_merges, &err);
    if (d->pre) llm_gguf_out_str(o, "tokenizer.ggml.pre", d->pre, &err);
    int bos = d->bos >= 0 ? d->bos : s->bos;
    if (bos >= 0) llm_gguf_out_u32(o, "tokenizer.ggml.bos_token_id", (uint32_t)bos, &err);
    if (s->eos >= 0) llm_gguf_out_u32(o, "tokenizer.ggml.eos_token_id", (uint32_t)s->eos, &err);
    if (s->unk >= 0) llm_gguf_out_u32(o, "tokenizer.ggml.unknown_token_id", (uint32_t)s->unk, &err);
    FILE *f = fopen(path, "w+b");
    CHECK_OK(llm_gguf_out_begin(o, fileno(f), path, &err), err);
    CHECK_OK(llm_gguf_out_finish(o, &err), err);
    llm_gguf_out_free(o);
    fclose(f);
    return path;
}

/* Imports path's tokenizer for vocab ids into t; the import's return code. */
static int import(const char *path, int vocab, llm_tok *t, char *why, llm_error *err)
{
    llm_gguf g;
    int rc = llm_gguf_open(&g, path, err);
    if (rc == 0) rc = llm_gguf_tok_import(&g, vocab, t, why, 200, err);
    llm_gguf_close(&g);
    return rc;
}

/* Exports t as a vocabulary-only file and imports it again into back. */
static void export_import(const llm_tok *t, llm_tok *back)
{
    llm_gguf_out *o;
    llm_error err = {0};
    char why[200];
    const char *path = check_path("again.gguf");
    CHECK_OK(llm_gguf_out_new(&o, &err), err);
    CHECK_OK(llm_gguf_tok_export(o, t, t->vocab, "t", &err), err);
    FILE *f = fopen(path, "w+b");
    CHECK_OK(llm_gguf_out_begin(o, fileno(f), path, &err), err);
    CHECK_OK(llm_gguf_out_finish(o, &err), err);
    llm_gguf_out_free(o);
    fclose(f);
    CHECK_OK(import(path, t->vocab, back, why, &err), err);
    CHECK(!*why);
}

/* The same tokenizer, field for field and byte for byte. */
static int same_tok(const llm_tok *a, const llm_tok *b)
{
    int same = a->kind == b->kind && a->vocab == b->vocab && a->bos == b->bos && a->eos == b->eos &&
               a->unk == b->unk && a->add_bos == b->add_bos && a->add_eos == b->add_eos &&
               a->space_prefix == b->space_prefix && a->pre == b->pre && a->ignore_merges == b->ignore_merges &&
               a->n_merges == b->n_merges && !memcmp(a->offset, b->offset, ((size_t)a->vocab + 1) * 4) &&
               !memcmp(a->text, b->text, a->offset[a->vocab]) && !memcmp(a->scores, b->scores, (size_t)a->vocab * 4) &&
               !memcmp(a->types, b->types, (size_t)a->vocab);
    for (int i = 0; same && i <= a->n_merges; i++) same = a->merge_offset[i] == b->merge_offset[i];
    return same && (!a->n_merges || !memcmp(a->merge_text, b->merge_text, a->merge_offset[a->n_merges]));
}

static void test_spm_vocabulary(void)
{
    tok_ref ref;
    if (tok_ref_run(&ref, "spm", "sentencepiece") <= 0) return;
    const char *path = write_vocab("spm.gguf", "llama", &ref.spec, &(damage){.bos = -1});
    llm_tok t = {0}, back = {0};
    llm_error err = {0};
    char why[200];
    CHECK_OK(import(path, 0, &t, why, &err), err); /* 0: the vocabulary's own size */
    if (err.code == 0) {
        CHECK(!*why && t.kind == LLM_TOK_SPM && t.vocab == ref.spec.vocab && t.unk == ref.spec.unk);
        CHECK_MSG(t.add_bos == 1 && t.add_eos == 0 && t.space_prefix == 1, "llama.cpp's defaults: add_bos %d "
                  "add_eos %d space_prefix %d", t.add_bos, t.add_eos, t.space_prefix);
        int bad = tok_ref_check(&t, &ref, 1, 1);
        CHECK_MSG(bad == 0, "%d of %d strings differ from sentencepiece", bad, ref.n_cases);
        export_import(&t, &back);
        CHECK_MSG(same_tok(&t, &back), "export -> import changed the tokenizer");
    }
    llm_tok_free(&t), llm_tok_free(&back);

    CHECK(import(path, ref.spec.vocab + 1, &t, why, &err) == LLM_ERR_FORMAT &&
          strstr(err.msg, "spm.gguf: tokenizer.ggml.tokens has 700 strings, the vocabulary 701"));
    path = write_vocab("short.gguf", "llama", &ref.spec, &(damage){.drop_score = 1, .bos = -1});
    CHECK(import(path, 0, &t, why, &err) == LLM_ERR_FORMAT &&
          strstr(err.msg, "short.gguf: tokenizer.ggml.scores has 699 numbers, the vocabulary 700"));
    path = write_vocab("bos.gguf", "llama", &ref.spec, &(damage){.bos = 700});
    CHECK(import(path, 0, &t, why, &err) == LLM_ERR_FORMAT &&
          strstr(err.msg, "bos.gguf: tokenizer.ggml.bos_token_id is 700, outside the vocabulary's 700 ids"));
    tok_ref_free(&ref);
}

static void test_gpt2_vocabulary(void)
{
    tok_ref ref;
    if (tok_ref_run(&ref, "gpt2 llama3", "regex") <= 0) return;
    ref.spec.bos = ref.spec.eos = -1; /* absent: none, and no BOS added */
    const char *path = write_vocab("gpt2.gguf", "gpt2", &ref.spec, &(damage){.bos = -1, .pre = "llama-bpe"});
    llm_tok t = {0}, back = {0};
    llm_error err = {0};
    char why[200];
    CHECK_OK(import(path, ref.spec.vocab, &t, why, &err), err);
    if (err.code == 0) {
        CHECK(!*why && t.kind == LLM_TOK_GPT2 && t.pre == LLM_TOK_PRE_LLAMA3 && t.ignore_merges == 1 &&
              t.add_bos == 0 && t.bos == -1 && t.n_merges == ref.spec.n_merges);
        int bad = tok_ref_check(&t, &ref, 0, 0);
        CHECK_MSG(bad == 0, "%d of %d strings differ from the GPT-2 reference", bad, ref.n_cases);
        export_import(&t, &back);
        CHECK_MSG(same_tok(&t, &back), "export -> import changed the tokenizer");
    }
    llm_tok_free(&t), llm_tok_free(&back);

    path = write_vocab("qwen.gguf", "gpt2", &ref.spec, &(damage){.bos = -1, .pre = "qwen2"});
    CHECK_OK(import(path, 0, &t, why, &err), err);
    CHECK(t.kind == LLM_TOK_IDS && t.vocab == ref.spec.vocab && strstr(why, "tokenizer.ggml.pre qwen2 is a "
                                                                           "pre-tokenizer llmpipe does not have"));
    llm_tok_free(&t);
    path = write_vocab("nomerges.gguf", "gpt2", &(llm_tok_spec){.vocab = 1, .pieces = (const char *[]){"a"},
                                                                .bos = -1, .eos = -1, .unk = -1},
                       &(damage){.bos = -1});
    CHECK(import(path, 0, &t, why, &err) == LLM_ERR_FORMAT &&
          strstr(err.msg, "nomerges.gguf: tokenizer.ggml.merges is missing"));
    tok_ref_free(&ref);
}

static void test_no_vocabulary(void)
{
    llm_gguf_out *o;
    llm_error err = {0};
    llm_tok t = {0};
    char why[200];
    const char *path = check_path("none.gguf");
    CHECK_OK(llm_gguf_out_new(&o, &err), err);
    FILE *f = fopen(path, "w+b");
    CHECK_OK(llm_gguf_out_begin(o, fileno(f), path, &err), err);
    CHECK_OK(llm_gguf_out_finish(o, &err), err);
    llm_gguf_out_free(o);
    fclose(f);
    CHECK(import(path, 0, &t, why, &err) == LLM_ERR_FORMAT && strstr(err.msg, "none.gguf: no vocabulary: no tokenizer"));
    CHECK_OK(import(path, 9, &t, why, &err), err); /* a model: ids only */
    CHECK(t.kind == LLM_TOK_IDS && t.vocab == 9 && !strcmp(why, "no tokenizer"));
    llm_tok_free(&t);
}

int main(void)
{
    RUN(test_spm_vocabulary);
    RUN(test_gpt2_vocabulary);
    RUN(test_no_vocabulary);
    return check_done();
}
