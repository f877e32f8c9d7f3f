/* gguf_model — Llama models from GGUF files into checkpoints and back (the
 * mapping is in gguf_model.h). */
#include "gguf_model.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"
#include "gguf_blocks.h"
#include "gguf_tok.h"
#include "linear.h"
#include "model.h"
#include "quant.h"
#include "tensor.h"
#include "tok.h"

/* Elements converted at a time: a whole number of blocks of every type. */
#define CHUNK_ELEMS (1 << 18)

static void reportf(llm_gguf_report report, void *ctx, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void reportf(llm_gguf_report report, void *ctx, const char *fmt, ...)
{
    if (!report) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    report(ctx, line);
}

/* The GGUF name of our tensor `ours` (model.h's names). */
static void gguf_name(const char *ours, char *buf, size_t size)
{
    static const char *const sites[][2] = {
        {"attn.norm", "attn_norm"}, {"attn.wq", "attn_q"}, {"attn.wk", "attn_k"},   {"attn.wv", "attn_v"},
        {"attn.wo", "attn_output"}, {"mlp.norm", "ffn_norm"}, {"mlp.w1", "ffn_gate"}, {"mlp.w2", "ffn_down"},
        {"mlp.w3", "ffn_up"}};
    int l, at = 0;
    if (!strcmp(ours, "tok_emb")) snprintf(buf, size, "token_embd.weight");
    else if (!strcmp(ours, "norm")) snprintf(buf, size, "output_norm.weight");
    else if (!strcmp(ours, "cls")) snprintf(buf, size, "output.weight");
    else if (sscanf(ours, "layers.%d.%n", &l, &at) == 1 && at > 0)
        for (size_t i = 0; i < sizeof sites / sizeof sites[0]; i++)
            if (!strcmp(ours + at, sites[i][0])) snprintf(buf, size, "blk.%d.%s.weight", l, sites[i][1]);
}

/* A tensor's GGUF dimensions: ours reversed. */
static int gguf_dims(const llm_shape *s, int64_t ne[LLM_GGUF_MAX_DIMS])
{
    for (int d = 0; d < s->ndim; d++) ne[d] = s->dim[s->ndim - 1 - d];
    return s->ndim;
}

/* ---- import ---- */

/* The llama.* keys import understands; any other is refused. */
static const char *const known_keys[] = {
    "context_length", "embedding_length", "block_count", "feed_forward_length", "vocab_size",
    "attention.head_count", "attention.head_count_kv", "attention.layer_norm_rms_epsilon",
    "attention.key_length", "attention.value_length", "rope.freq_base", "rope.dimension_count",
    "rope.scaling.type", "rope.scaling.factor", "rope.scale_linear", "rope.scaling.original_context_length",
    "expert_count", "expert_used_count"};

/* llama.<key> as an int: *out (left as it is when absent and not required). */
static int want_int(const llm_gguf *g, const char *key, int required, int *out, llm_error *err)
{
    char full[96];
    snprintf(full, sizeof full, "llama.%s", key);
    uint64_t v;
    int got = llm_gguf_get_u64(g, full, &v, err);
    if (got < 0) return got;
    if (!got && required) return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s is missing", g->label, full);
    if (got && v > INT_MAX)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s is %llu, too large", g->label, full, (unsigned long long)v);
    if (got) *out = (int)v;
    return 0;
}

static int want_f64(const llm_gguf *g, const char *key, int required, double *out, llm_error *err)
{
    char full[96];
    snprintf(full, sizeof full, "llama.%s", key);
    int got = llm_gguf_get_f64(g, full, out, err);
    if (got < 0) return got;
    if (!got && required) return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s is missing", g->label, full);
    return 0;
}

/* Refuses every RoPE scaling: a checkpoint keeps none. */
static int check_rope_scaling(const llm_gguf *g, llm_error *err)
{
    const char *type = "none";
    double factor = 1, linear = 1;
    LLM_TRY(llm_gguf_get_str(g, "llama.rope.scaling.type", &type, err));
    LLM_TRY(want_f64(g, "rope.scaling.factor", 0, &factor, err));
    LLM_TRY(want_f64(g, "rope.scale_linear", 0, &linear, err));
    int unscaled = (factor == 1 || (factor == 0 && strcmp(type, "linear"))) && linear == 1;
    if ((strcmp(type, "none") && strcmp(type, "linear")) || !unscaled)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: llama.rope.scaling.type is %s (factor %g): a checkpoint "
                             "keeps no RoPE scaling (llm-gen --rope-scaling applies one when generating)",
                             g->label, type, linear != 1 ? linear : factor);
    return 0;
}

