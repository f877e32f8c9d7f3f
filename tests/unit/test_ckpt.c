/* Unit tests for lib/ckpt: llm_ckpt_hash_tokens is FNV-1a over each id's
 * four little-endian bytes (the reference checked on published FNV-1a
 * vectors); a tied, windowed model with each optimizer's moments and
 * extreme training state comes back bit for bit; a quantized model (int8,
 * int4 symmetric and with zero points, w8a8, a quantized tied classifier)
 * comes back code for code through llm_ckpt_load_model and is refused by
 * llm_ckpt_load; a "train" record missing any attribute, or holding one
 * malformed or out of range, is LLM_ERR_FORMAT naming it; tensors of the
 * wrong shape, out of order, twice, unknown, moments without training
 * state and a cut-off file are refused naming the file, the model left
 * empty; out of memory is LLM_ERR_NOMEM.  (test_train checks an AdamW
 * round trip, a missing tensor, NaN weights and the tokenizer's fit.) */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ckpt.h"
#include "nomem.h"
#include "quant.h"

static void make_model(llm_model *m, int tie)
{
    llm_error err = {0};
    llm_config c = {.vocab = 258, .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .hidden = 128,
                    .seq_len = 16, .tie = tie, .window = tie ? 4 : 0, .norm_eps = 1e-5f, .rope_theta = 5000};
    CHECK_OK(llm_model_init(m, &c, 2, &err), err);
    unsigned long long state = 12;
    for (int64_t i = 0; i < m->n_params; i++) m->arena[i] += (float)(0.05 * check_normal(&state));
}

/* FNV-1a, 64 bits, of n bytes. */
static uint64_t fnv1a(const unsigned char *bytes, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++) h = (h ^ bytes[i]) * 0x100000001b3u;
    return h;
}

static void test_hash_tokens(void)
{
    CHECK(fnv1a((const unsigned char *)"", 0) == 0xcbf29ce484222325u);
    CHECK(fnv1a((const unsigned char *)"a", 1) == 0xaf63dc4c8601ec8cu);
    CHECK(fnv1a((const unsigned char *)"foobar", 6) == 0x85944171f73967e8u);
    const int32_t ids[5] = {0x61, 256, -1, 0x12345678, 7};
    unsigned char bytes[20];
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 4; k++) bytes[4 * i + k] = (unsigned char)((uint32_t)ids[i] >> (8 * k));
    for (int n = 0; n <= 5; n++)
        CHECK_MSG(llm_ckpt_hash_tokens(ids, n) == fnv1a(bytes, 4 * (size_t)n), "%d ids", n);
}

static llm_ckpt_train extreme_state(llm_optim_kind kind)
{
    llm_ckpt_train t = {.step = (int64_t)1 << 40, .tokens = INT64_MAX, .batch = 3, .seq = 16, .accum = 5,
                        .seed = UINT64_MAX, .data_hash = 0x8000000000000001u, .val_frac = 1.0 / 3};
    llm_optim_defaults(&t.optim, kind);
    t.optim.lr = 1.0f / 3, t.optim.min_lr = 1e-7f, t.optim.warmup = 17, t.optim.steps = 123456789;
    t.optim.clip = 0.7f, t.optim.beta1 = kind == LLM_OPTIM_SGD ? 0 : 0.85f;
    t.rng = (llm_rng){{0, UINT64_MAX, 0x0123456789abcdefu, 1}};
    return t;
}

/* Tied and windowed; SGD without momentum (no moments), with momentum (m),
 * Lion (m), Adam (m and v): everything comes back exactly. */
