/* gguf — the GGUF reader and writer (the layout is in gguf.h). */
#include "gguf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"

/* ---- types ---- */

static const struct {
    const char *name;
    int block, bytes;
} ggml_types[] = {
    [0] = {"F32", 1, 4},       [1] = {"F16", 1, 2},       [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},    [6] = {"Q5_0", 32, 22},    [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},    [9] = {"Q8_1", 32, 36},    [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110}, [12] = {"Q4_K", 256, 144}, [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210}, [15] = {"Q8_K", 256, 292}, [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74}, [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18}, [21] = {"IQ3_S", 256, 110}, [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},      [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},      [27] = {"I64", 1, 8},      [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56}, [30] = {"BF16", 1, 2},     [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66}, [39] = {"MXFP4", 32, 17},
};
enum { N_GGML_TYPES = sizeof ggml_types / sizeof ggml_types[0] };

static const char *const vtype_names[LLM_GGUF_VTYPES] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
/* Bytes of a scalar of each value type (0: a string or an array). */
static const int vtype_bytes[LLM_GGUF_VTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *llm_gguf_vtype_name(int type)
{
    return type >= 0 && type < LLM_GGUF_VTYPES ? vtype_names[type] : NULL;
}

const char *llm_gguf_type_name(int type)
{
    return type >= 0 && type < N_GGML_TYPES ? ggml_types[type].name : NULL;
}

int llm_gguf_type_size(int type, int *block, int *bytes)
{
    if (!llm_gguf_type_name(type)) return *block = *bytes = 0;
    *block = ggml_types[type].block;
    *bytes = ggml_types[type].bytes;
    return 1;
}

uint64_t llm_gguf_nbytes(int type, int64_t numel)
{
    int block, bytes;
    if (!llm_gguf_type_size(type, &block, &bytes)) return 0;
    return (uint64_t)(numel / block) * (uint64_t)bytes;
}

int llm_gguf_sniff(const void *head, size_t n)
{
    return n >= 4 && memcmp(head, "GGUF", 4) == 0;
}

/* ---- reading ---- */

typedef struct parser {
    llm_gguf *g;
    uint64_t pos; /* bytes consumed */
    llm_error *err;
} parser;

static uint64_t left(const parser *p)
{
    return p->g->file_size - p->pos;
}

static int take(parser *p, void *buf, uint64_t n, const char *what)
{
    if (n > left(p))
        return llm_error_set(p->err, LLM_ERR_TRUNCATED, "%s: truncated: %s at byte %llu needs %llu bytes, "
                             "%llu are left", p->g->label, what, (unsigned long long)p->pos,
                             (unsigned long long)n, (unsigned long long)left(p));
    if (n && fread(buf, 1, (size_t)n, p->g->f) != (size_t)n)
        return llm_error_set(p->err, LLM_ERR_IO, "%s: read error at byte %llu", p->g->label,
                             (unsigned long long)p->pos);
    p->pos += n;
    return 0;
}

static int take_u32(parser *p, uint32_t *v, const char *what)
{
    unsigned char b[4];
    LLM_TRY(take(p, b, 4, what));
    *v = llm_bytes_get_le32(b);
    return 0;
}

static int take_u64(parser *p, uint64_t *v, const char *what)
{
    unsigned char b[8];
    LLM_TRY(take(p, b, 8, what));
    *v = llm_bytes_get_le64(b);
    return 0;
}

/* A string of at most max bytes into s (allocated once its bytes are known
 * to be in the file). */
static int take_str(parser *p, llm_gguf_str *s, uint64_t max, const char *what)
{
    uint64_t n;
    LLM_TRY(take_u64(p, &n, what));
    if (n > max || n > left(p))
        return llm_error_set(p->err, n > left(p) ? LLM_ERR_TRUNCATED : LLM_ERR_FORMAT,
                             "%s: %s at byte %llu is %llu bytes long, %s", p->g->label, what,
                             (unsigned long long)(p->pos - 8), (unsigned long long)n,
                             n > left(p) ? "more than the file has left" : "too long");
    s->s = malloc((size_t)n + 1);
    if (!s->s) return llm_error_set(p->err, LLM_ERR_NOMEM, "%s: out of memory", p->g->label);
    s->len = n;
    s->s[n] = 0;
    return take(p, s->s, n, what);
}

static void kv_free(llm_gguf_kv *kv)
{
    free(kv->key);
    free(kv->str.s);
    if (kv->type == LLM_GGUF_ARRAY && kv->elem == LLM_GGUF_STRING && kv->data)
        for (uint64_t i = 0; i < kv->n; i++) free(((llm_gguf_str *)kv->data)[i].s);
    free(kv->data);
}

/* A scalar of type t from its bytes. */
static void scalar(llm_gguf_kv *kv, int t, const unsigned char *b)
{
    switch (t) {
    case LLM_GGUF_U8: case LLM_GGUF_BOOL: kv->v.u = b[0]; break;
    case LLM_GGUF_I8: kv->v.i = (int8_t)b[0]; break;
    case LLM_GGUF_U16: kv->v.u = llm_bytes_get_le16(b); break;
    case LLM_GGUF_I16: kv->v.i = (int16_t)llm_bytes_get_le16(b); break;
    case LLM_GGUF_U32: kv->v.u = llm_bytes_get_le32(b); break;
    case LLM_GGUF_I32: kv->v.i = (int32_t)llm_bytes_get_le32(b); break;
    case LLM_GGUF_U64: kv->v.u = llm_bytes_get_le64(b); break;
    case LLM_GGUF_I64: kv->v.i = (int64_t)llm_bytes_get_le64(b); break;
    case LLM_GGUF_F32: {
        uint32_t u = llm_bytes_get_le32(b);
        float f;
        memcpy(&f, &u, 4);
        kv->v.f = f;
        break;
    }
    case LLM_GGUF_F64: {
        uint64_t u = llm_bytes_get_le64(b);
        memcpy(&kv->v.f, &u, 8);
        break;
    }
    }
}

static int take_value(parser *p, llm_gguf_kv *kv)
{
    const char *label = p->g->label;
    if (kv->type == LLM_GGUF_STRING) return take_str(p, &kv->str, UINT64_MAX, kv->key);
    if (kv->type != LLM_GGUF_ARRAY) {
        unsigned char b[8];
        LLM_TRY(take(p, b, (uint64_t)vtype_bytes[kv->type], kv->key));
        scalar(kv, kv->type, b);
        if (kv->type == LLM_GGUF_BOOL && kv->v.u > 1)
            return llm_error_set(p->err, LLM_ERR_FORMAT, "%s: %s: bool value %llu", label, kv->key,
                                 (unsigned long long)kv->v.u);
        return 0;
    }
    uint32_t elem;
    LLM_TRY(take_u32(p, &elem, kv->key));
    if (elem >= LLM_GGUF_VTYPES)
        return llm_error_set(p->err, LLM_ERR_FORMAT, "%s: %s: unknown array element type %u", label, kv->key,
                             elem);
    if (elem == LLM_GGUF_ARRAY)
        return llm_error_set(p->err, LLM_ERR_FORMAT, "%s: %s: an array of arrays (not supported)", label,
                             kv->key);
    kv->elem = (int)elem;
    LLM_TRY(take_u64(p, &kv->n, kv->key));
    /* each element takes at least its scalar size, a string at least its length */
    uint64_t least = elem == LLM_GGUF_STRING ? 8 : (uint64_t)vtype_bytes[elem];
    if (kv->n > left(p) / least)
        return llm_error_set(p->err, LLM_ERR_TRUNCATED, "%s: %s: an array of %llu values of type %s, more "
                             "than the file has left (%llu bytes)", label, kv->key, (unsigned long long)kv->n,
                             vtype_names[elem], (unsigned long long)left(p));
    size_t bytes = elem == LLM_GGUF_STRING ? (size_t)kv->n * sizeof(llm_gguf_str) : (size_t)(kv->n * least);
    kv->data = calloc(bytes ? bytes : 1, 1);
    if (!kv->data) return llm_error_set(p->err, LLM_ERR_NOMEM, "%s: %s: out of memory", label, kv->key);
    if (elem != LLM_GGUF_STRING) {
        LLM_TRY(take(p, kv->data, bytes, kv->key));
        if (elem == LLM_GGUF_BOOL)
            for (uint64_t i = 0; i < kv->n; i++)
                if (((unsigned char *)kv->data)[i] > 1)
                    return llm_error_set(p->err, LLM_ERR_FORMAT, "%s: %s: element %llu: bool value %u", label,
                                         kv->key, (unsigned long long)i, ((unsigned char *)kv->data)[i]);
        return 0;
    }
    llm_gguf_str *s = kv->data;
    for (uint64_t i = 0; i < kv->n; i++) LLM_TRY(take_str(p, &s[i], UINT64_MAX, kv->key));
    return 0;
}

static int parse_kvs(parser *p)
{
    llm_gguf *g = p->g;
    for (int64_t i = 0; i < g->n_kv; i++) {
        llm_gguf_kv *kv = &g->kv[i];
        llm_gguf_str key = {0};
        LLM_TRY(take_str(p, &key, LLM_GGUF_MAX_KEY, "a key"));
        kv->key = key.s;
        if (strlen(key.s) != key.len)
            return llm_error_set(p->err, LLM_ERR_FORMAT, "%s: key %lld holds a NUL byte", g->label, (long long)i);
        uint32_t type;
        LLM_TRY(take_u32(p, &type, kv->key));
        if (type >= LLM_GGUF_VTYPES)
            return llm_error_set(p->err, LLM_ERR_FORMAT, "%s: %s: unknown value type %u", g->label, kv->key, type);
        kv->type = (int)type;
        LLM_TRY(take_value(p, kv));
    }
    return 0;
}

static int parse_tensor_info(parser *p, llm_gguf_tensor *t, int64_t index)
{
    llm_gguf *g = p->g;
    llm_gguf_str name = {0};
    LLM_TRY(take_str(p, &name, LLM_GGUF_MAX_NAME, "a tensor name"));
    t->name = name.s;
    if (strlen(name.s) != name.len)
        return llm_error_set(p->err, LLM_ERR_FORMAT, "%s: tensor %lld: its name holds a NUL byte", g->label,
                             (long long)index);
    uint32_t n_dims, type;
    LLM_TRY(take_u32(p, &n_dims, t->name));
    if (n_dims < 1 || n_dims > LLM_GGUF_MAX_DIMS)
        return llm_error_set(p->err, LLM_ERR_FORMAT, "%s: %s: %u dimensions (want 1..%d)", g->label, t->name,
                             n_dims, LLM_GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    int64_t numel = 1;
    for (int d = 0; d < LLM_GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < t->n_dims) LLM_TRY(take_u64(p, &ne, t->name));
        if (ne > (uint64_t)INT64_MAX || (ne && numel > INT64_MAX / (int64_t)ne))
            return llm_error_set(p->err, LLM_ERR_FORMAT, "%s: %s: dimension %d is %llu: the element count "
                                 "overflows", g->label, t->name, d, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
        numel *= (int64_t)ne;
    }
    t->numel = numel;
    LLM_TRY(take_u32(p, &type, t->name));
    int block, bytes;
    if (!llm_gguf_type_size((int)type, &block, &bytes))
        return llm_error_set(p->err, LLM_ERR_FORMAT, "%s: %s: unknown ggml type %u", g->label, t->name, type);
    t->type = (int)type;
    if (t->ne[0] % block)
        return llm_error_set(p->err, LLM_ERR_FORMAT, "%s: %s: a row of %lld is not a whole number of %s "
                             "blocks of %d", g->label, t->name, (long long)t->ne[0], ggml_types[type].name, block);
    t->nbytes = llm_gguf_nbytes(t->type, numel);
    return take_u64(p, &t->offset, t->name);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(**(char **const *)a, **(char **const *)b);
}

/* No two of the n names at names[0], names[stride], ... are the same
 * (sorted, so a file of many keys costs n log n); what names the kind. */
static int check_unique(const llm_gguf *g, char *const *names, size_t stride, int64_t n, const char *what,
                        llm_error *err)
{
    if (n < 2) return 0;
    char *const **order = malloc((size_t)n * sizeof *order);
    if (!order) return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", g->label);
    for (int64_t i = 0; i < n; i++) order[i] = (char *const *)((const char *)names + (size_t)i * stride);
    qsort(order, (size_t)n, sizeof *order, by_name);
    int rc = 0;
    for (int64_t i = 1; i < n && rc == 0; i++)
        if (strcmp(*order[i - 1], *order[i]) == 0)
            rc = llm_error_set(err, LLM_ERR_FORMAT, "%s: %s %s given twice", g->label, what, *order[i]);
    free(order);
    return rc;
}

static int by_offset(const void *a, const void *b)
{
    const llm_gguf_tensor *x = *(llm_gguf_tensor *const *)a, *y = *(llm_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Every tensor aligned, inside the file, and apart from the others. */
static int check_layout(llm_gguf *g, llm_error *err)
{
    uint64_t room = g->file_size - g->data_start;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const llm_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment)
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s: offset %llu is not a multiple of the alignment %u",
                                 g->label, t->name, (unsigned long long)t->offset, g->alignment);
        if (t->offset > room || t->nbytes > room - t->offset)
            return llm_error_set(err, LLM_ERR_TRUNCATED, "%s: %s: its %llu bytes at offset %llu end past the "
                                 "file's %llu data bytes", g->label, t->name, (unsigned long long)t->nbytes,
                                 (unsigned long long)t->offset, (unsigned long long)room);
    }
    if (g->n_tensors < 2) return 0;
    llm_gguf_tensor **order = malloc((size_t)g->n_tensors * sizeof *order);
    if (!order) return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", g->label);
    for (int64_t i = 0; i < g->n_tensors; i++) order[i] = &g->tensors[i];
    qsort(order, (size_t)g->n_tensors, sizeof *order, by_offset);
    int rc = 0;
    for (int64_t i = 1; i < g->n_tensors && rc == 0; i++)
        if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset && order[i - 1]->nbytes &&
            order[i]->nbytes)
            rc = llm_error_set(err, LLM_ERR_FORMAT, "%s: tensors %s and %s overlap (offsets %llu and %llu)",
                               g->label, order[i - 1]->name, order[i]->name,
                               (unsigned long long)order[i - 1]->offset, (unsigned long long)order[i]->offset);
    free(order);
    return rc;
}

