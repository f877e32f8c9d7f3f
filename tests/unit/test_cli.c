/* Unit tests for lib/cli, each call that exits run in a child process whose
 * status and stderr are compared with the text the header promises:
 * llm_cli_long and llm_cli_double at and just past their bounds and on
 * malformed, overflowing and non-finite text; llm_die, llm_warn and
 * llm_usage_error; the progress bar's share of '#' and the line it ends;
 * llm_cli_duration's three forms; llm_cli_refuse_tty on a pseudo-terminal;
 * write errors (/dev/full) found by llm_cli_output_errno, llm_cli_check_output,
 * llm_cli_close_output and the check of stdout at exit; and temporary output
 * files removed when the tool dies or is killed, but not on a signal it
 * handles or ignores.  (llm_cli_threads: test_threads.c.) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "cli.h"
#include "outfile.h"

#define TOOL "tcli"

/* Runs fn(ctx) in a child, its stderr into a file and its stdout onto
 * out_fd (when >= 0), exiting with what fn returns: the child's exit status,
 * or 128 + the signal that ended it; its stderr in text. */
static int run_child(int (*fn)(const void *ctx), const void *ctx, int out_fd, char *text, size_t cap)
{
    char path[600];
    snprintf(path, sizeof path, "%s/stderr.txt", check_tmpdir());
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 2) < 0 || (out_fd >= 0 && dup2(out_fd, 1) < 0)) _exit(99);
        exit(fn(ctx));
    }
    int status = 0;
    waitpid(pid, &status, 0);
    text[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f) {
        text[fread(text, 1, cap - 1, f)] = '\0';
        fclose(f);
    }
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

/* A usage error's two lines. */
static const char *usage_text(char *buf, size_t cap, const char *message)
{
    snprintf(buf, cap, TOOL ": %s\nTry '" TOOL " --help'.\n", message);
    return buf;
}

/* ---- numbers ---- */

typedef struct number_case {
    const char *text;
    long lmin, lmax;   /* llm_cli_long's range */
    double min, max;   /* llm_cli_double's */
    const char *message; /* the usage error */
} number_case;

static int parse_long(const void *ctx)
{
    const number_case *c = ctx;
    llm_cli_long("--n", c->text, c->lmin, c->lmax);
    return 0;
}

static int parse_double(const void *ctx)
{
    const number_case *c = ctx;
    llm_cli_double("--lr", c->text, c->min, c->max);
    return 0;
}

static void check_refusals(int (*parse)(const void *), const number_case *cases, int n)
{
    for (int i = 0; i < n; i++) {
        char err[1024], want[512];
        int status = run_child(parse, &cases[i], -1, err, sizeof err);
        usage_text(want, sizeof want, cases[i].message);
        CHECK_MSG(status == LLM_EXIT_USAGE && !strcmp(err, want), "'%s': status %d, stderr '%s', want '%s'",
                  cases[i].text, status, err, want);
    }
}

static void test_long(void)
{
    CHECK(llm_cli_long("--n", "-5", -5, 5) == -5);
    CHECK(llm_cli_long("--n", "5", -5, 5) == 5);
    CHECK(llm_cli_long("--n", "+3", -5, 5) == 3);
    CHECK(llm_cli_long("--n", "007", 0, 10) == 7); /* decimal, not octal */
    char lo[32], hi[32], past[40], past_msg[160];
    snprintf(lo, sizeof lo, "%ld", LONG_MIN);
    snprintf(hi, sizeof hi, "%ld", LONG_MAX);
    CHECK(llm_cli_long("--n", lo, LONG_MIN, LONG_MAX) == LONG_MIN);
    CHECK(llm_cli_long("--n", hi, LONG_MIN, LONG_MAX) == LONG_MAX);
    /* ten times LONG_MAX overflows: refused, not clamped into the range */
    snprintf(past, sizeof past, "%ld0", LONG_MAX);
    snprintf(past_msg, sizeof past_msg, "--n: '%s' is not an integer in 0..%ld", past, LONG_MAX);
    const number_case bad[] = {
        {.text = "6", .lmin = -5, .lmax = 5, .message = "--n: '6' is not an integer in -5..5"},
        {.text = "-6", .lmin = -5, .lmax = 5, .message = "--n: '-6' is not an integer in -5..5"},
        {.text = "", .lmin = 0, .lmax = 9, .message = "--n: '' is not an integer in 0..9"},
        {.text = "3x", .lmin = 0, .lmax = 9, .message = "--n: '3x' is not an integer in 0..9"},
        {.text = "0x3", .lmin = 0, .lmax = 9, .message = "--n: '0x3' is not an integer in 0..9"},
        {.text = "2.0", .lmin = 0, .lmax = 9, .message = "--n: '2.0' is not an integer in 0..9"},
        {.text = "4 ", .lmin = 0, .lmax = 9, .message = "--n: '4 ' is not an integer in 0..9"},
        {.text = past, .lmin = 0, .lmax = LONG_MAX, .message = past_msg},
    };
    check_refusals(parse_long, bad, (int)(sizeof bad / sizeof bad[0]));
}

