/* Unit tests for lib/err: llm_error_set's code, formatting and return value
 * (NULL err too); llm_error_prefix's "prefix: message", chained, and cut to
 * the 511 characters that fit, with the expected text built here character
 * by character and guard bytes after the struct left alone; LLM_TRY's early
 * return, evaluating its argument once. */
#include <string.h>

#include "check.h"
#include "err.h"

/* An llm_error followed by bytes no call may touch. */
typedef struct guarded {
    llm_error e;
    unsigned char guard[64];
} guarded;

static void guard_init(guarded *g)
{
    memset(g, 0, sizeof *g);
    memset(g->guard, 0xa5, sizeof g->guard);
}

static int guard_intact(const guarded *g)
{
    for (size_t i = 0; i < sizeof g->guard; i++)
        if (g->guard[i] != 0xa5) return 0;
    return 1;
}

/* n copies of c into s, NUL-terminated */
static char *repeat(char *s, char c, size_t n)
{
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static void test_set(void)
{
    llm_error err = {0};
    CHECK(llm_error_set(&err, LLM_ERR_FORMAT, "%s: offset %d of %lu", "a.llmt", -3, 40ul) == LLM_ERR_FORMAT);
    CHECK(err.code == LLM_ERR_FORMAT);
    CHECK_MSG(!strcmp(err.msg, "a.llmt: offset -3 of 40"), "%s", err.msg);
    /* the last call wins, code and message */
    CHECK(llm_error_set(&err, LLM_ERR_ARG, "short") == LLM_ERR_ARG);
    CHECK(err.code == LLM_ERR_ARG && !strcmp(err.msg, "short"));
    /* no err: the code still comes back */
    CHECK(llm_error_set(NULL, LLM_ERR_NOMEM, "lost %d", 1) == LLM_ERR_NOMEM);
}

/* A message longer than msg keeps its first 511 characters. */
static void test_set_truncates(void)
{
    guarded g;
    guard_init(&g);
    char long_text[2000], want[600];
    for (size_t i = 0; i < sizeof long_text - 1; i++) long_text[i] = (char)('a' + i % 26);
    long_text[sizeof long_text - 1] = '\0';
    CHECK(llm_error_set(&g.e, LLM_ERR_IO, "%s", long_text) == LLM_ERR_IO);
    memcpy(want, long_text, 511);
    want[511] = '\0';
    CHECK(strlen(g.e.msg) == 511 && !strcmp(g.e.msg, want));
    CHECK(guard_intact(&g));
}

static void test_prefix(void)
{
    llm_error err = {0};
    llm_error_set(&err, LLM_ERR_TRUNCATED, "ends at byte %d", 12);
    CHECK(llm_error_prefix(&err, "%s", "model.llmt") == LLM_ERR_TRUNCATED);
    CHECK_MSG(!strcmp(err.msg, "model.llmt: ends at byte 12"), "%s", err.msg);
    CHECK(llm_error_prefix(&err, "rank %d", 1) == LLM_ERR_TRUNCATED);
    CHECK_MSG(!strcmp(err.msg, "rank 1: model.llmt: ends at byte 12"), "%s", err.msg);
    CHECK(err.code == LLM_ERR_TRUNCATED);
    /* an empty message gets the prefix and its separator */
    llm_error empty = {.code = LLM_ERR_LIMIT};
    CHECK(llm_error_prefix(&empty, "x") == LLM_ERR_LIMIT && !strcmp(empty.msg, "x: "));
    /* no err: a programmer error, said so */
    CHECK(llm_error_prefix(NULL, "x") == LLM_ERR_STATE);
}

/* Prefixing a message that fills msg: the prefix and ": " whole, then as
 * much of the old message as still fits, 511 characters in all. */
static void test_prefix_truncates(void)
{
    for (size_t old = 0; old <= 511; old += 73) {
        guarded g;
        guard_init(&g);
        char text[512], want[512];
        llm_error_set(&g.e, LLM_ERR_CHECKSUM, "%s", repeat(text, 'm', old));
        CHECK(llm_error_prefix(&g.e, "%s", "file.bin") == LLM_ERR_CHECKSUM);
        size_t keep = old < 511 - 10 ? old : 511 - 10;
        memcpy(want, "file.bin: ", 10);
        repeat(want + 10, 'm', keep);
        CHECK_MSG(!strcmp(g.e.msg, want), "old %zu: '%.40s...' (%zu)", old, g.e.msg, strlen(g.e.msg));
        CHECK_MSG(guard_intact(&g), "old %zu: bytes after the llm_error written", old);
    }
}

/* A prefix longer than msg itself: no overflow, a NUL-terminated message
 * beginning with the prefix's first characters. */
static void test_long_prefix(void)
{
    guarded g;
    guard_init(&g);
    char prefix[1000];
    llm_error_set(&g.e, LLM_ERR_ARG, "tail");
    CHECK(llm_error_prefix(&g.e, "%s", repeat(prefix, 'p', 999)) == LLM_ERR_ARG);
    size_t len = strnlen(g.e.msg, sizeof g.e.msg);
    CHECK_MSG(len < sizeof g.e.msg, "message not terminated");
    size_t ps = strspn(g.e.msg, "p");
    CHECK_MSG(ps > 0 && ps < len && !strncmp(g.e.msg + ps, ": ", 2), "'%.20s' at %zu", g.e.msg + ps, ps);
    CHECK(guard_intact(&g));
    /* a message with no NUL at all (a caller's bug) is read no further than msg */
    guard_init(&g);
    memset(g.e.msg, 'z', sizeof g.e.msg);
    llm_error_prefix(&g.e, "q");
    CHECK(strnlen(g.e.msg, sizeof g.e.msg) == 511 && !strncmp(g.e.msg, "q: zzz", 6));
    CHECK(guard_intact(&g));
}

static int calls;
static int counted(int rc) { return calls++, rc; }
static int try_returns(int rc)
{
    LLM_TRY(counted(rc));
    return 7; /* reached only when rc >= 0 */
}

static void test_try(void)
{
    calls = 0;
    CHECK(try_returns(LLM_ERR_LIMIT) == LLM_ERR_LIMIT && calls == 1);
    CHECK(try_returns(-100) == -100 && calls == 2);
    CHECK(try_returns(0) == 7 && calls == 3);
    CHECK(try_returns(5) == 7 && calls == 4); /* positive results are not errors */
}

/* Callers test `rc < 0` and compare codes: each code negative and distinct. */
static void test_codes(void)
{
    const int codes[] = {LLM_ERR_IO, LLM_ERR_FORMAT, LLM_ERR_TRUNCATED, LLM_ERR_CHECKSUM,
                         LLM_ERR_NOMEM, LLM_ERR_ARG, LLM_ERR_LIMIT, LLM_ERR_STATE};
    int n = (int)(sizeof codes / sizeof codes[0]);
    CHECK(LLM_OK == 0);
    for (int i = 0; i < n; i++) {
        CHECK_MSG(codes[i] < 0, "code %d", codes[i]);
        for (int j = 0; j < i; j++) CHECK_MSG(codes[i] != codes[j], "codes %d and %d equal", i, j);
    }
}

int main(void)
{
    RUN(test_set);
    RUN(test_set_truncates);
    RUN(test_prefix);
    RUN(test_prefix_truncates);
    RUN(test_long_prefix);
    RUN(test_try);
    RUN(test_codes);
    return check_done();
}