static void test_float_roundtrip(void)
{
    llm_error err = {0};
    llm_model m, back;
    make_model(&m, 1);
    const char *path = check_path("float.llmt");
    for (int k = 0; k < 4; k++) {
        llm_optim_kind kind = k < 2 ? LLM_OPTIM_SGD : k == 2 ? LLM_OPTIM_LION : LLM_OPTIM_ADAM;
        llm_ckpt_train st = extreme_state(kind), st2;
        if (k == 1) st.optim.beta1 = 0.9f;
        llm_optim o, o2;
        CHECK_OK(llm_optim_init(&o, &st.optim, m.n_params, &err), err);
        unsigned long long state = 30 + (unsigned long long)k;
        for (int64_t i = 0; o.m && i < m.n_params; i++) o.m[i] = (float)check_normal(&state);
        for (int64_t i = 0; o.v && i < m.n_params; i++) o.v[i] = (float)check_uniform(&state);
        o.t = 99;
        CHECK_OK(llm_ckpt_save(path, &m, &o, &st, &err), err);
        int has = 0, rc = llm_ckpt_load(path, &back, &o2, &st2, &has, &err);
        CHECK_OK(rc, err);
        if (rc < 0) {
            llm_optim_free(&o);
            break;
        }
        size_t bytes = (size_t)m.n_params * sizeof(float);
        CHECK_MSG(has && !memcmp(&back.cfg, &m.cfg, sizeof m.cfg) && !memcmp(back.arena, m.arena, bytes),
                  "optimizer %d: model", k);
        CHECK_MSG(!o.m == !o2.m && !o.v == !o2.v && (!o.m || !memcmp(o.m, o2.m, bytes)) &&
                      (!o.v || !memcmp(o.v, o2.v, bytes)) && o2.t == 99,
                  "optimizer %d: moments", k);
        CHECK_MSG(!memcmp(&st2.optim, &st.optim, sizeof st.optim), "optimizer %d: settings", k);
        CHECK_MSG(st2.step == st.step && st2.tokens == st.tokens && st2.batch == 3 && st2.seq == 16 &&
                      st2.accum == 5 && st2.seed == st.seed && st2.data_hash == st.data_hash &&
                      st2.val_frac == st.val_frac && !memcmp(&st2.rng, &st.rng, sizeof st.rng),
                  "optimizer %d: training state", k);
        CHECK(back.tok.kind == LLM_TOK_BYTES && back.tok.vocab == 258);
        llm_model_free(&back);
        llm_optim_free(&o2);
        /* the model alone, the training state seen but not wanted */
        CHECK_OK(llm_ckpt_load(path, &back, NULL, NULL, &has, &err), err);
        CHECK(has && back.arena && !memcmp(back.arena, m.arena, bytes));
        llm_model_free(&back);
        llm_optim_free(&o);
    }
    llm_model_free(&m);
}

/* Linear i of m quantized with formats[i % 4] (its float view is left). */
static void quantize_linears(llm_model *m)
{
    llm_error err = {0};
    const llm_qformat formats[4] = {{.scheme = LLM_Q_INT8}, {.scheme = LLM_Q_INT4, .group = 32, .sym = 1},
                                    {.scheme = LLM_Q_INT4, .group = 64, .sym = 0}, {.scheme = LLM_Q_W8A8}};
    for (int i = 0; i < llm_linear_count(m->cfg.n_layers); i++) {
        llm_linear *l = &m->lin[i];
        l->q = calloc(1, sizeof *l->q);
        CHECK_OK(llm_quantize_rtn(l->w, l->out, l->in, &formats[i % 4], l->q, &err), err);
        if (formats[i % 4].scheme == LLM_Q_W8A8) l->q->act_scale = 1.0f / (float)(3 * i + 3); /* no short decimal */
    }
}

static int same_qlinear(const llm_qlinear *a, const llm_qlinear *b)
{
    if (!a || !b) return !a && !b;
    size_t codes = (size_t)a->rows * (size_t)a->cols, scales = (size_t)a->rows * (size_t)a->groups;
    return !memcmp(&a->f, &b->f, sizeof a->f) && a->rows == b->rows && a->cols == b->cols &&
           a->groups == b->groups && a->act_scale == b->act_scale && !a->q8 == !b->q8 && !a->q4 == !b->q4 &&
           !a->zero == !b->zero && (!a->q8 || !memcmp(a->q8, b->q8, codes)) &&
           (!a->q4 || !memcmp(a->q4, b->q4, codes / 2)) && !memcmp(a->scale, b->scale, scales * sizeof(float)) &&
           (!a->zero || !memcmp(a->zero, b->zero, scales));
}