static int parse(llm_gguf *g, llm_error *err)
{
    parser p = {g, 0, err};
    unsigned char h[24];
    if (g->file_size < 4 || fread(h, 1, 4, g->f) != 4 || !llm_gguf_sniff(h, 4))
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: not a GGUF file (no GGUF magic)", g->label);
    p.pos = 4;
    LLM_TRY(take_u32(&p, &g->version, "the version"));
    if (g->version == 1 || g->version > 3 || g->version == 0)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: GGUF version %u (versions 2 and 3 are read)", g->label,
                             g->version);
    uint64_t nt, nkv;
    LLM_TRY(take_u64(&p, &nt, "the tensor count"));
    LLM_TRY(take_u64(&p, &nkv, "the metadata count"));
    /* a key takes at least 13 bytes (length, type, a one-byte value), a
     * tensor info at least 28 (name length, n_dims, one dimension, type, offset) */
    if (nkv > left(&p) / 13)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %llu metadata entries cannot fit in the file's %llu "
                             "bytes", g->label, (unsigned long long)nkv, (unsigned long long)g->file_size);
    if (nt > left(&p) / 28)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %llu tensors cannot fit in the file's %llu bytes",
                             g->label, (unsigned long long)nt, (unsigned long long)g->file_size);
    g->kv = calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv);
    g->tensors = calloc(nt ? (size_t)nt : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", g->label);
    g->n_kv = (int64_t)nkv;
    LLM_TRY(parse_kvs(&p));
    LLM_TRY(check_unique(g, &g->kv[0].key, sizeof *g->kv, g->n_kv, "key", err));
    g->alignment = LLM_GGUF_DEFAULT_ALIGNMENT;
    const llm_gguf_kv *a = llm_gguf_find(g, "general.alignment");
    if (a && (a->type != LLM_GGUF_U32 || a->v.u == 0 || (a->v.u & (a->v.u - 1)) || a->v.u > (1u << 30)))
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: general.alignment must be a u32 power of two up to 2^30 "
                             "(it is %s %llu)", g->label, vtype_names[a->type], (unsigned long long)a->v.u);
    if (a) g->alignment = (uint32_t)a->v.u;
    g->n_tensors = (int64_t)nt;
    for (int64_t i = 0; i < g->n_tensors; i++) LLM_TRY(parse_tensor_info(&p, &g->tensors[i], i));
    LLM_TRY(check_unique(g, &g->tensors[0].name, sizeof *g->tensors, g->n_tensors, "tensor", err));
    uint64_t start = (p.pos + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors > 0 && start > g->file_size)
        return llm_error_set(err, LLM_ERR_TRUNCATED, "%s: truncated: the data would start at byte %llu, past "
                             "the end (%llu bytes)", g->label, (unsigned long long)start,
                             (unsigned long long)g->file_size);
    g->data_start = start > g->file_size ? g->file_size : start;
    return check_layout(g, err);
}

