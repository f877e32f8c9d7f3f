/* cli — messages, exit statuses and option parsing for the tools. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

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
    if (!temp_path || n_temps == MAX_TEMPS) return;
    snprintf(temp_paths[n_temps], sizeof temp_paths[0], "%s", temp_path);
    if (n_temps++ == 0) {
        const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], on_fatal_signal);
    }
}

void llm_cli_init(const char *tool) { tool_name = tool; }
const char *llm_cli_tool(void) { return tool_name; }

static void vmessage(const char *fmt, va_list ap)
{
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
