/* cli — messages, exit statuses and option parsing for the tools. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

static const char *tool_name = "llmpipe";

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
