/* cli — messages, exit statuses and option parsing for the tools. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <omp.h>
#include <unistd.h>

#include "outfile.h"

static const char *tool_name = "llmpipe";

enum { MAX_TEMPS = 8 };
static char temp_paths[MAX_TEMPS][4096];
static volatile sig_atomic_t n_temps;

static void remove_temps(void)
{
    for (int i = 0; i < n_temps; i++) unlink(temp_paths[i]); /* gone already after a rename */
}

static void on_fatal_signal(int sig)
{
    remove_temps();
    signal(sig, SIG_DFL);
    raise(sig);
}

void llm_cli_remove_on_failure(const char *temp_path)
{
    if (!temp_path) return;
    for (int i = 0; i < n_temps; i++) /* a checkpoint saved again reuses its name */
        if (!strcmp(temp_paths[i], temp_path)) return;
    if (n_temps == MAX_TEMPS) return;
    snprintf(temp_paths[n_temps], sizeof temp_paths[0], "%s", temp_path);
    if (n_temps++ == 0) {
        /* a signal the tool handles itself (llm-train's SIGINT saves) stays its own */
        const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
            struct sigaction old;
            if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
                signal(sigs[i], on_fatal_signal);
        }
    }
}

void llm_cli_init(const char *tool)
{
    tool_name = tool;
    llm_outfile_watch(llm_cli_remove_on_failure); /* every temporary output, checkpoints too */
}
const char *llm_cli_tool(void) { return tool_name; }

static int progress_open;

static void vmessage(const char *fmt, va_list ap)
{
    if (progress_open) fputc('\n', stderr);
    progress_open = 0;
    fprintf(stderr, "%s: ", tool_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void llm_die(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    remove_temps();
    exit(status);
}

void llm_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
}

void llm_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help'.\n", tool_name);
    remove_temps();
    exit(LLM_EXIT_USAGE);
}

long llm_cli_long(const char *opt, const char *text, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        llm_usage_error("%s: '%s' is not an integer in %ld..%ld", opt, text, min, max);
    return v;
}

double llm_cli_double(const char *opt, const char *text, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < min || v > max)
        llm_usage_error("%s: '%s' is not a number in %g..%g", opt, text, min, max);
    return v;
}

void llm_cli_refuse_tty(int fd, int force)
{
    if (!force && isatty(fd))
        llm_usage_error("refusing to write binary data to a terminal (redirect it, or use --force)");
}

int llm_cli_progress_wanted(int force) { return force || isatty(2); }

void llm_cli_progress(double frac, const char *fmt, ...)
{
    enum { WIDTH = 24 };
    int fill = (int)(frac * WIDTH + 0.5);
    if (fill < 0) fill = 0;
    if (fill > WIDTH) fill = WIDTH;
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\r%s: [%s] ", tool_name, bar);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\033[K", stderr); /* clear what a longer line left */
    fflush(stderr);
    progress_open = 1;
}

void llm_cli_progress_done(void)
{
    if (progress_open) fputc('\n', stderr);
    progress_open = 0;
}

double llm_cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

char *llm_cli_duration(double seconds, char *buf, size_t size)
{
    long s = seconds < 0 ? 0 : (long)(seconds + 0.5);
    if (s < 60) snprintf(buf, size, "%lds", s);
    else if (s < 3600) snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
    else snprintf(buf, size, "%ldh%02ldm", s / 3600, s / 60 % 60);
    return buf;
}

void openblas_set_num_threads(int n); /* OpenBLAS's own; not in every cblas.h */

void llm_cli_passive_openmp(char **argv, const char *blas_timeout)
{
    int again = 0;
    if (!getenv("OMP_WAIT_POLICY")) again = !setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    if (!strcasecmp(getenv("OMP_WAIT_POLICY"), "PASSIVE") && !getenv("GOMP_SPINCOUNT"))
        again |= !setenv("GOMP_SPINCOUNT", "10000", 1);
    if (blas_timeout && !getenv("OPENBLAS_THREAD_TIMEOUT"))
        again |= !setenv("OPENBLAS_THREAD_TIMEOUT", blas_timeout, 1);
    if (again) execv("/proc/self/exe", argv); /* returns only on failure: then run as we are */
}

void llm_cli_threads(int n)
{
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}