int llm_gguf_open_file(llm_gguf *g, FILE *f, const char *label, llm_error *err)
{
    memset(g, 0, sizeof *g);
    g->f = f;
    g->label = strdup(label);
    if (!g->label) {
        llm_gguf_close(g);
        return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", label);
    }
    struct stat st;
    int rc = 0;
    if (fstat(fileno(f), &st) < 0) rc = llm_error_set(err, LLM_ERR_IO, "%s: %s", label, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = llm_error_set(err, LLM_ERR_IO, "%s: a GGUF file is read from a regular file (its tensors are "
                           "read out of order), not a pipe or a device", label);
    if (rc == 0) {
        g->file_size = (uint64_t)st.st_size;
        rc = parse(g, err);
    }
    if (rc < 0) llm_gguf_close(g);
    return rc;
}

int llm_gguf_open(llm_gguf *g, const char *path, llm_error *err)
{
    memset(g, 0, sizeof *g);
    FILE *f = strcmp(path, "-") == 0 ? fdopen(dup(0), "rb") : fopen(path, "rb");
    if (!f) return llm_error_set(err, LLM_ERR_IO, "%s: %s", path, strerror(errno));
    return llm_gguf_open_file(g, f, path, err);
}

void llm_gguf_close(llm_gguf *g)
{
    if (!g) return;
    if (g->f) fclose(g->f);
    for (int64_t i = 0; g->kv && i < g->n_kv; i++) kv_free(&g->kv[i]);
    for (int64_t i = 0; g->tensors && i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    free(g->label);
    memset(g, 0, sizeof *g);
}

const llm_gguf_kv *llm_gguf_find(const llm_gguf *g, const char *key)
{
    for (int64_t i = 0; i < g->n_kv && g->kv[i].key; i++)
        if (strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

const llm_gguf_tensor *llm_gguf_tensor_named(const llm_gguf *g, const char *name)
{
    for (int64_t i = 0; i < g->n_tensors && g->tensors[i].name; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

static int is_float(int t)
{
    return t == LLM_GGUF_F32 || t == LLM_GGUF_F64;
}

static int is_signed(int t)
{
    return t == LLM_GGUF_I8 || t == LLM_GGUF_I16 || t == LLM_GGUF_I32 || t == LLM_GGUF_I64;
}

int llm_gguf_get_u64(const llm_gguf *g, const char *key, uint64_t *out, llm_error *err)
{
    const llm_gguf_kv *kv = llm_gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type == LLM_GGUF_STRING || kv->type == LLM_GGUF_ARRAY || is_float(kv->type) ||
        (is_signed(kv->type) && kv->v.i < 0))
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s is %s%s, not a count", g->label, key,
                             kv->type == LLM_GGUF_ARRAY ? "an array of " : "",
                             vtype_names[kv->type == LLM_GGUF_ARRAY ? kv->elem : kv->type]);
    *out = kv->v.u;
    return 1;
}

int llm_gguf_get_f64(const llm_gguf *g, const char *key, double *out, llm_error *err)
{
    const llm_gguf_kv *kv = llm_gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type == LLM_GGUF_STRING || kv->type == LLM_GGUF_ARRAY || kv->type == LLM_GGUF_BOOL)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s is %s%s, not a number", g->label, key,
                             kv->type == LLM_GGUF_ARRAY ? "an array of " : "",
                             vtype_names[kv->type == LLM_GGUF_ARRAY ? kv->elem : kv->type]);
    *out = is_float(kv->type) ? kv->v.f : is_signed(kv->type) ? (double)kv->v.i : (double)kv->v.u;
    return 1;
}

int llm_gguf_get_str(const llm_gguf *g, const char *key, const char **out, llm_error *err)
{
    const llm_gguf_kv *kv = llm_gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type != LLM_GGUF_STRING)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s is %s, not a string", g->label, key,
                             vtype_names[kv->type]);
    *out = kv->str.s;
    return 1;
}