static int import_config(const llm_gguf *g, llm_config *c, llm_error *err)
{
    const char *arch = NULL;
    LLM_TRY(llm_gguf_get_str(g, "general.architecture", &arch, err));
    if (!arch) return llm_error_set(err, LLM_ERR_FORMAT, "%s: general.architecture is missing", g->label);
    if (strcmp(arch, "llama"))
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: architecture %s: only llama is imported", g->label, arch);
    for (int64_t i = 0; i < g->n_kv; i++) {
        const char *k = g->kv[i].key;
        if (strncmp(k, "llama.", 6)) continue;
        size_t j = 0;
        while (j < sizeof known_keys / sizeof known_keys[0] && strcmp(k + 6, known_keys[j])) j++;
        if (j == sizeof known_keys / sizeof known_keys[0])
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s is not supported (it would change the model's "
                                 "math)", g->label, k);
    }
    int D = 0, L = 0, F = 0, H = 0, K = -1, S = 0, E, experts = 0;
    LLM_TRY(want_int(g, "embedding_length", 1, &D, err));
    LLM_TRY(want_int(g, "block_count", 1, &L, err));
    LLM_TRY(want_int(g, "feed_forward_length", 1, &F, err));
    LLM_TRY(want_int(g, "attention.head_count", 1, &H, err));
    LLM_TRY(want_int(g, "attention.head_count_kv", 0, &K, err));
    LLM_TRY(want_int(g, "context_length", 1, &S, err));
    LLM_TRY(want_int(g, "expert_count", 0, &experts, err));
    if (experts) return llm_error_set(err, LLM_ERR_FORMAT, "%s: llama.expert_count is %d: a mixture of experts "
                                      "is not supported", g->label, experts);
    double eps, theta = 10000;
    LLM_TRY(want_f64(g, "attention.layer_norm_rms_epsilon", 1, &eps, err));
    LLM_TRY(want_f64(g, "rope.freq_base", 0, &theta, err));
    LLM_TRY(check_rope_scaling(g, err));
    if (K < 0) K = H;
    E = H > 0 && D % H == 0 ? D / H : 0;
    static const char *const head_keys[] = {"rope.dimension_count", "attention.key_length", "attention.value_length"};
    for (int i = 0; i < 3; i++) {
        int v = E;
        LLM_TRY(want_int(g, head_keys[i], 0, &v, err));
        if (v != E)
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: llama.%s is %d, not the head size %d (embedding_length %d "
                                 "/ head_count %d): not supported", g->label, head_keys[i], v, E, D, H);
    }
    const llm_gguf_tensor *emb = llm_gguf_tensor_named(g, "token_embd.weight");
    if (!emb) return llm_error_set(err, LLM_ERR_FORMAT, "%s: tensor token_embd.weight is missing", g->label);
    if (emb->n_dims != 2 || emb->ne[0] != D || emb->ne[1] > INT_MAX)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: token_embd.weight is not [vocab, %d] (ne %lld x %lld)",
                             g->label, D, (long long)emb->ne[0], (long long)emb->ne[1]);
    int V = (int)emb->ne[1], declared = V;
    LLM_TRY(want_int(g, "vocab_size", 0, &declared, err));
    if (declared != V)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: llama.vocab_size is %d, token_embd.weight has %d rows",
                             g->label, declared, V);
    *c = (llm_config){.vocab = V, .dim = D, .n_layers = L, .n_heads = H, .n_kv_heads = K, .hidden = F,
                      .seq_len = S, .tie = !llm_gguf_tensor_named(g, "output.weight"), .window = 0,
                      .norm_eps = (float)eps, .rope_theta = (float)theta};
    if (llm_config_check(c, err) < 0) {
        err->code = LLM_ERR_FORMAT;
        return llm_error_prefix(err, "%s: not a model llmpipe runs", g->label);
    }
    return 0;
}

/* Every tensor of the layout there with its shape and a type we decode, and
 * nothing else. */
static int check_tensors(const llm_gguf *g, const llm_param_tensor *pt, int n, llm_error *err)
{
    for (int64_t i = 0; i < g->n_tensors; i++) {
        int k = 0;
        char name[64] = "";
        for (; k < n; k++) {
            gguf_name(pt[k].name, name, sizeof name);
            if (!strcmp(name, g->tensors[i].name)) break;
        }
        if (k == n)
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: tensor %s is not part of the llama model llmpipe runs",
                                 g->label, g->tensors[i].name);
    }
    for (int k = 0; k < n; k++) {
        char name[64] = "";
        gguf_name(pt[k].name, name, sizeof name);
        const llm_gguf_tensor *t = llm_gguf_tensor_named(g, name);
        if (!t) return llm_error_set(err, LLM_ERR_FORMAT, "%s: tensor %s is missing", g->label, name);
        int64_t ne[LLM_GGUF_MAX_DIMS];
        int nd = gguf_dims(&pt[k].shape, ne), same = t->n_dims == nd;
        for (int d = 0; same && d < nd; d++) same = t->ne[d] == ne[d];
        if (!same)
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s has ne %lld x %lld (%d dimensions), the config needs "
                                 "%lld x %lld", g->label, name, (long long)t->ne[0], (long long)t->ne[1], t->n_dims,
                                 (long long)ne[0], nd > 1 ? (long long)ne[1] : 1LL);
        if (!llm_gguf_decodable(t->type))
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s: type %s is not supported (F32, F16, BF16, Q8_0, "
                                 "Q4_0, Q4_1, Q2_K to Q6_K are)", g->label, name, llm_gguf_type_name(t->type));
    }
    return 0;
}

