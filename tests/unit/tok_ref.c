/* tok_ref — the tokenizer tests' shared checks, and the reader of
 * tests/tok_ref.py's vocab, meta, merges and cases files (their format is in
 * tok_ref.py). */
#include "tok_ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "stream.h"

/* Decodes the hex at s ("-empty-": nothing) into a fresh buffer. */
static char *unhex(const char *s, size_t *len)
{
    size_t n = strcmp(s, "-empty-") ? strlen(s) / 2 : 0;
    char *out = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        sscanf(s + 2 * i, "%2x", &v);
        out[i] = (char)v;
    }
    *len = n;
    return out;
}

/* The lines of a file, each NUL-terminated, in a NULL-terminated array;
 * the text they point into is *buf. */
static char **lines_of(const char *path, char **buf, int *n)
{
    size_t len;
    *buf = (char *)check_slurp(path, &len);
    *n = 0;
    if (!*buf) return NULL;
    char **lines = malloc((len + 2) * sizeof *lines);
    for (char *p = *buf; *p;) {
        char *e = strchr(p, '\n');
        if (e) *e = '\0';
        lines[(*n)++] = p;
        if (!e) break;
        p = e + 1;
    }
    lines[*n] = NULL;
    return lines;
}

static int32_t *parse_ids(char *s, int *n)
{
    int32_t *ids = malloc((strlen(s) + 1) * sizeof *ids);
    *n = 0;
    for (char *tok = strtok(s, " "); tok && strcmp(tok, "-"); tok = strtok(NULL, " ")) ids[(*n)++] = atoi(tok);
    return ids;
}

int tok_ref_run(tok_ref *r, const char *args, const char *module)
{
    memset(r, 0, sizeof *r);
    const char *top = getenv("LLM_TOP");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import %s' >/dev/null 2>&1", module);
    if (!top || system(cmd) != 0) {
        snprintf(cmd, sizeof cmd, "needs /usr/bin/python3 with %s (Debian: python3-%s), and LLM_TOP", module, module);
        check_skip(cmd);
        return 0;
    }
    const char *dir = check_path(args[0] == 's' ? "spm" : strstr(args, "llama3") ? "llama3" : "gpt2");
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && /usr/bin/python3 '%s/tests/tok_ref.py' %.4s '%s' %s", dir, top,
             args, dir, strchr(args, ' ') ? strchr(args, ' ') + 1 : "");
    if (!CHECK_MSG(system(cmd) == 0, "%s failed", cmd)) return -1;
    char path[1024], *buf;
    int n;
    snprintf(path, sizeof path, "%s/vocab", dir);
    char **lines = lines_of(path, &buf, &n);
    llm_tok_spec *s = &r->spec;
    s->vocab = n;
    char **pieces = malloc((size_t)n * sizeof *pieces);
    uint32_t *lens = malloc((size_t)n * sizeof *lens);
    float *scores = malloc((size_t)n * sizeof *scores);
    int32_t *types = malloc((size_t)n * sizeof *types);
    for (int i = 0; i < n; i++) {
        char hex[1100];
        int type;
        sscanf(lines[i], "%d %f %1099s", &type, &scores[i], hex);
        types[i] = type;
        size_t len;
        pieces[i] = unhex(hex, &len);
        lens[i] = (uint32_t)len;
    }
    s->pieces = (const char *const *)pieces, s->lens = lens, s->scores = scores, s->types = types;
    free(lines);
    free(buf);
    snprintf(path, sizeof path, "%s/meta", dir);
    lines = lines_of(path, &buf, &n);
    if (!CHECK(n == 1 && sscanf(lines[0], "%d %d %d", &s->bos, &s->eos, &s->unk) == 3)) return -1;
    free(lines);
    free(buf);
    snprintf(path, sizeof path, "%s/merges", dir);
    lines = lines_of(path, &buf, &n);
    if (lines) {
        char **merges = malloc(((size_t)n + 1) * sizeof *merges);
        uint32_t *mlens = malloc(((size_t)n + 1) * sizeof *mlens);
        for (int i = 0; i < n; i++) {
            size_t len;
            merges[i] = unhex(lines[i], &len);
            mlens[i] = (uint32_t)len;
        }
        s->n_merges = n, s->merges = (const char *const *)merges, s->merge_lens = mlens;
        free(lines);
        free(buf);
    }
    snprintf(path, sizeof path, "%s/cases", dir);
    lines = lines_of(path, &buf, &n);
    r->cases = calloc((size_t)n + 1, sizeof *r->cases);
    for (int i = 0; i < n; i++) {
        tok_ref_case *c = &r->cases[r->n_cases++];
        char *text = strtok(lines[i], "\t"), *ids = strtok(NULL, "\t"), *dec = strtok(NULL, "\t");
        if (!CHECK(text && ids && dec)) return -1;
        c->text = unhex(text, &c->len);
        dec = strcmp(dec, "-") ? strdup(dec) : NULL;
        c->ids = parse_ids(ids, &c->n_ids);
        if (dec) c->decoded = unhex(dec, &c->decoded_len);
        free(dec);
    }
    free(lines);
    free(buf);
    return CHECK_MSG(r->n_cases > 20 && s->vocab > 300, "%d cases, vocab %d", r->n_cases, s->vocab) ? 1 : -1;
}