static void test_quantized_roundtrip(void)
{
    llm_error err = {0};
    const char *path = check_path("quant.llmt");
    for (int tie = 0; tie <= 1; tie++) {
        llm_model m, back;
        make_model(&m, tie);
        quantize_linears(&m);
        CHECK_OK(llm_ckpt_save(path, &m, NULL, NULL, &err), err);
        int rc = llm_ckpt_load_model(path, &back, &err);
        CHECK_OK(rc, err);
        if (rc < 0) {
            llm_model_free(&m);
            continue;
        }
        int n = llm_linear_count(m.cfg.n_layers);
        CHECK_MSG(llm_model_quantized(&back) == n, "tie %d: %d of %d linears quantized", tie,
                  llm_model_quantized(&back), n);
        for (int i = 0; i < n; i++) CHECK_MSG(same_qlinear(m.lin[i].q, back.lin[i].q), "tie %d: linear %d", tie, i);
        for (int i = 0; i < m.n_tensors; i++) { /* the float tensors: norms, embeddings */
            const llm_param_tensor *pt = &m.tensors[i];
            if (llm_linear_find(pt->name, m.cfg.n_layers) >= 0) continue;
            CHECK_MSG(!memcmp(back.arena + pt->offset, m.arena + pt->offset, (size_t)pt->count * sizeof(float)),
                      "tie %d: %s", tie, pt->name);
        }
        llm_model_free(&back);
        int has;
        CHECK(llm_ckpt_load(path, &back, NULL, NULL, &has, &err) == LLM_ERR_FORMAT);
        CHECK_MSG(strstr(err.msg, path) && strstr(err.msg, "is already quantized (int8): this needs a float"),
                  "%s", err.msg);
        CHECK(!back.arena && !back.lin);
        llm_model_free(&m);
    }
}

/* The "train" record of a checkpoint holding extreme_state, as read back:
 * its attributes copied into attrs (keys and values into text). */
static int read_train_attrs(const char *path, llm_attr *attrs, char text[][2][64], llm_error *err)
{
    llm_reader *r;
    LLM_TRY(llm_reader_open(&r, path, err));
    const llm_record *rec;
    int n = -1;
    while (n < 0 && llm_reader_next(r, &rec, err) > 0) {
        if (strcmp(rec->name, "train") != 0) continue;
        for (n = 0; n < rec->n_attrs && n < 40; n++) {
            snprintf(text[n][0], 64, "%s", rec->attrs[n].key);
            snprintf(text[n][1], 64, "%s", rec->attrs[n].value);
            attrs[n] = (llm_attr){text[n][0], text[n][1]};
        }
    }
    llm_reader_close(r);
    return n;
}

static void test_train_record(void)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m, 0);
    llm_ckpt_train st = extreme_state(LLM_OPTIM_ADAMW), back;
    const char *path = check_path("train.llmt");
    CHECK_OK(llm_ckpt_save(path, &m, NULL, &st, &err), err);
    llm_model_free(&m);
    llm_attr attrs[40], edited[40];
    char text[40][2][64];
    int n = read_train_attrs(path, attrs, text, &err);
    CHECK_MSG(n == 23, "%d attributes", n);
    llm_record rec = {.kind = LLM_RECORD_META, .name = "train", .attrs = attrs, .n_attrs = n};
    int64_t optim_t = -1;
    CHECK_OK(llm_ckpt_parse_train(&rec, &back, &optim_t, &err), err);
    CHECK(optim_t == 0 && back.step == st.step && back.seed == UINT64_MAX && back.optim.lr == 1.0f / 3);
    for (int drop = 0; drop < n; drop++) { /* each attribute missing */
        int k = 0;
        for (int i = 0; i < n; i++)
            if (i != drop) edited[k++] = attrs[i];
        rec = (llm_record){.kind = LLM_RECORD_META, .name = "train", .attrs = edited, .n_attrs = k};
        int rc = llm_ckpt_parse_train(&rec, &back, &optim_t, &err);
        const char *key = attrs[drop].key;
        CHECK_MSG(rc == LLM_ERR_FORMAT && (strstr(err.msg, key) || !strcmp(key, "optim")) &&
                      (strstr(err.msg, "missing") || strstr(err.msg, "unknown optimizer")),
                  "without %s: %d '%s'", key, rc, err.msg);
    }
    const struct {
        const char *key, *value;
    } bad[10] = {{"step", "-1"},   {"tokens", "12x"}, {"optim", "adagrad"}, {"lr", "fast"}, {"lr", "nan"},
                 {"steps", "0"},   {"batch", "0"},    {"seq", "4194305"},   {"seed", "-"},  {"rng2", "xyz"}};
    for (int b = 0; b < 10; b++) {
        memcpy(edited, attrs, (size_t)n * sizeof *attrs);
        for (int i = 0; i < n; i++)
            if (!strcmp(edited[i].key, bad[b].key)) edited[i].value = bad[b].value;
        rec = (llm_record){.kind = LLM_RECORD_META, .name = "train", .attrs = edited, .n_attrs = n};
        int rc = llm_ckpt_parse_train(&rec, &back, &optim_t, &err);
        CHECK_MSG(rc == LLM_ERR_FORMAT && strstr(err.msg, "train") &&
                      (strstr(err.msg, bad[b].key) || strstr(err.msg, "learning rate")),
                  "%s=%s: %d '%s'", bad[b].key, bad[b].value, rc, err.msg);
    }
}