typedef struct importer {
    const llm_gguf *g;
    llm_writer *w;
    llm_error *err;
    unsigned char *raw; /* CHUNK_ELEMS * 4 bytes */
    float *f;           /* CHUNK_ELEMS floats */
} importer;

/* A float tensor: decoded chunk by chunk, each float checked finite. */
static int import_floats(importer *im, const char *name, const llm_shape *shape, const llm_gguf_tensor *t)
{
    const llm_gguf *g = im->g;
    int block, bytes;
    llm_gguf_type_size(t->type, &block, &bytes);
    LLM_TRY(llm_ckpt_begin_floats(im->w, name, shape, im->err));
    for (int64_t done = 0; done < t->numel;) {
        int64_t n = t->numel - done < CHUNK_ELEMS ? t->numel - done : CHUNK_ELEMS;
        void *dst = t->type == LLM_GGML_F32 ? (void *)im->f : (void *)im->raw;
        LLM_TRY(llm_gguf_read(g, t, (uint64_t)(done / block) * (uint64_t)bytes, dst,
                              (size_t)(n / block) * (size_t)bytes, im->err));
        if (t->type != LLM_GGML_F32) llm_gguf_decode(t->type, im->raw, n, im->f);
        int64_t bad = llm_f32_find_nonfinite(im->f, n);
        if (bad >= 0)
            return llm_error_set(im->err, LLM_ERR_FORMAT, "%s: %s: element %lld is %g, not a finite number", g->label,
                                 t->name, (long long)(done + bad), (double)im->f[bad]);
        LLM_TRY(llm_writer_write(im->w, im->f, (size_t)n * sizeof(float), im->err));
        done += n;
    }
    return llm_writer_end_record(im->w, im->err);
}

/* A Q4_0 linear as int4 symmetric, groups of 32: its codes, then its scales
 * (an eighth of its f32 size, the one thing held whole). */
static int import_q4_0(importer *im, const char *name, const llm_gguf_tensor *t)
{
    const llm_gguf *g = im->g;
    int rows = (int)t->ne[1], cols = (int)t->ne[0];
    int64_t blocks = t->numel / 32;
    float *scales = malloc((size_t)(blocks ? blocks : 1) * sizeof *scales); /* the file holds 18 bytes each */
    if (!scales) return llm_error_set(im->err, LLM_ERR_NOMEM, "%s: %s: out of memory", g->label, t->name);
    llm_qformat f = {.scheme = LLM_Q_INT4, .group = 32, .sym = 1};
    int rc = llm_ckpt_begin_qcodes(im->w, name, &f, rows, cols, 0, im->err);
    for (int64_t done = 0; rc == 0 && done < blocks;) {
        int64_t n = blocks - done < CHUNK_ELEMS / 32 ? blocks - done : CHUNK_ELEMS / 32;
        rc = llm_gguf_read(g, t, (uint64_t)done * 18, im->raw, (size_t)n * 18, im->err);
        unsigned char *codes = (unsigned char *)im->f;
        if (rc == 0) llm_gguf_q4_0_to_int4(im->raw, n, codes, scales + done);
        if (rc == 0) rc = llm_writer_write(im->w, codes, (size_t)n * 16, im->err);
        done += n;
    }
    for (int64_t i = 0; rc == 0 && i < blocks; i++)
        if (!(fabsf(scales[i]) < 1e30f))
            rc = llm_error_set(im->err, LLM_ERR_FORMAT, "%s: %s: block %lld's scale is %g, not a finite number",
                               g->label, t->name, (long long)i, (double)scales[i]);
    if (rc == 0) rc = llm_writer_end_record(im->w, im->err);
    char sname[96];
    snprintf(sname, sizeof sname, "%s.scale", name);
    llm_shape s = llm_shape_make(2, (int64_t[]){rows, cols / 32});
    if (rc == 0) rc = llm_ckpt_begin_floats(im->w, sname, &s, im->err);
    if (rc == 0) rc = llm_writer_write(im->w, scales, (size_t)blocks * sizeof *scales, im->err);
    if (rc == 0) rc = llm_writer_end_record(im->w, im->err);
    free(scales);
    return rc;
}