double llm_gguf_array_f64(const llm_gguf_kv *kv, uint64_t i)
{
    llm_gguf_kv one = {0};
    scalar(&one, kv->elem, (const unsigned char *)kv->data + i * (uint64_t)vtype_bytes[kv->elem]);
    return is_float(kv->elem) ? one.v.f : is_signed(kv->elem) ? (double)one.v.i : (double)one.v.u;
}

int llm_gguf_read(const llm_gguf *g, const llm_gguf_tensor *t, uint64_t at, void *buf, size_t n, llm_error *err)
{
    if (at > t->nbytes || n > t->nbytes - at)
        return llm_error_set(err, LLM_ERR_ARG, "%s: %s: bytes %llu..%llu are outside its %llu", g->label, t->name,
                             (unsigned long long)at, (unsigned long long)(at + n), (unsigned long long)t->nbytes);
    char *p = buf;
    off_t pos = (off_t)(g->data_start + t->offset + at);
    while (n > 0) {
        ssize_t k = pread(fileno(g->f), p, n > (1u << 30) ? (1u << 30) : n, pos);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return llm_error_set(err, LLM_ERR_IO, "%s: %s: read: %s", g->label, t->name, strerror(errno));
        if (k == 0)
            return llm_error_set(err, LLM_ERR_TRUNCATED, "%s: %s: the file ended early (did it shrink?)", g->label,
                                 t->name);
        p += k, pos += k, n -= (size_t)k;
    }
    return 0;
}