void tok_ref_free(tok_ref *r)
{
    for (int i = 0; i < r->spec.vocab; i++) free((char *)r->spec.pieces[i]);
    for (int i = 0; i < r->spec.n_merges; i++) free((char *)r->spec.merges[i]);
    free((void *)r->spec.pieces);
    free((void *)r->spec.lens);
    free((void *)r->spec.scores);
    free((void *)r->spec.types);
    free((void *)r->spec.merges);
    free((void *)r->spec.merge_lens);
    for (int i = 0; i < r->n_cases; i++) {
        free(r->cases[i].text);
        free(r->cases[i].ids);
        free(r->cases[i].decoded);
    }
    free(r->cases);
    memset(r, 0, sizeof *r);
}

static void show(char *buf, size_t cap, const int32_t *ids, int64_t n)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int64_t i = 0; i < n && at + 16 < cap; i++) at += (size_t)snprintf(buf + at, cap - at, " %d", ids[i]);
}

int tok_ref_check(const llm_tok *t, const tok_ref *r, int after_bos, int decodes_to_text)
{
    int bad = 0;
    for (int k = 0; k < r->n_cases; k++) {
        const tok_ref_case *c = &r->cases[k];
        int32_t *ids = malloc((llm_tok_max_ids(t, c->len) + 1) * sizeof *ids);
        llm_error err = {0};
        int64_t n = llm_tok_encode_text(t, c->text, c->len, ids, &err);
        int same = n == c->n_ids && (n == 0 || !memcmp(ids, c->ids, (size_t)n * sizeof *ids));
        if (!same) {
            char got[600], want[600];
            show(got, sizeof got, ids, n);
            show(want, sizeof want, c->ids, c->n_ids);
            CHECK_MSG(0, "case %d '%.40s': got %lld ids%s (%s), want %d:%s", k, c->text, (long long)n, got,
                      err.msg, c->n_ids, want);
        }
        const char *want = c->decoded ? c->decoded : decodes_to_text ? c->text : NULL;
        size_t want_len = c->decoded ? c->decoded_len : c->len;
        if (same && want) {
            char *back = malloc((size_t)(n + 1) * LLM_TOK_MAX_PIECE), piece[LLM_TOK_MAX_PIECE];
            size_t at = 0;
            int32_t prev = after_bos ? t->bos : -1;
            for (int64_t i = 0; i < n; i++) {
                int len = llm_tok_decode_next(t, prev, ids[i], piece);
                memcpy(back + at, piece, (size_t)(len > 0 ? len : 0));
                at += (size_t)(len > 0 ? len : 0);
                prev = ids[i];
            }
            if (!(at == want_len && !memcmp(back, want, at))) {
                same = 0;
                CHECK_MSG(0, "case %d '%.40s': decodes to '%.*s'", k, c->text, (int)(at < 60 ? at : 60), back);
            }
            free(back);
        }
        bad += !same;
        free(ids);
    }
    return bad;
}

int tok_encodes_to(const llm_tok *t, const char *text, size_t len, const int32_t *want, int n)
{
    int32_t ids[64];
    llm_error err = {0};
    int64_t got = llm_tok_max_ids(t, len) <= 64 ? llm_tok_encode_text(t, text, len, ids, &err) : -1;
    int ok = got == n;
    for (int i = 0; ok && i < n; i++) ok = ids[i] == want[i];
    if (!ok) {
        char buf[256];
        int at = snprintf(buf, sizeof buf, "got %lld:", (long long)got);
        for (int i = 0; i < got && at < 200; i++) at += snprintf(buf + at, sizeof buf - (size_t)at, " %d", ids[i]);
        CHECK_MSG(0, "encoding '%.*s': %s %s", (int)len, text, buf, err.msg);
    }
    return ok;
}

int tok_round_trip(const llm_tok *t, llm_tok *out, llm_error *err)
{
    const char *path = check_path("tok.llmt");
    llm_writer *w;
    LLM_TRY(llm_writer_open(&w, path, NULL, err));
    int rc = llm_tok_write(t, w, err);
    if (rc < 0) {
        llm_writer_abort(w);
        return rc;
    }
    LLM_TRY(llm_writer_close(w, err));
    llm_reader *r;
    LLM_TRY(llm_reader_open(&r, path, err));
    const llm_record *rec;
    rc = llm_reader_next(r, &rec, err);
    if (rc > 0) rc = strcmp(rec->name, "tokenizer") ? -100 : llm_tok_read(out, r, rec, err);
    llm_reader_close(r);
    return rc;
}