/* Q4_0 kept as int4 for a linear (a matrix product reads it), decoded
 * elsewhere (the embedding is a lookup). */
static int kept_as_int4(const llm_param_tensor *pt, const llm_gguf_tensor *t, int n_layers)
{
    return t->type == LLM_GGML_Q4_0 && llm_linear_find(pt->name, n_layers) >= 0;
}

static int import_all(importer *im, const llm_config *c, const llm_param_tensor *pt, int n, int64_t n_params,
                      llm_gguf_report report, void *ctx)
{
    const llm_gguf *g = im->g;
    llm_qscheme quant = LLM_Q_NONE;
    for (int k = 0; k < n; k++) {
        char name[64] = "";
        gguf_name(pt[k].name, name, sizeof name);
        if (kept_as_int4(&pt[k], llm_gguf_tensor_named(g, name), c->n_layers)) quant = LLM_Q_INT4;
    }
    llm_tok tok;
    char why[160];
    LLM_TRY(llm_gguf_tok_import(g, c->vocab, &tok, why, sizeof why, im->err));
    if (*why) reportf(report, ctx, "%s: %s: the model takes token ids only", g->label, why);
    int rc = llm_ckpt_write_config(im->w, c, n_params, quant, im->err);
    if (rc == 0) rc = llm_tok_write(&tok, im->w, im->err);
    llm_tok_free(&tok);
    for (int k = 0; rc == 0 && k < n; k++) {
        char name[64] = "";
        gguf_name(pt[k].name, name, sizeof name);
        const llm_gguf_tensor *t = llm_gguf_tensor_named(g, name);
        if (kept_as_int4(&pt[k], t, c->n_layers)) {
            rc = import_q4_0(im, pt[k].name, t);
            continue;
        }
        rc = import_floats(im, pt[k].name, &pt[k].shape, t);
        if (rc == 0 && t->type != LLM_GGML_F32)
            reportf(report, ctx, "%s: %s %s to f32", name, llm_gguf_type_name(t->type),
                    t->type == LLM_GGML_F16 || t->type == LLM_GGML_BF16 ? "widened (exactly)" : "dequantized");
    }
    return rc;
}

int llm_gguf_import(const llm_gguf *g, llm_writer *w, llm_gguf_report report, void *ctx, llm_error *err)
{
    llm_config c;
    LLM_TRY(import_config(g, &c, err));
    int n;
    llm_model_layout(&c, NULL, &n);
    llm_param_tensor *pt = calloc((size_t)n, sizeof *pt);
    importer im = {g, w, err, malloc((size_t)CHUNK_ELEMS * 4), malloc((size_t)CHUNK_ELEMS * sizeof(float))};
    int rc = pt && im.raw && im.f ? 0 : llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", g->label);
    int64_t n_params = pt ? llm_model_layout(&c, pt, &n) : 0;
    if (rc == 0) rc = check_tensors(g, pt, n, err);
    if (rc == 0) rc = import_all(&im, &c, pt, n, n_params, report, ctx);
    free(pt);
    free(im.raw);
    free(im.f);
    return rc;
}

/* ---- export ---- */

typedef struct exporter {
    llm_reader *r;
    const char *label, *out_label;
    const llm_gguf_export_opts *o;
    llm_gguf_out *out;
    int fd;
    llm_error *err;
    llm_config c;
    llm_param_tensor *pt;
    int n_pt, next;      /* the layout tensor expected next */
    int cls_slot;        /* a tied model with an output.weight declared (a quantized classifier may come) */
    int float_type;      /* of matrices */
    /* a quantized linear between its codes and its last companion */
    int pending;         /* its GGUF index, -1 when none */
    char pending_name[64];
    llm_qlinear q;       /* its codes, scales (and zero points), malloc'd as they come */
    int want_zero, ggml_type;
    unsigned char *buf;  /* CHUNK_ELEMS * 4 bytes */
    float *f;            /* CHUNK_ELEMS floats */
    int skipped_optim;
} exporter;

static int add_tokenizer(exporter *x, const llm_tok *t, llm_gguf_report report, void *ctx)
{
    if (t->kind == LLM_TOK_IDS) reportf(report, ctx, "%s: the model has no tokenizer: none written", x->label);
    return llm_gguf_tok_export(x->out, t, x->c.vocab, x->label, x->err);
}

