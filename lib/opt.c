/* opt — getopt_long driven by a table of options: parsing, storing,
 * exclusion checks and --help text. */
#include "opt.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { CODE_BASE = 256 }; /* getopt's code of option i without a short name: CODE_BASE + i */

static int count(const llm_opt_spec *spec)
{
    int n = 0;
    while (spec->opts[n].name) n++;
    return n;
}

llm_opt *llm_opt_find(llm_opt_spec *spec, const char *name)
{
    for (llm_opt *o = spec->opts; o->name; o++)
        if (!strcmp(o->name, name)) return o;
    return NULL;
}

int llm_opt_given(llm_opt_spec *spec, const char *name)
{
    const llm_opt *o = llm_opt_find(spec, name);
    return o && o->given;
}

/* Exits 2 with "tool: [command: ]message" and the hint to try --help. */
static void __attribute__((noreturn, format(printf, 2, 3)))
opt_error(const llm_opt_spec *spec, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (spec->command) llm_usage_error("%s: %s", spec->command, msg);
    llm_usage_error("%s", msg);
}

/* "-n" or "--tokens": how the user would have written it, for messages. */
static const char *spelled(const llm_opt *o, char *buf, size_t n)
{
    if (o->short_name && !o->name[1]) snprintf(buf, n, "-%c", o->short_name);
    else snprintf(buf, n, "--%s", o->name);
    return buf;
}

/* The index of text among choices "a|b|c", or -1. */
static int choice_index(const char *choices, const char *text)
{
    size_t len = strlen(text);
    int i = 0;
    for (const char *p = choices; *p; i++) {
        size_t n = strcspn(p, "|");
        if (n == len && !strncmp(p, text, n)) return i;
        p += n + (p[n] == '|');
    }
    return -1;
}

/* Stores arg into o's destination, or exits 2 naming the option. */
static void store(llm_opt *o, const char *arg)
{
    char name[64], why[64];
    spelled(o, name, sizeof name);
    char *end;
    switch (o->kind) {
    case LLM_OPT_SET: *(int *)o->dest = 1; break;
    case LLM_OPT_CLEAR: *(int *)o->dest = 0; break;
    case LLM_OPT_LONG: {
        errno = 0;
        long v = strtol(arg, &end, 10);
        /* as long double, exact for every long (a double would take 2^62 + 1 for 2^62) */
        if (errno || end == arg || *end || (long double)v < o->min || (long double)v > o->max)
            llm_usage_error("%s: '%s' is not an integer in %.0f..%.0f", name, arg, o->min, o->max);
        *(long *)o->dest = v;
        break;
    }
    case LLM_OPT_DOUBLE: {
        errno = 0;
        double v = strtod(arg, &end);
        if (errno || end == arg || *end || !isfinite(v) || v < o->min || v > o->max)
            llm_usage_error("%s: '%s' is not a number in %g..%g", name, arg, o->min, o->max);
        *(double *)o->dest = v;
        break;
    }
    case LLM_OPT_STRING: *(const char **)o->dest = arg; break;
    case LLM_OPT_LIST: {
        llm_opt_list *l = o->dest;
        if (l->n >= (int)o->max) llm_usage_error("%s: more than %.0f of them", name, o->max);
        l->items[l->n++] = arg;
        break;
    }
    case LLM_OPT_CHOICE: {
        int i = o->lookup ? o->lookup(arg) : choice_index(o->choices, arg);
        if (i < 0) llm_usage_error("%s: '%s' is not one of %s", name, arg, o->choices);
        *(int *)o->dest = i;
        break;
    }
    case LLM_OPT_CALL: {
        const char *bad = o->parse(o->dest, arg, why);
        if (bad) llm_usage_error("%s: %s", name, bad);
        break;
    }
    }
}

/* Exits 2 when two options of one exclusive group ("a b c": names, one
 * space apart) were given, naming the group: "--a, --b and --c exclude each
 * other". */
static void check_exclusive(llm_opt_spec *spec)
{
    for (const char *const *g = spec->exclusive; g && *g; g++) {
        int words = 1, given = 0;
        for (const char *p = *g; *p; p++) words += *p == ' ';
        char names[512] = "";
        size_t at = 0;
        const char *p = *g;
        for (int i = 0; i < words; i++) {
            size_t n = strcspn(p, " ");
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)n, p);
            given += llm_opt_given(spec, name);
            if (at < sizeof names)
                at += (size_t)snprintf(names + at, sizeof names - at, "%s--%s",
                                       i == 0 ? "" : i == words - 1 ? " and " : ", ", name);
            p += n + (p[n] == ' ');
        }
        if (given > 1) opt_error(spec, "%s exclude each other", names);
    }
}