static void test_double(void)
{
    CHECK(llm_cli_double("--lr", "0", 0, 1) == 0);
    CHECK(llm_cli_double("--lr", "1", 0, 1) == 1);
    CHECK(llm_cli_double("--lr", "2.5e-4", 0, 1) == 2.5e-4);
    CHECK(llm_cli_double("--lr", "-.5", -1, 1) == -0.5);
    const number_case bad[] = {
        {.text = "1.0001", .min = 0, .max = 1, .message = "--lr: '1.0001' is not a number in 0..1"},
        {.text = "-1e-9", .min = 0, .max = 1, .message = "--lr: '-1e-9' is not a number in 0..1"},
        {.text = "nan", .min = -1e300, .max = 1e300, .message = "--lr: 'nan' is not a number in -1e+300..1e+300"},
        {.text = "inf", .min = 0, .max = INFINITY, .message = "--lr: 'inf' is not a number in 0..inf"},
        {.text = "-infinity", .min = -INFINITY, .max = 0, .message = "--lr: '-infinity' is not a number in -inf..0"},
        {.text = "1e999", .min = 0, .max = INFINITY, .message = "--lr: '1e999' is not a number in 0..inf"},
        {.text = "", .min = 0, .max = 1, .message = "--lr: '' is not a number in 0..1"},
        {.text = "0.5s", .min = 0, .max = 1, .message = "--lr: '0.5s' is not a number in 0..1"},
    };
    check_refusals(parse_double, bad, (int)(sizeof bad / sizeof bad[0]));
}

/* ---- messages ---- */

static int warn_then_die(const void *ctx)
{
    (void)ctx;
    llm_warn("careful: %d left", 3);
    llm_die(LLM_EXIT_DATA, "%s: broken", "x.llmt");
}

static int usage(const void *ctx)
{
    (void)ctx;
    llm_usage_error("--%s needs a value", "model");
}

static void test_messages(void)
{
    CHECK(!strcmp(llm_cli_tool(), TOOL));
    char err[1024], want[256];
    int status = run_child(warn_then_die, NULL, -1, err, sizeof err);
    CHECK_MSG(status == LLM_EXIT_DATA && !strcmp(err, TOOL ": careful: 3 left\n" TOOL ": x.llmt: broken\n"),
              "status %d, stderr '%s'", status, err);
    status = run_child(usage, NULL, -1, err, sizeof err);
    CHECK_MSG(status == LLM_EXIT_USAGE && !strcmp(err, usage_text(want, sizeof want, "--model needs a value")),
              "status %d, stderr '%s'", status, err);
}

/* ---- progress ---- */

/* The bar drawn for frac, then a message: the message starts a line of its
 * own; llm_cli_progress_done ends the bar's line, once. */
static int draw_bar(const void *ctx)
{
    double frac = *(const double *)ctx;
    llm_cli_progress(0.5, "first");
    llm_warn("note");
    llm_cli_progress(frac, "step %d", 7);
    llm_cli_progress_done();
    llm_cli_progress_done();
    return llm_cli_progress_wanted(0) * 10 + llm_cli_progress_wanted(1);
}

static void test_progress(void)
{
    const double fracs[] = {-1, 0, 0.25, 0.5, 0.9, 1, 3};
    for (int i = 0; i < (int)(sizeof fracs / sizeof fracs[0]); i++) {
        char err[1024];
        int status = run_child(draw_bar, &fracs[i], -1, err, sizeof err);
        /* stderr is a file: not wanted unless forced */
        CHECK_MSG(status == 1, "frac %g: progress wanted %d", fracs[i], status);
        const char *note = strstr(err, "\n" TOOL ": note\n\r" TOOL ": [");
        CHECK_MSG(!strncmp(err, "\r" TOOL ": [", 8) && note, "frac %g: '%s'", fracs[i], err);
        if (!note) continue;
        const char *bar = strchr(note + 1, '['), *end = bar ? strchr(bar, ']') : NULL;
        if (!end) continue;
        int width = (int)(end - bar - 1), full = (int)strspn(bar + 1, "#");
        int empty = (int)strspn(bar + 1 + full, ".");
        double want = fmin(fmax(fracs[i], 0), 1) * width;
        CHECK_MSG(width >= 10 && full + empty == width && fabs(full - want) <= 0.5,
                  "frac %g: bar '%.*s'", fracs[i], width + 2, bar);
        CHECK_MSG(!strcmp(end, "] step 7\033[K\n"), "frac %g: bar ends '%s'", fracs[i], end);
    }
}