/* The metadata and every tensor info, from the config and tokenizer. */
static int declare(exporter *x, const llm_tok *t, int quantized, llm_gguf_report report, void *ctx)
{
    const llm_config *c = &x->c;
    llm_gguf_out *o = x->out;
    llm_error *err = x->err;
    int q4 = quantized && !x->o->dequant;
    int file_type = q4 ? 2 : x->float_type == LLM_GGML_F16 ? 1 : x->float_type == LLM_GGML_BF16 ? 32 : 0;
    LLM_TRY(llm_gguf_out_str(o, "general.architecture", "llama", err));
    LLM_TRY(llm_gguf_out_str(o, "general.name", x->o->name ? x->o->name : "llmpipe model", err));
    LLM_TRY(llm_gguf_out_str(o, "general.description", x->o->description ? x->o->description
                             : "a llmpipe checkpoint (llm-tensor export-gguf)", err));
    LLM_TRY(llm_gguf_out_u32(o, "general.file_type", (uint32_t)file_type, err));
    if (q4) LLM_TRY(llm_gguf_out_u32(o, "general.quantization_version", 2, err));
    const struct {
        const char *key;
        int v;
    } ints[] = {{"llama.vocab_size", c->vocab},         {"llama.context_length", c->seq_len},
                {"llama.embedding_length", c->dim},      {"llama.block_count", c->n_layers},
                {"llama.feed_forward_length", c->hidden}, {"llama.attention.head_count", c->n_heads},
                {"llama.attention.head_count_kv", c->n_kv_heads},
                {"llama.rope.dimension_count", c->dim / c->n_heads}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        LLM_TRY(llm_gguf_out_u32(o, ints[i].key, (uint32_t)ints[i].v, err));
    LLM_TRY(llm_gguf_out_f32(o, "llama.attention.layer_norm_rms_epsilon", c->norm_eps, err));
    LLM_TRY(llm_gguf_out_f32(o, "llama.rope.freq_base", c->rope_theta, err));
    LLM_TRY(add_tokenizer(x, t, report, ctx));
    for (int k = 0; k < x->n_pt; k++) {
        char name[64] = "";
        int64_t ne[LLM_GGUF_MAX_DIMS];
        gguf_name(x->pt[k].name, name, sizeof name);
        LLM_TRY(llm_gguf_out_tensor(o, name, gguf_dims(&x->pt[k].shape, ne), ne, err));
    }
    if (x->cls_slot) LLM_TRY(llm_gguf_out_tensor(o, "output.weight", 2, (int64_t[]){c->dim, c->vocab}, err));
    return 0;
}

/* Reads exactly n payload bytes. */
static int read_exact(exporter *x, const llm_record *rec, void *buf, size_t n)
{
    int64_t got = llm_reader_read(x->r, buf, n, x->err);
    if (got < 0) return (int)got;
    if ((size_t)got != n)
        return llm_error_set(x->err, LLM_ERR_TRUNCATED, "%s: %s: payload shorter than its shape", x->label, rec->name);
    return 0;
}

/* A float record, chunk by chunk, as GGUF tensor i. */
static int export_floats(exporter *x, const llm_record *rec, int i, const llm_shape *want)
{
    int same = rec->dtype == LLM_DTYPE_F32 && rec->shape.ndim == want->ndim;
    for (int d = 0; same && d < want->ndim; d++) same = rec->shape.dim[d] == want->dim[d];
    if (!same) {
        char a[64], b[64];
        return llm_error_set(x->err, LLM_ERR_FORMAT, "%s: %s: %s%s, but the config needs f32%s", x->label, rec->name,
                             llm_dtype_name(rec->dtype), llm_shape_format(&rec->shape, a, sizeof a),
                             llm_shape_format(want, b, sizeof b));
    }
    int type = want->ndim == 2 ? x->float_type : LLM_GGML_F32;
    LLM_TRY(llm_gguf_out_start(x->out, i, type, x->err));
    int64_t numel = llm_shape_numel(want);
    for (int64_t done = 0; done < numel;) {
        int64_t n = numel - done < CHUNK_ELEMS ? numel - done : CHUNK_ELEMS;
        LLM_TRY(read_exact(x, rec, x->f, (size_t)n * sizeof(float)));
        llm_gguf_encode_float(type, x->f, n, x->buf);
        LLM_TRY(llm_gguf_out_write(x->out, x->buf, (size_t)llm_gguf_nbytes(type, n), x->err));
        done += n;
    }
    return 0;
}

/* A whole companion payload into *dst (malloc'd), of exactly n bytes. */
static int read_companion(exporter *x, const llm_record *rec, void **dst, size_t n)
{
    size_t got;
    LLM_TRY(llm_reader_read_all(x->r, dst, &got, x->err));
    if (got != n)
        return llm_error_set(x->err, LLM_ERR_FORMAT, "%s: %s: %zu bytes, the linear needs %zu", x->label, rec->name,
                             got, n);
    return 0;
}

/* The codes of a quantized linear (the current record), as GGUF tensor i,
 * held until its scales (and zero points) come. */
static int export_qcodes(exporter *x, const llm_record *rec, int i, const llm_shape *want)
{
    const char *scheme = llm_record_attr(rec, "quant"), *group = llm_record_attr(rec, "group"),
               *sym = llm_record_attr(rec, "sym");
    int s = llm_qscheme_parse(scheme ? scheme : "");
    if (s <= LLM_Q_NONE || rec->shape.ndim != 2 || rec->shape.dim[0] != want->dim[0] ||
        rec->shape.dim[1] != want->dim[1] || rec->dtype != (s == LLM_Q_INT4 ? LLM_DTYPE_U4 : LLM_DTYPE_I8))
        return llm_error_set(x->err, LLM_ERR_FORMAT, "%s: %s: not a quantized linear of the config's shape", x->label,
                             rec->name);
    llm_qformat f = {.scheme = (llm_qscheme)s, .group = group ? atoi(group) : 0, .sym = sym ? atoi(sym) : 1};
    int cols = (int)want->dim[1];
    if (llm_qformat_check(&f, cols, x->err) < 0 || (s == LLM_Q_INT4 && !group))
        return llm_error_set(x->err, LLM_ERR_FORMAT, "%s: %s: int4 with group '%s'", x->label, rec->name,
                             group ? group : "");
    int q4_0 = s == LLM_Q_INT4 && f.group == 32 && f.sym;
    if (!q4_0 && !x->o->dequant)
        return llm_error_set(x->err, LLM_ERR_ARG, "%s: %s is %s%s%s%s: GGUF holds int4 symmetric with groups of 32 "
                             "exactly (llm-quant --scheme int4 --group 32); --dequant writes it as floats", x->label,
                             rec->name, scheme, s == LLM_Q_INT4 ? " group " : "", s == LLM_Q_INT4 ? group : "",
                             s == LLM_Q_INT4 && !f.sym ? " asymmetric" : "");
    memset(&x->q, 0, sizeof x->q);
    x->q.f = f, x->q.rows = (int)want->dim[0], x->q.cols = cols;
    x->q.groups = s == LLM_Q_INT4 ? cols / f.group : 1;
    size_t bytes = s == LLM_Q_INT4 ? (size_t)x->q.rows * (size_t)cols / 2 : (size_t)x->q.rows * (size_t)cols;
    LLM_TRY(read_companion(x, rec, s == LLM_Q_INT4 ? (void **)&x->q.q4 : (void **)&x->q.q8, bytes));
    x->pending = i;
    snprintf(x->pending_name, sizeof x->pending_name, "%s", rec->name);
    x->want_zero = s == LLM_Q_INT4 && !f.sym;
    x->ggml_type = q4_0 && !x->o->dequant ? LLM_GGML_Q4_0 : x->float_type;
    return 0;
}

static void pending_free(exporter *x)
{
    free(x->q.q4);
    free(x->q.q8);
    free(x->q.scale);
    free(x->q.zero);
    memset(&x->q, 0, sizeof x->q);
    x->pending = -1;
}

/* The pending linear, complete: as Q4_0, or decoded to floats. */
static int export_pending(exporter *x, llm_gguf_report report, void *ctx)
{
    llm_qlinear *q = &x->q;
    int64_t blocks = (int64_t)q->rows * q->groups;
    if (x->ggml_type == LLM_GGML_Q4_0) {
        for (int64_t b = 0; b < blocks; b++)
            if (!llm_gguf_f16_exact(q->scale[b]))
                return llm_error_set(x->err, LLM_ERR_ARG, "%s: %s: scale %lld (%.9g) is not an f16 value, as Q4_0 "
                                     "needs; --dequant writes the linear as floats", x->label, x->pending_name,
                                     (long long)b, (double)q->scale[b]);
        LLM_TRY(llm_gguf_out_start(x->out, x->pending, LLM_GGML_Q4_0, x->err));
        int64_t per = CHUNK_ELEMS / 32;
        for (int64_t b = 0; b < blocks; b += per) {
            int64_t n = blocks - b < per ? blocks - b : per;
            llm_gguf_int4_to_q4_0(q->q4 + b * 16, q->scale + b, n, x->buf);
            LLM_TRY(llm_gguf_out_write(x->out, x->buf, (size_t)n * 18, x->err));
        }
        return 0;
    }
    LLM_TRY(llm_gguf_out_start(x->out, x->pending, x->ggml_type, x->err));
    int per = CHUNK_ELEMS / q->cols > 0 ? CHUNK_ELEMS / q->cols : 1;
    float *w = per * (int64_t)q->cols <= CHUNK_ELEMS ? x->f : malloc((size_t)q->cols * sizeof *w);
    if (!w) return llm_error_set(x->err, LLM_ERR_NOMEM, "out of memory");
    unsigned char *enc = w == x->f ? x->buf : malloc((size_t)q->cols * 4);
    int rc = enc ? 0 : llm_error_set(x->err, LLM_ERR_NOMEM, "out of memory");
    for (int r = 0; rc == 0 && r < q->rows; r += per) {
        int r1 = r + per < q->rows ? r + per : q->rows;
        llm_dequantize_rows(q, r, r1, w);
        int64_t n = (int64_t)(r1 - r) * q->cols;
        llm_gguf_encode_float(x->ggml_type, w, n, enc);
        rc = llm_gguf_out_write(x->out, enc, (size_t)llm_gguf_nbytes(x->ggml_type, n), x->err);
    }
    if (w != x->f) free(w);
    if (enc != x->buf) free(enc);
    if (rc == 0)
        reportf(report, ctx, "%s: %s %s dequantized to %s", x->pending_name, llm_qscheme_name(q->f.scheme),
                q->f.scheme == LLM_Q_INT4 ? (q->f.sym ? "symmetric" : "asymmetric") : "per row",
                llm_gguf_type_name(x->ggml_type));
    return rc;
}

/* The companion rec of the pending linear: 1 when it was one (and read), 0 when not. */
static int take_companion(exporter *x, const llm_record *rec, llm_gguf_report report, void *ctx)
{
    size_t len = strlen(x->pending_name);
    if (x->pending < 0 || strncmp(rec->name, x->pending_name, len)) return 0;
    const char *suffix = rec->name + len;
    llm_qlinear *q = &x->q;
    size_t n = (size_t)q->rows * (size_t)q->groups;
    if (!strcmp(suffix, ".scale") && !q->scale) {
        if (rec->dtype != LLM_DTYPE_F32) return llm_error_set(x->err, LLM_ERR_FORMAT, "%s: %s is not f32", x->label, rec->name);
        LLM_TRY(read_companion(x, rec, (void **)&q->scale, n * sizeof(float)));
        for (size_t i = 0; i < n; i++)
            if (!(fabsf(q->scale[i]) < 1e30f))
                return llm_error_set(x->err, LLM_ERR_FORMAT, "%s: %s: element %zu is %g", x->label, rec->name, i,
                                     (double)q->scale[i]);
    } else if (!strcmp(suffix, ".zero") && x->want_zero && !q->zero) {
        if (rec->dtype != LLM_DTYPE_U8) return llm_error_set(x->err, LLM_ERR_FORMAT, "%s: %s is not u8", x->label, rec->name);
        LLM_TRY(read_companion(x, rec, (void **)&q->zero, n));
        for (size_t i = 0; i < n; i++)
            if (q->zero[i] > 15)
                return llm_error_set(x->err, LLM_ERR_FORMAT, "%s: %s: element %zu is %d", x->label, rec->name, i, q->zero[i]);
    } else {
        return 0;
    }
    if (q->scale && (!x->want_zero || q->zero)) {
        int rc = export_pending(x, report, ctx);
        pending_free(x);
        LLM_TRY(rc);
    }
    return 1;
}

/* One tensor record of the checkpoint. */
static int export_record(exporter *x, const llm_record *rec, llm_gguf_report report, void *ctx)
{
    if (!strncmp(rec->name, "optim.", 6)) {
        x->skipped_optim = 1;
        return 0;
    }
    int taken = take_companion(x, rec, report, ctx);
    if (taken) return taken < 0 ? taken : 0;
    if (x->pending >= 0)
        return llm_error_set(x->err, LLM_ERR_FORMAT, "%s: %s.%s is missing before %s", x->label, x->pending_name,
                             x->q.scale ? "zero" : "scale", rec->name);
    int cls = x->cls_slot && x->next == x->n_pt && !strcmp(rec->name, "cls");
    if (x->next >= x->n_pt && !cls)
        return llm_error_set(x->err, LLM_ERR_FORMAT, "%s: %s: not a tensor of this model, or given twice", x->label,
                             rec->name);
    if (!cls && strcmp(rec->name, x->pt[x->next].name))
        return llm_error_set(x->err, LLM_ERR_FORMAT, "%s: %s where %s was expected (a checkpoint's tensors come in "
                             "the model's order)", x->label, rec->name, x->pt[x->next].name);
    llm_shape shape = cls ? llm_shape_make(2, (int64_t[]){x->c.vocab, x->c.dim}) : x->pt[x->next].shape;
    int i = x->next++;
    if (llm_record_attr(rec, "quant")) return export_qcodes(x, rec, i, &shape);
    if (cls) return llm_error_set(x->err, LLM_ERR_FORMAT, "%s: cls: a tied model's classifier that is not quantized", x->label);
    return export_floats(x, rec, i, &shape);
}

/* A tied model's output.weight, declared for a quantized classifier that did
 * not come: the embedding's bytes again. */
static int copy_embedding(exporter *x)
{
    uint64_t from = llm_gguf_out_position(x->out, 0);
    uint64_t n = llm_gguf_nbytes(x->float_type, (int64_t)x->c.vocab * x->c.dim);
    LLM_TRY(llm_gguf_out_start(x->out, x->n_pt, x->float_type, x->err));
    for (uint64_t done = 0; done < n;) {
        size_t k = n - done < (uint64_t)CHUNK_ELEMS * 4 ? (size_t)(n - done) : (size_t)CHUNK_ELEMS * 4;
        ssize_t got = pread(x->fd, x->buf, k, (off_t)(from + done));
        if (got != (ssize_t)k) return llm_error_set(x->err, LLM_ERR_IO, "%s: reading back the embedding failed", x->out_label);
        LLM_TRY(llm_gguf_out_write(x->out, x->buf, k, x->err));
        done += k;
    }
    return 0;
}

static int export_all(exporter *x, llm_gguf_report report, void *ctx)
{
    const llm_record *rec;
    int rc = llm_reader_next(x->r, &rec, x->err);
    if (rc == 0) return llm_error_set(x->err, LLM_ERR_FORMAT, "%s: empty stream: not a model checkpoint", x->label);
    if (rc < 0) return rc;
    if (rec->kind != LLM_RECORD_META || strcmp(rec->name, "config"))
        return llm_error_set(x->err, LLM_ERR_FORMAT, "%s: not a model checkpoint (first record is '%s')", x->label,
                             rec->name);
    if (llm_ckpt_parse_config(rec, &x->c, x->err) < 0) return llm_error_prefix(x->err, "%s", x->label);
    if (x->c.window)
        return llm_error_set(x->err, LLM_ERR_ARG, "%s: the model attends through a sliding window of %d, which "
                             "llama.cpp's llama does not", x->label, x->c.window);
    int quantized = llm_record_attr(rec, "quant") != NULL;
    llm_model_layout(&x->c, NULL, &x->n_pt);
    if (!(x->pt = calloc((size_t)x->n_pt, sizeof *x->pt)))
        return llm_error_set(x->err, LLM_ERR_NOMEM, "out of memory");
    llm_model_layout(&x->c, x->pt, &x->n_pt);
    x->cls_slot = x->c.tie && quantized;
    llm_tok tok;
    llm_tok_ids(&tok, x->c.vocab, -1, -1, NULL);
    while ((rc = llm_reader_next(x->r, &rec, x->err)) > 0 && rec->kind == LLM_RECORD_META)
        if (!strcmp(rec->name, "tokenizer") && (rc = llm_tok_read(&tok, x->r, rec, x->err)) < 0) break;
    if (rc == 0) rc = llm_error_set(x->err, LLM_ERR_FORMAT, "%s: a checkpoint without tensors", x->label);
    if (rc > 0) rc = declare(x, &tok, quantized, report, ctx);
    llm_tok_free(&tok);
    if (rc == 0) rc = llm_gguf_out_begin(x->out, x->fd, x->out_label, x->err);
    if (rc == 0) rc = export_record(x, rec, report, ctx);
    while (rc == 0 && (rc = llm_reader_next(x->r, &rec, x->err)) > 0)
        rc = rec->kind == LLM_RECORD_META ? 0 : export_record(x, rec, report, ctx);
    if (rc < 0) return rc;
    if (x->pending >= 0)
        return llm_error_set(x->err, LLM_ERR_FORMAT, "%s: %s.%s is missing", x->label, x->pending_name,
                             x->q.scale ? "zero" : "scale");
    if (x->next < x->n_pt)
        return llm_error_set(x->err, LLM_ERR_FORMAT, "%s: tensor %s is missing", x->label, x->pt[x->next].name);
    if (x->cls_slot && x->next == x->n_pt) LLM_TRY(copy_embedding(x));
    if (x->skipped_optim) reportf(report, ctx, "%s: optimizer state not exported", x->label);
    return llm_gguf_out_finish(x->out, x->err);
}

int llm_gguf_export(llm_reader *r, const char *label, int fd, const char *out_label,
                    const llm_gguf_export_opts *opts, llm_gguf_report report, void *ctx, llm_error *err)
{
    int type = opts->type;
    if (type != LLM_GGML_F32 && type != LLM_GGML_F16 && type != LLM_GGML_BF16)
        return llm_error_set(err, LLM_ERR_ARG, "GGUF export: float type %d is not F32, F16 or BF16", type);
    exporter x = {.r = r, .label = label, .out_label = out_label, .o = opts, .fd = fd, .err = err,
                  .float_type = type, .pending = -1, .buf = malloc((size_t)CHUNK_ELEMS * 4),
                  .f = malloc((size_t)CHUNK_ELEMS * sizeof(float))};
    int rc = x.buf && x.f ? llm_gguf_out_new(&x.out, err) : llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    if (rc == 0) rc = export_all(&x, report, ctx);
    pending_free(&x);
    llm_gguf_out_free(x.out);
    free(x.pt);
    free(x.buf);
    free(x.f);
    return rc;
}