/* ---- writing ---- */

typedef struct out_tensor {
    char *name;
    int n_dims, type;
    int64_t ne[LLM_GGUF_MAX_DIMS], numel;
    uint64_t offset, written, want;
    int started;
} out_tensor;

struct llm_gguf_out {
    unsigned char *kv;  /* the metadata as it is written */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    char **keys;        /* [n_kv], to refuse a key twice */
    out_tensor *t;
    int n_t, cap_t;
    int fd, next;       /* the tensor whose data is written next */
    const char *label;
    uint64_t pos, data_start;
    int begun;
};

int llm_gguf_out_new(llm_gguf_out **out, llm_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    (*out)->fd = -1;
    return 0;
}

void llm_gguf_out_free(llm_gguf_out *o)
{
    if (!o) return;
    for (uint64_t i = 0; i < o->n_kv; i++) free(o->keys[i]);
    for (int i = 0; i < o->n_t; i++) free(o->t[i].name);
    free(o->keys);
    free(o->kv);
    free(o->t);
    free(o);
}

static int put(llm_gguf_out *o, const void *p, size_t n, llm_error *err)
{
    if (o->kv_len + n > o->kv_cap) {
        size_t cap = o->kv_cap ? o->kv_cap : 4096;
        while (cap < o->kv_len + n) cap *= 2;
        unsigned char *b = realloc(o->kv, cap);
        if (!b) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory for GGUF metadata");
        o->kv = b, o->kv_cap = cap;
    }
    memcpy(o->kv + o->kv_len, p, n);
    o->kv_len += n;
    return 0;
}