static void test_duration(void)
{
    const struct {
        double seconds;
        const char *text;
    } cases[] = {{0, "0s"}, {42, "42s"}, {59, "59s"}, {60, "1m00s"}, {185, "3m05s"}, {3599, "59m59s"},
                 {3600, "1h00m"}, {7260, "2h01m"}, {7319, "2h01m"}, {360000, "100h00m"}, {-5, "0s"}};
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        char buf[32];
        CHECK(llm_cli_duration(cases[i].seconds, buf, sizeof buf) == buf);
        CHECK_MSG(!strcmp(buf, cases[i].text), "%g s: '%s', want '%s'", cases[i].seconds, buf, cases[i].text);
    }
    char small[4];
    llm_cli_duration(185, small, sizeof small); /* cut, terminated */
    CHECK_MSG(!strcmp(small, "3m0"), "'%s'", small);
}

static void test_now(void)
{
    double t0 = llm_cli_now();
    nanosleep(&(struct timespec){.tv_nsec = 30 * 1000 * 1000}, NULL);
    double t1 = llm_cli_now();
    CHECK_MSG(t1 - t0 >= 0.03 && t1 - t0 < 10, "30 ms slept, %g s measured", t1 - t0);
}

/* ---- terminals and write errors ---- */

static int refuse(const void *ctx)
{
    const int *fd_force = ctx;
    llm_cli_refuse_tty(fd_force[0], fd_force[1]);
    return 0;
}

static void test_refuse_tty(void)
{
    char err[1024], want[256];
    char path[600];
    snprintf(path, sizeof path, "%s/binary", check_tmpdir());
    int file = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(run_child(refuse, (int[2]){file, 0}, -1, err, sizeof err) == 0 && !err[0]);
    close(file);
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    const char *name = master >= 0 && grantpt(master) == 0 && unlockpt(master) == 0 ? ptsname(master) : NULL;
    int tty = name ? open(name, O_RDWR | O_NOCTTY) : -1;
    if (tty < 0) {
        if (master >= 0) close(master);
        check_skip("no pseudo-terminal to write to");
        return;
    }
    int status = run_child(refuse, (int[2]){tty, 0}, -1, err, sizeof err);
    usage_text(want, sizeof want, "refusing to write binary data to a terminal (redirect it, or use --force)");
    CHECK_MSG(status == LLM_EXIT_USAGE && !strcmp(err, want), "status %d, stderr '%s'", status, err);
    CHECK(run_child(refuse, (int[2]){tty, 1}, -1, err, sizeof err) == 0 && !err[0]); /* --force */
    close(tty);
    close(master);
}

/* What a stream to /dev/full (every write fails, ENOSPC) is told to do. */
enum full_action { CHECK_NO_FLUSH, CHECK_FLUSH, CLOSE, STDOUT_AT_EXIT, DIE_AFTER_STDOUT, NOTHING_WRITTEN };

static int write_full(const void *ctx)
{
    enum full_action act = *(const enum full_action *)ctx;
    if (act == NOTHING_WRITTEN) {
        close(1); /* started without a stdout and never wrote to it: no error */
        return 0;
    }
    if (act == STDOUT_AT_EXIT || act == DIE_AFTER_STDOUT) {
        printf("lost\n"); /* stdout is /dev/full: found at exit */
        if (act == DIE_AFTER_STDOUT) llm_die(3, "boom");
        return 0;
    }
    FILE *fp = fopen("/dev/full", "w");
    fputs("lost\n", fp);
    if (act == CLOSE) llm_cli_close_output(fp, "out.txt");
    else llm_cli_check_output(fp, "out.txt", act == CHECK_FLUSH);
    return 0;
}