int llm_opt_parse(llm_opt_spec *spec, int argc, char **argv)
{
    int n = count(spec);
    struct option *longs = calloc((size_t)n + 3, sizeof *longs);
    char *shorts = malloc(3 * (size_t)n + 8);
    if (!longs || !shorts) llm_die(LLM_EXIT_DATA, "out of memory");
    size_t s = 0;
    shorts[s++] = ':'; /* a missing value is ':' */
    for (int i = 0; i < n; i++) {
        llm_opt *o = &spec->opts[i];
        int has_arg = o->kind != LLM_OPT_SET && o->kind != LLM_OPT_CLEAR;
        o->given = 0;
        longs[i] = (struct option){o->name, has_arg ? required_argument : no_argument, NULL,
                                   o->short_name ? o->short_name : CODE_BASE + i};
        if (o->short_name) {
            shorts[s++] = (char)o->short_name;
            if (has_arg) shorts[s++] = ':';
        }
    }
    longs[n] = (struct option){"help", no_argument, NULL, 'h'};
    longs[n + 1] = (struct option){"version", no_argument, NULL, 'V'};
    memcpy(shorts + s, "hV", 3);
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
        if (c == 'h') {
            llm_opt_help(spec, stdout);
            exit(LLM_EXIT_OK);
        }
        if (c == 'V') {
            printf("%s (llmpipe) %s\n", spec->tool, LLM_VERSION);
            exit(LLM_EXIT_OK);
        }
        if (c == '?' || c == ':') {
            const char *what = argv[optind - 1];
            if (c == ':') opt_error(spec, "%s needs a value", what);
            opt_error(spec, "unknown option '%s'", what);
        }
        llm_opt *o = NULL;
        for (int i = 0; i < n && !o; i++)
            if ((spec->opts[i].short_name ? spec->opts[i].short_name : CODE_BASE + i) == c) o = &spec->opts[i];
        o->given++;
        store(o, optarg);
    }
    free(longs);
    free(shorts);
    if (spec->operands >= 0 && argc - optind > spec->operands)
        opt_error(spec, "unexpected argument '%s'", argv[optind + spec->operands]);
    check_exclusive(spec);
    return optind;
}

void llm_opt_help(const llm_opt_spec *spec, FILE *f)
{
    enum { COLUMN = 24, WIDTH = 100 }; /* where the help text starts; a line's width at most */
    fprintf(f, "%s\n", spec->usage);
    if (spec->about) fprintf(f, "\n%s\n", spec->about);
    for (const llm_opt *o = spec->opts; o->name; o++) {
        if (o->section || o == spec->opts) fprintf(f, "\n%s\n", o->section ? o->section : "Options:");
        char head[96];
        int len;
        if (o->short_name && !o->name[1]) len = snprintf(head, sizeof head, "  -%c", o->short_name);
        else if (o->short_name) len = snprintf(head, sizeof head, "  -%c, --%s", o->short_name, o->name);
        else len = snprintf(head, sizeof head, "      --%s", o->name);
        if (o->arg && len < (int)sizeof head) len += snprintf(head + len, sizeof head - (size_t)len, " %s", o->arg);
        fputs(head, f);
        const char *help = o->help ? o->help : "";
        for (int line = 0; *help || line == 0; line++) {
            size_t n = strcspn(help, "\n");
            if (line == 0 && len >= COLUMN - 1) fprintf(f, "\n%*s", COLUMN, "");
            else if (line == 0) fprintf(f, "%*s", COLUMN - len, "");
            else fprintf(f, "%*s", COLUMN, "");
            fprintf(f, "%.*s", (int)n, help);
            help += n + (help[n] == '\n');
            if (!*help && o->def) { /* after the text, or below it when the line would grow too long */
                if (COLUMN + n + strlen(" (default )") + strlen(o->def) > WIDTH) fprintf(f, "\n%*s", COLUMN, "");
                else fputc(' ', f);
                fprintf(f, "(default %s)", o->def);
            }
            fputc('\n', f);
        }
    }
    fprintf(f, "\n  -h, --help            this text\n  -V, --version         the version\n");
    if (spec->footer) fprintf(f, "\n%s\n", spec->footer);
}