static int put_le(llm_gguf_out *o, uint64_t v, int bytes, llm_error *err)
{
    unsigned char b[8];
    llm_bytes_put_le64(b, v);
    return put(o, b, (size_t)bytes, err);
}

static int put_str(llm_gguf_out *o, const char *s, size_t n, llm_error *err)
{
    LLM_TRY(put_le(o, n, 8, err));
    return put(o, s, n, err);
}

/* A key and its value type, once per key. */
static int put_key(llm_gguf_out *o, const char *key, int type, llm_error *err)
{
    if (o->begun) return llm_error_set(err, LLM_ERR_STATE, "GGUF metadata %s added after the header", key);
    for (uint64_t i = 0; i < o->n_kv; i++)
        if (!strcmp(o->keys[i], key)) return llm_error_set(err, LLM_ERR_ARG, "GGUF key %s given twice", key);
    char **k = realloc(o->keys, (size_t)(o->n_kv + 1) * sizeof *k);
    if (!k) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    o->keys = k;
    if (!(k[o->n_kv] = strdup(key))) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    o->n_kv++;
    LLM_TRY(put_str(o, key, strlen(key), err));
    return put_le(o, (uint64_t)type, 4, err);
}

int llm_gguf_out_str(llm_gguf_out *o, const char *key, const char *value, llm_error *err)
{
    LLM_TRY(put_key(o, key, LLM_GGUF_STRING, err));
    return put_str(o, value, strlen(value), err);
}

int llm_gguf_out_u32(llm_gguf_out *o, const char *key, uint32_t value, llm_error *err)
{
    LLM_TRY(put_key(o, key, LLM_GGUF_U32, err));
    return put_le(o, value, 4, err);
}

