/* check — the small harness behind tests/unit/test_*.c, and the helpers they share.
 *
 * Each test is a function run by RUN(); CHECK* records the first failure with
 * its file and line; the test then prints one line, "PASS name", "FAIL name:
 * why" or "SKIP name: why", which tests/run.sh counts.
 *
 *     static void test_add(void) { CHECK(1 + 1 == 2); CHECK_NEAR(0.1 + 0.2, 0.3, 1e-12); }
 *     int main(void) { RUN(test_add); return check_done(); }
 */
#ifndef LLM_CHECK_H
#define LLM_CHECK_H

#include <stddef.h>

void check_begin(const char *name);
void check_end(void);
/* Records a failure unless ok; returns ok. */
int check_true(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Marks the running test skipped, with a reason. */
void check_skip(const char *why);
/* Exit status for main: 1 when any test failed. */
int check_done(void);
/* A fresh private directory for the test's files (removed by tests/run.sh). */
const char *check_tmpdir(void);
/* check_tmpdir()/name, in one of 8 static buffers used in turn (so up to 8
 * paths may be held at once). */
const char *check_path(const char *name);
/* Deterministic uniform [0,1) and standard normal numbers. */
double check_uniform(unsigned long long *state);
double check_normal(unsigned long long *state);
/* n floats, each sd times a standard normal number drawn from *state
 * (malloc'd, with one spare element, so n = 0 is a real allocation). */
float *check_randn(size_t n, double sd, unsigned long long *state);
/* The whole file at path in a malloc'd buffer with a 0 byte after it, its
 * length in *len; NULL (*len 0) when it cannot be read whole. */
unsigned char *check_slurp(const char *path, size_t *len);
/* Writes the n low bytes of v at p, least significant first. */
void check_put_le(unsigned char *p, unsigned long long v, int n);
/* 1 when /usr/bin/python3 can import numpy (the tests' numpy references). */
int check_have_numpy(void);

#define RUN(fn) (check_begin(#fn), fn(), check_end())
#define CHECK(cond) check_true(!!(cond), __FILE__, __LINE__, "%s", #cond)
#define CHECK_MSG(cond, ...) check_true(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define CHECK_NEAR(a, b, tol)                                                            \
    do {                                                                                 \
        double check_a_ = (a), check_b_ = (b);                                           \
        check_true(fabs(check_a_ - check_b_) <= (tol), __FILE__, __LINE__,               \
                   "%s = %.9g, %s = %.9g, tolerance %g", #a, check_a_, #b, check_b_,     \
                   (double)(tol));                                                       \
    } while (0)
/* expr returns the library's int status and fills the llm_error e on
 * failure; its message goes into the test's failure line. */
#define CHECK_OK(expr, e)                                                                \
    do {                                                                                 \
        int check_rc_ = (expr);                                                          \
        check_true(check_rc_ >= 0, __FILE__, __LINE__, "%s returned %d: %s", #expr,     \
                   check_rc_, (e).msg);                                                  \
    } while (0)

#endif