/* How rewrite changes a checkpoint: the record named `name` is dropped,
 * written twice, moved to the end, or renamed to `to`. */
typedef enum { DROP, TWICE, LAST, RENAME } edit_kind;
typedef struct edit {
    edit_kind kind;
    const char *name, *to;
} edit;

static void rewrite(const char *from, const char *to, const edit *e)
{
    llm_error err = {0};
    llm_reader *r;
    llm_writer *w;
    CHECK_OK(llm_reader_open(&r, from, &err), err);
    CHECK_OK(llm_writer_open(&w, to, NULL, &err), err);
    const llm_record *rec;
    llm_record held = {0};
    void *held_data = NULL;
    char held_name[80] = "";
    while (llm_reader_next(r, &rec, &err) > 0) {
        void *data;
        size_t n;
        CHECK_OK(llm_reader_read_all(r, &data, &n, &err), err);
        llm_record out = *rec;
        int match = !strcmp(rec->name, e->name), times = match && e->kind == DROP ? 0 : match && e->kind == TWICE ? 2 : 1;
        if (match && e->kind == RENAME) out.name = e->to;
        if (match && e->kind == LAST) { /* tensors carry no attributes here */
            held = out, held_data = data, times = 0;
            snprintf(held_name, sizeof held_name, "%s", rec->name);
            held.name = held_name, held.attrs = NULL, held.n_attrs = 0;
            continue;
        }
        for (int t = 0; t < times; t++) CHECK_OK(llm_writer_record(w, &out, data, &err), err);
        free(data);
    }
    if (held_data) CHECK_OK(llm_writer_record(w, &held, held_data, &err), err);
    free(held_data);
    llm_reader_close(r);
    CHECK_OK(llm_writer_close(w, &err), err);
}

/* Each damage refused with LLM_ERR_FORMAT, the file and the problem named,
 * the model and optimizer left empty; a file cut short or missing is an
 * error of the reader. */