int llm_gguf_out_f32(llm_gguf_out *o, const char *key, float value, llm_error *err)
{
    uint32_t u;
    memcpy(&u, &value, 4);
    LLM_TRY(put_key(o, key, LLM_GGUF_F32, err));
    return put_le(o, u, 4, err);
}

int llm_gguf_out_bool(llm_gguf_out *o, const char *key, int value, llm_error *err)
{
    LLM_TRY(put_key(o, key, LLM_GGUF_BOOL, err));
    return put_le(o, value ? 1 : 0, 1, err);
}

static int put_array_head(llm_gguf_out *o, const char *key, int elem, uint64_t n, llm_error *err)
{
    LLM_TRY(put_key(o, key, LLM_GGUF_ARRAY, err));
    LLM_TRY(put_le(o, (uint64_t)elem, 4, err));
    return put_le(o, n, 8, err);
}

int llm_gguf_out_str_array(llm_gguf_out *o, const char *key, const char *const *s, const uint32_t *lens,
                           uint64_t n, llm_error *err)
{
    LLM_TRY(put_array_head(o, key, LLM_GGUF_STRING, n, err));
    for (uint64_t i = 0; i < n; i++) LLM_TRY(put_str(o, s[i], lens ? lens[i] : strlen(s[i]), err));
    return 0;
}

int llm_gguf_out_f32_array(llm_gguf_out *o, const char *key, const float *v, uint64_t n, llm_error *err)
{
    LLM_TRY(put_array_head(o, key, LLM_GGUF_F32, n, err));
    for (uint64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        LLM_TRY(put_le(o, u, 4, err));
    }
    return 0;
}

int llm_gguf_out_i32_array(llm_gguf_out *o, const char *key, const int32_t *v, uint64_t n, llm_error *err)
{
    LLM_TRY(put_array_head(o, key, LLM_GGUF_I32, n, err));
    for (uint64_t i = 0; i < n; i++) LLM_TRY(put_le(o, (uint32_t)v[i], 4, err));
    return 0;
}

int llm_gguf_out_tensor(llm_gguf_out *o, const char *name, int n_dims, const int64_t *ne, llm_error *err)
{
    if (o->begun) return llm_error_set(err, LLM_ERR_STATE, "GGUF tensor %s added after the header", name);
    if (n_dims < 1 || n_dims > LLM_GGUF_MAX_DIMS || strlen(name) > LLM_GGUF_MAX_NAME)
        return llm_error_set(err, LLM_ERR_ARG, "GGUF tensor %s: %d dimensions or a name too long", name, n_dims);
    if (o->n_t == o->cap_t) {
        int cap = o->cap_t ? 2 * o->cap_t : 64;
        out_tensor *t = realloc(o->t, (size_t)cap * sizeof *t);
        if (!t) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
        o->t = t, o->cap_t = cap;
    }
    out_tensor *t = &o->t[o->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    t->n_dims = n_dims;
    t->numel = 1;
    for (int d = 0; d < n_dims; d++) t->ne[d] = ne[d], t->numel *= ne[d];
    return o->n_t++;
}

static int write_all(llm_gguf_out *o, const void *p, size_t n, uint64_t at, llm_error *err)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = pwrite(o->fd, c, n, (off_t)at);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return llm_error_set(err, LLM_ERR_IO, "%s: write: %s", o->label, strerror(errno));
        c += k, n -= (size_t)k, at += (uint64_t)k;
    }
    return 0;
}

