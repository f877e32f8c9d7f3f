/* check — state and output of the unit-test harness (see check.h). */
#include "check.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *current;
static char first_failure[512];
static int failed_now, skipped_now, any_failed;
static char skip_reason[256];

void check_begin(const char *name)
{
    current = name;
    failed_now = skipped_now = 0;
    first_failure[0] = '\0';
}

int check_true(int ok, const char *file, int line, const char *fmt, ...)
{
    if (ok || failed_now++) return ok;
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(first_failure, sizeof first_failure, "%s:%d: %s", file, line, what);
    return ok;
}

void check_skip(const char *why)
{
    skipped_now = 1;
    snprintf(skip_reason, sizeof skip_reason, "%s", why);
}

void check_end(void)
{
    if (failed_now) {
        printf("FAIL %s: %s", current, first_failure);
        if (failed_now > 1) printf(" (and %d more)", failed_now - 1);
        printf("\n");
        any_failed = 1;
    } else if (skipped_now) {
        printf("SKIP %s: %s\n", current, skip_reason);
    } else {
        printf("PASS %s\n", current);
    }
    fflush(stdout);
}

int check_done(void) { return any_failed; }

const char *check_tmpdir(void)
{
    static char dir[512];
    if (dir[0]) return dir;
    const char *base = getenv("LLM_TEST_TMP");
    snprintf(dir, sizeof dir, "%s/unit.XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(2);
    }
    return dir;
}

const char *check_path(const char *name)
{
    static char paths[8][600];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", check_tmpdir(), name);
    return p;
}

double check_uniform(unsigned long long *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*state >> 11) / 9007199254740992.0;
}

double check_normal(unsigned long long *state)
{
    double u = check_uniform(state), v = check_uniform(state);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

float *check_randn(size_t n, double sd, unsigned long long *state)
{
    float *x = malloc((n + 1) * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(sd * check_normal(state));
    return x;
}

unsigned char *check_slurp(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct stat st;
    unsigned char *buf = NULL;
    if (fstat(fileno(f), &st) == 0 && (buf = malloc((size_t)st.st_size + 1)) != NULL) {
        if (fread(buf, 1, (size_t)st.st_size, f) == (size_t)st.st_size) {
            buf[st.st_size] = 0;
            *len = (size_t)st.st_size;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

void check_put_le(unsigned char *p, unsigned long long v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

int check_have_numpy(void)
{
    return system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}