static void test_damaged(void)
{
    llm_error err = {0};
    llm_model m, back;
    make_model(&m, 0);
    llm_ckpt_train st = extreme_state(LLM_OPTIM_ADAMW);
    llm_optim o, o2;
    CHECK_OK(llm_optim_init(&o, &st.optim, m.n_params, &err), err);
    const char *good = check_path("good.llmt"), *model_only = check_path("model.llmt"), *bad = check_path("bad.llmt");
    const char *no_wq = check_path("no_wq.llmt");
    CHECK_OK(llm_ckpt_save(good, &m, &o, &st, &err), err);
    CHECK_OK(llm_ckpt_save(model_only, &m, NULL, NULL, &err), err);
    rewrite(good, no_wq, &(edit){DROP, "layers.0.attn.wq", NULL});
    const struct {
        const char *from;
        edit e;
        const char *msg;
    } cases[8] = {
        {good, {RENAME, "layers.0.attn.wk", "layers.0.attn.wq"}, "layers.0.attn.wq: out of order or given twice"},
        {no_wq, {RENAME, "layers.0.attn.wk", "layers.0.attn.wq"}, /* wk's shape where wq goes */
         "layers.0.attn.wq: f32[32,64], but the config needs f32[64,64]"},
        {good, {TWICE, "layers.1.mlp.norm", NULL}, "layers.1.mlp.norm: out of order or given twice"},
        {good, {LAST, "norm", NULL}, ": tensor norm is missing before it"},
        {good, {RENAME, "cls", "head"}, "head: not a tensor of this model"},
        {good, {DROP, "optim.v.tok_emb", NULL}, "optim.v.layers.0.attn.norm: tensor optim.v.tok_emb is missing"},
        {good, {DROP, "train", NULL}, "optim.m.tok_emb: optimizer state without training state"},
        {model_only, {DROP, "config", NULL}, "not a model checkpoint (first record is 'tokenizer')"}};
    for (int k = 0; k < 8; k++) {
        rewrite(cases[k].from, bad, &cases[k].e);
        int has;
        int rc = llm_ckpt_load(bad, &back, &o2, NULL, &has, &err);
        CHECK_MSG(rc == LLM_ERR_FORMAT && strstr(err.msg, bad) && strstr(err.msg, cases[k].msg), "case %d: %d '%s'",
                  k, rc, err.msg);
        CHECK_MSG(!back.arena && !back.tensors && !o2.m && !o2.v, "case %d: left allocated", k);
    }
    /* cut short: each of a few lengths is an error naming the file */
    FILE *f = fopen(good, "rb");
    static char bytes[1 << 20];
    size_t len = f ? fread(bytes, 1, sizeof bytes, f) : 0;
    if (f) fclose(f);
    CHECK(len > 1000 && len < sizeof bytes);
    const size_t cuts[4] = {3, 100, len / 2, len - 1};
    for (int k = 0; k < 4; k++) {
        f = fopen(bad, "wb");
        CHECK(f && fwrite(bytes, 1, cuts[k], f) == cuts[k] && fclose(f) == 0);
        int has;
        int rc = llm_ckpt_load(bad, &back, &o2, NULL, &has, &err);
        CHECK_MSG(rc < 0 && strstr(err.msg, bad), "%zu of %zu bytes: %d '%s'", cuts[k], len, rc, err.msg);
        CHECK(!back.arena && !o2.m);
    }
    int has;
    CHECK(llm_ckpt_load(check_path("none.llmt"), &back, NULL, NULL, &has, &err) == LLM_ERR_IO);
    CHECK(llm_ckpt_load_model(check_path("none.llmt"), &back, &err) == LLM_ERR_IO);
    llm_optim_free(&o);
    llm_model_free(&m);
}

static int load_training(void *path, llm_error *err)
{
    llm_model m;
    llm_optim o;
    llm_ckpt_train t;
    int has;
    LLM_TRY(llm_ckpt_load(path, &m, &o, &t, &has, err));
    llm_model_free(&m);
    llm_optim_free(&o);
    return has ? 0 : LLM_ERR_STATE;
}

static int load_quantized(void *path, llm_error *err)
{
    llm_model m;
    LLM_TRY(llm_ckpt_load_model(path, &m, err));
    int all = llm_model_quantized(&m) == llm_linear_count(m.cfg.n_layers);
    llm_model_free(&m);
    return all ? 0 : LLM_ERR_STATE;
}

static void test_out_of_memory(void)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m, 0);
    llm_ckpt_train st = extreme_state(LLM_OPTIM_ADAMW);
    llm_optim o;
    CHECK_OK(llm_optim_init(&o, &st.optim, m.n_params, &err), err);
    const char *train = check_path("nomem.llmt"), *quant = check_path("nomem_q.llmt");
    CHECK_OK(llm_ckpt_save(train, &m, &o, &st, &err), err);
    quantize_linears(&m);
    CHECK_OK(llm_ckpt_save(quant, &m, NULL, NULL, &err), err);
    CHECK(nomem_sweep("load", load_training, (void *)train) > 5);
    CHECK(nomem_sweep("load quantized", load_quantized, (void *)quant) > 5);
    llm_optim_free(&o);
    llm_model_free(&m);
}

int main(void)
{
    RUN(test_hash_tokens);
    RUN(test_float_roundtrip);
    RUN(test_quantized_roundtrip);
    RUN(test_train_record);
    RUN(test_damaged);
    RUN(test_out_of_memory);
    return check_done();
}