/* The header, metadata and tensor infos (types and offsets as they stand). */
static int write_header(llm_gguf_out *o, llm_error *err)
{
    size_t kv_len = o->kv_len;
    int rc = put(o, "GGUF", 4, err); /* the head goes after the metadata in the buffer, then moves */
    if (rc == 0) rc = put_le(o, 3, 4, err);
    if (rc == 0) rc = put_le(o, (uint64_t)o->n_t, 8, err);
    if (rc == 0) rc = put_le(o, o->n_kv, 8, err);
    size_t head = kv_len;
    if (rc == 0) rc = write_all(o, o->kv + head, 24, 0, err);
    if (rc == 0) rc = write_all(o, o->kv, kv_len, 24, err);
    o->kv_len = kv_len;
    uint64_t at = 24 + kv_len;
    for (int i = 0; rc == 0 && i < o->n_t; i++) {
        const out_tensor *t = &o->t[i];
        rc = put_str(o, t->name, strlen(t->name), err);
        if (rc == 0) rc = put_le(o, (uint64_t)t->n_dims, 4, err);
        for (int d = 0; rc == 0 && d < t->n_dims; d++) rc = put_le(o, (uint64_t)t->ne[d], 8, err);
        if (rc == 0) rc = put_le(o, (uint64_t)t->type, 4, err);
        if (rc == 0) rc = put_le(o, t->offset, 8, err);
        if (rc == 0) rc = write_all(o, o->kv + kv_len, o->kv_len - kv_len, at, err);
        at += o->kv_len - kv_len;
        o->kv_len = kv_len;
    }
    uint64_t start = (at + LLM_GGUF_DEFAULT_ALIGNMENT - 1) / LLM_GGUF_DEFAULT_ALIGNMENT * LLM_GGUF_DEFAULT_ALIGNMENT;
    static const unsigned char zeros[LLM_GGUF_DEFAULT_ALIGNMENT];
    if (rc == 0) rc = write_all(o, zeros, (size_t)(start - at), at, err);
    o->data_start = start;
    return rc;
}

int llm_gguf_out_begin(llm_gguf_out *o, int fd, const char *label, llm_error *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return llm_error_set(err, LLM_ERR_ARG, "%s: a GGUF file is written to a regular file (its header is "
                             "completed last), not a pipe or a device", label);
    o->fd = fd, o->label = label, o->begun = 1;
    LLM_TRY(write_header(o, err));
    o->pos = o->data_start;
    return 0;
}

static int pad_to_alignment(llm_gguf_out *o, llm_error *err)
{
    static const unsigned char zeros[LLM_GGUF_DEFAULT_ALIGNMENT];
    size_t pad = (size_t)((LLM_GGUF_DEFAULT_ALIGNMENT - o->pos % LLM_GGUF_DEFAULT_ALIGNMENT) % LLM_GGUF_DEFAULT_ALIGNMENT);
    LLM_TRY(write_all(o, zeros, pad, o->pos, err));
    o->pos += pad;
    return 0;
}

int llm_gguf_out_start(llm_gguf_out *o, int i, int type, llm_error *err)
{
    if (!o->begun || i != o->next || (i > 0 && o->t[i - 1].written != o->t[i - 1].want))
        return llm_error_set(err, LLM_ERR_STATE, "%s: GGUF tensor %d started out of order", o->label, i);
    out_tensor *t = &o->t[i];
    int block, bytes;
    if (!llm_gguf_type_size(type, &block, &bytes) || t->ne[0] % block)
        return llm_error_set(err, LLM_ERR_ARG, "%s: %s: type %d does not fit a row of %lld", o->label, t->name,
                             type, (long long)t->ne[0]);
    LLM_TRY(pad_to_alignment(o, err));
    t->type = type;
    t->offset = o->pos - o->data_start;
    t->want = llm_gguf_nbytes(type, t->numel);
    t->started = 1;
    o->next++;
    return 0;
}

int llm_gguf_out_write(llm_gguf_out *o, const void *data, size_t n, llm_error *err)
{
    out_tensor *t = o->next > 0 ? &o->t[o->next - 1] : NULL;
    if (!t || n > t->want - t->written)
        return llm_error_set(err, LLM_ERR_STATE, "%s: GGUF data written past its tensor", o->label);
    LLM_TRY(write_all(o, data, n, o->pos, err));
    o->pos += n;
    t->written += n;
    return 0;
}

uint64_t llm_gguf_out_position(const llm_gguf_out *o, int i)
{
    return o->data_start + o->t[i].offset;
}

int llm_gguf_out_finish(llm_gguf_out *o, llm_error *err)
{
    for (int i = 0; i < o->n_t; i++)
        if (!o->t[i].started || o->t[i].written != o->t[i].want)
            return llm_error_set(err, LLM_ERR_STATE, "%s: GGUF tensor %s not written whole", o->label, o->t[i].name);
    LLM_TRY(pad_to_alignment(o, err)); /* readers take each tensor with its padding */
    if (ftruncate(o->fd, (off_t)o->pos) < 0)
        return llm_error_set(err, LLM_ERR_IO, "%s: %s", o->label, strerror(errno));
    return write_header(o, err);
}