static void test_write_errors(void)
{
    int full = open("/dev/full", O_WRONLY);
    if (full < 0) {
        check_skip("no /dev/full");
        return;
    }
    /* buffered: no write has failed until the flush */
    FILE *fp = fopen("/dev/full", "w");
    fputs("x", fp);
    CHECK(llm_cli_output_errno(fp, 0) == 0);
    CHECK_MSG(llm_cli_output_errno(fp, 1) == ENOSPC, "%d", llm_cli_output_errno(fp, 0));
    CHECK(llm_cli_output_errno(fp, 0) == ENOSPC); /* stays failed */
    fclose(fp);
    char good[600];
    snprintf(good, sizeof good, "%s/good.txt", check_tmpdir());
    fp = fopen(good, "w");
    fputs("x", fp);
    CHECK(llm_cli_output_errno(fp, 1) == 0);
    fclose(fp);

    char want[256], err[1024];
    snprintf(want, sizeof want, TOOL ": out.txt: write: %s\n", strerror(ENOSPC));
    const struct {
        enum full_action act;
        int status;
        const char *stderr_text;
    } cases[] = {
        {CHECK_NO_FLUSH, 0, ""}, /* nothing failed yet; at exit fclose is not ours */
        {CHECK_FLUSH, LLM_EXIT_DATA, want},
        {CLOSE, LLM_EXIT_DATA, want},
        {DIE_AFTER_STDOUT, 3, TOOL ": boom\n"}, /* dying: the exit check stays quiet */
        {NOTHING_WRITTEN, 0, ""},
    };
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        int status = run_child(write_full, &cases[i].act, full, err, sizeof err);
        CHECK_MSG(status == cases[i].status && !strcmp(err, cases[i].stderr_text),
                  "case %d: status %d, stderr '%s'", i, status, err);
    }
    char at_exit[256];
    snprintf(at_exit, sizeof at_exit, TOOL ": stdout: write: %s\n", strerror(ENOSPC));
    enum full_action act = STDOUT_AT_EXIT;
    int status = run_child(write_full, &act, full, err, sizeof err);
    CHECK_MSG(status == LLM_EXIT_DATA && !strcmp(err, at_exit), "stdout at exit: status %d, stderr '%s'", status, err);
    close(full);
}

/* ---- temporary files ---- */

/* How a child with a temporary output open ends. */
typedef struct ending {
    const char *dir;
    int how; /* a signal number, or one of the negative values below */
} ending;
enum { END_DIE = -1, END_USAGE = -2, END_COMMIT_THEN_DIE = -3 };

static void on_usr2(int sig) { (void)sig; }

static int end_with_temp(const void *ctx)
{
    const ending *e = ctx;
    signal(SIGUSR2, on_usr2); /* the tool's own handler, and an ignored signal: left as they are */
    signal(SIGHUP, SIG_IGN);
    char path[700];
    snprintf(path, sizeof path, "%s/out.bin", e->dir);
    llm_error err = {0};
    llm_outfile *f;
    if (llm_outfile_open(&f, path, &err) < 0 || write(llm_outfile_fd(f), "data", 4) != 4) return 50;
    if (e->how == END_COMMIT_THEN_DIE) {
        if (llm_outfile_commit(f, &err) < 0) return 51;
        llm_die(4, "after the commit");
    }
    if (e->how == END_DIE) llm_die(4, "died");
    if (e->how == END_USAGE) llm_usage_error("bad");
    raise(e->how);
    llm_outfile_abort(f); /* the signal did not end the tool */
    return 0;
}

/* The names in dir, space-separated. */
static void list_dir(const char *dir, char *out, size_t cap)
{
    out[0] = '\0';
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            snprintf(out + strlen(out), cap - strlen(out), "%s ", de->d_name);
    if (d) closedir(d);
}

static void test_temp_files(void)
{
    const struct {
        int how, status;
        const char *left; /* what dir holds after */
    } cases[] = {
        {END_DIE, 4, ""},
        {END_USAGE, LLM_EXIT_USAGE, ""},
        {END_COMMIT_THEN_DIE, 4, "out.bin "},
        {SIGINT, 128 + SIGINT, ""},
        {SIGTERM, 128 + SIGTERM, ""},
        {SIGQUIT, 128 + SIGQUIT, ""},
        {SIGUSR1, 128 + SIGUSR1, ""},
        {SIGPIPE, 128 + SIGPIPE, ""},
        {SIGXFSZ, 128 + SIGXFSZ, ""},
        {SIGRTMIN + 2, 128 + SIGRTMIN + 2, ""},
        {SIGUSR2, 0, ""}, /* handled by the tool: it goes on, then aborts the output */
        {SIGHUP, 0, ""},  /* ignored */
    };
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        char dir[600], left[1024], err[1024];
        snprintf(dir, sizeof dir, "%s/temp%d", check_tmpdir(), i);
        mkdir(dir, 0700);
        ending e = {dir, cases[i].how};
        int status = run_child(end_with_temp, &e, -1, err, sizeof err);
        list_dir(dir, left, sizeof left);
        CHECK_MSG(status == cases[i].status && !strcmp(left, cases[i].left),
                  "case %d: status %d, left '%s', stderr '%s'", i, status, left, err);
    }
}

int main(void)
{
    llm_cli_init(TOOL);
    RUN(test_long);
    RUN(test_double);
    RUN(test_messages);
    RUN(test_progress);
    RUN(test_duration);
    RUN(test_now);
    RUN(test_refuse_tty);
    RUN(test_write_errors);
    RUN(test_temp_files);
    return check_done();
}
