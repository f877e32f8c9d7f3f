/* cli — messages, exit statuses and option parsing for the tools. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <omp.h>
#include <unistd.h>

#include "outfile.h"

static const char *tool_name = "llmpipe";
static int dying; /* llm_die has spoken: the check of stdout at exit stays quiet */

/* The temporary files to remove if the tool is killed or dies: a list the
 * signal handler walks.  Every edit happens with all signals blocked in the
 * editing thread and under temps_lock, which the handler takes too, so the
 * handler never sees a half-made list and never waits on its own thread (a
 * signal may arrive on another thread: that one waits for the edit to end).
 * Nodes are allocated and freed outside the lock. */
typedef struct temp_file {
    struct temp_file *next;
    char path[];
} temp_file;
static temp_file *temps;
static atomic_flag temps_lock = ATOMIC_FLAG_INIT;

static void lock_temps(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, old);
    while (atomic_flag_test_and_set_explicit(&temps_lock, memory_order_acquire)) {}
}

static void unlock_temps(const sigset_t *old)
{
    atomic_flag_clear_explicit(&temps_lock, memory_order_release);
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* Async-signal-safe: no allocation, only unlink(). */
static void unlink_temps(void)
{
    while (atomic_flag_test_and_set_explicit(&temps_lock, memory_order_acquire)) {}
    for (const temp_file *t = temps; t; t = t->next) unlink(t->path);
    atomic_flag_clear_explicit(&temps_lock, memory_order_release);
}

static void remove_temps(void)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    unlink_temps();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void on_fatal_signal(int sig)
{
    unlink_temps();
    signal(sig, SIG_DFL);
    raise(sig); /* delivered when the handler returns: the usual death, core dump included */
}

/* Every signal whose default action ends the process, except those the tool
 * handles or ignores (SIGKILL and SIGSTOP cannot be caught). */
static void catch_fatal_signals(void)
{
    static const int sigs[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGILL,  SIGTRAP, SIGABRT,   SIGBUS,  SIGFPE,
                               SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM,   SIGXCPU, SIGXFSZ,
                               SIGVTALRM, SIGPROF, SIGSYS, SIGIO,
#ifdef SIGSTKFLT
                               SIGSTKFLT,
#endif
#ifdef SIGPWR
                               SIGPWR,
#endif
    };
    struct sigaction sa = {.sa_handler = on_fatal_signal};
    sigfillset(&sa.sa_mask); /* no other handler runs on this thread meanwhile */
    int n = (int)(sizeof sigs / sizeof sigs[0]);
    for (int i = 0; i < n + SIGRTMAX - SIGRTMIN + 1; i++) {
        int sig = i < n ? sigs[i] : SIGRTMIN + (i - n);
        struct sigaction old;
        if (sigaction(sig, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL)
            sigaction(sig, &sa, NULL);
    }
}

/* llm_outfile_watch: a temporary file was created. */
static void temp_created(const char *path)
{
    static atomic_flag caught = ATOMIC_FLAG_INIT;
    if (!atomic_flag_test_and_set(&caught)) catch_fatal_signals();
    size_t len = strlen(path) + 1;
    temp_file *t = malloc(sizeof *t + len);
    if (!t) { /* rare enough not to stop the tool: this file alone is not removed after a kill */
        llm_warn("%s: out of memory", path);
        return;
    }
    memcpy(t->path, path, len);
    sigset_t old;
    lock_temps(&old);
    t->next = temps;
    temps = t;
    unlock_temps(&old);
}

/* llm_outfile_watch: a temporary file was renamed into place or removed. */
static void temp_released(const char *path)
{
    sigset_t old;
    lock_temps(&old);
    temp_file **p = &temps;
    while (*p && strcmp((*p)->path, path) != 0) p = &(*p)->next;
    temp_file *t = *p;
    if (t) *p = t->next;
    unlock_temps(&old);
    free(t);
}

/* Flushes and closes fp: 0, or the errno of what failed (*op: "write" or
 * "close").  A close that fails with EBADF after nothing was written is no
 * error: the tool started without that descriptor and never needed it. */
static int close_stream(FILE *fp, const char **op)
{
    int e = errno; /* a write that failed earlier left its errno */
    int failed = ferror(fp);
    int pending = __fpending(fp) > 0;
    if (fflush(fp) != 0) failed = 1, e = errno;
    *op = "write";
    if (fclose(fp) != 0 && !failed && (pending || errno != EBADF)) {
        *op = "close";
        return errno;
    }
    return failed ? (e ? e : EIO) : 0;
}

/* atexit: standard output, checked. */
static void close_stdout(void)
{
    const char *op;
    int e = close_stream(stdout, &op);
    if (e && !dying) {
        fprintf(stderr, "%s: stdout: %s: %s\n", tool_name, op, strerror(e));
        remove_temps();
        _exit(LLM_EXIT_DATA);
    }
}

/* OpenBLAS's own, not in every cblas.h: its thread count, and how it was
 * built to run threads (0 sequential, 1 its own pthreads, 2 OpenMP's). */
void openblas_set_num_threads(int n);
int openblas_get_parallel(void);

/* OpenBLAS's threads for n OpenMP threads: as many when they are OpenMP's own
 * (one pool, which our loops and its kernels take turns on), else none
 * beyond the caller's: two pools on the same cores fight (20x slower on 2
 * cores, measured), so a pthreads build runs single-threaded. */
static int blas_threads(int n) { return openblas_get_parallel() == 2 ? n : 1; }

void llm_cli_init(const char *tool)
{
    openblas_set_num_threads(blas_threads(omp_get_max_threads()));
    tool_name = tool;
    llm_outfile_watch(temp_created, temp_released); /* every temporary output, checkpoints too */
    atexit(close_stdout);
}

int llm_cli_output_errno(FILE *fp, int flush)
{
    int e = errno; /* a write that failed since the last check left its errno */
    if (flush && fflush(fp) != 0) return errno ? errno : EIO;
    return ferror(fp) ? (e ? e : EIO) : 0;
}

void llm_cli_check_output(FILE *fp, const char *name, int flush)
{
    int e = llm_cli_output_errno(fp, flush);
    if (e) llm_die(LLM_EXIT_DATA, "%s: write: %s", name, strerror(e));
}

void llm_cli_close_output(FILE *fp, const char *name)
{
    const char *op;
    int e = close_stream(fp, &op);
    if (e) llm_die(LLM_EXIT_DATA, "%s: %s: %s", name, op, strerror(e));
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
    dying = 1;
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
    dying = 1;
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

void llm_cli_threads(int n)
{
    omp_set_num_threads(n);
    openblas_set_num_threads(blas_threads(n));
}
