/* opt — a tool's command-line options declared once, as a table.
 *
 * From one table of llm_opt entries come the getopt_long parse, each value
 * checked and stored where it goes, --help's text (sections, argument names
 * and defaults) and the check that options which exclude each other were not
 * given together; -h/--help and -V/--version are built in.  Options and
 * operands may come in any order.  A tool with subcommands (llm-tensor) has
 * a spec for each, with .command set.  Like cli.h, this module prints and
 * exits (status 2 on a usage error), and only tools call it.
 *
 *     static long n = 256;  static int quiet;  static const char *model;
 *     static llm_opt opts[] = {
 *         {"model", 'm', LLM_OPT_STRING, &model, .arg = "CKPT", .help = "the checkpoint"},
 *         {"tokens", 'n', LLM_OPT_LONG, &n, .arg = "N", .min = 0, .max = 1 << 24, .help = "tokens to generate", .def = "256"},
 *         {"quiet", 'q', LLM_OPT_SET, &quiet, .help = "no progress or summary"}, {0}};
 *     llm_opt_spec spec = {.tool = "llm-gen", .usage = "usage: llm-gen -m CKPT [options]", .opts = opts};
 *     int first = llm_opt_parse(&spec, argc, argv);   // operands: argv[first..argc)
 */
#ifndef LLM_OPT_H
#define LLM_OPT_H

#include <stdio.h>

typedef enum llm_opt_kind {
    LLM_OPT_SET,    /* no argument: *(int *)dest = 1 */
    LLM_OPT_CLEAR,  /* no argument: *(int *)dest = 0 (--no-x beside --x) */
    LLM_OPT_LONG,   /* an integer in [min, max]: *(long *)dest */
    LLM_OPT_DOUBLE, /* a finite number in [min, max]: *(double *)dest */
    LLM_OPT_STRING, /* the argument as given: *(const char **)dest */
    LLM_OPT_LIST,   /* repeatable: appended to *(llm_opt_list *)dest, at most max items */
    LLM_OPT_CHOICE, /* one of choices ("none|linear|ntk"): its index (or lookup's value) in *(int *)dest */
    LLM_OPT_CALL,   /* the argument handed to parse(dest, arg) */
} llm_opt_kind;

/* Where LLM_OPT_LIST puts its arguments (items points into argv). */
typedef struct llm_opt_list {
    const char **items; /* [max], the caller's array */
    int n;
} llm_opt_list;

typedef struct llm_opt {
    const char *name;     /* the long name without dashes ("top-k"); NULL ends the table */
    int short_name;       /* 'n', or 0 */
    llm_opt_kind kind;
    void *dest;           /* where the value goes (see the kinds) */
    const char *arg;      /* the argument's name in --help ("N", "FILE"); NULL for SET and CLEAR */
    const char *help;     /* what it does, for --help (may hold '\n' for more lines) */
    const char *def;      /* the default as --help shows it ("256"), or NULL */
    double min, max;      /* LONG and DOUBLE: the allowed range; LIST: max items */
    const char *choices;  /* CHOICE: the names, '|'-separated */
    /* CHOICE, when a library names the values: a name's value (negative: none) */
    int (*lookup)(const char *name);
    /* CALL: NULL when arg is good, else why not (static or in why[64]) */
    const char *(*parse)(void *dest, const char *arg, char why[64]);
    const char *section;  /* --help starts a section with this heading at this option */
    int given;            /* filled by llm_opt_parse: how many times it was given */
} llm_opt;

typedef struct llm_opt_spec {
    const char *tool;               /* "llm-gen" (also in cli.h's messages) */
    const char *command;            /* a subcommand ("ls"), put before its messages; or NULL */
    const char *usage;              /* the usage line(s), without a final newline */
    const char *about;              /* a paragraph after the usage in --help, or NULL */
    llm_opt *opts;                  /* ended by an entry with name NULL */
    const char *const *exclusive;   /* NULL-ended: names one space apart, at most one of each */
    const char *footer;             /* the last line of --help ("See llm-gen(1)."), or NULL */
    int operands;                   /* how many operands are allowed (-1: any number) */
} llm_opt_spec;

/* Parses argv[1..argc) by spec: stores every option's value in its dest
 * (defaults are whatever dest holds before), counts them in .given, prints
 * --help or --version to stdout and exits 0 for them, and on anything wrong
 * (an unknown option, a missing or bad value, too many operands, options that
 * exclude each other: "--a, --b and --c exclude each other") prints "tool:
 * what" and "Try 'tool --help'." and exits 2; a subcommand's spec puts its
 * name before all but a bad value's message ("llm-tensor: ls: unknown option
 * '--frob'", but "llm-tensor: --level: 'x' is not an integer in 1..19").
 * Operands are moved to the end of argv (GNU getopt's order); returns the
 * index of the first. */
int llm_opt_parse(llm_opt_spec *spec, int argc, char **argv);

/* The option named name in spec (NULL when none). */
llm_opt *llm_opt_find(llm_opt_spec *spec, const char *name);
/* 1 when the option named name was given (0 when not, or there is none). */
int llm_opt_given(llm_opt_spec *spec, const char *name);

/* Writes spec's --help text to f: the usage, the paragraph, each section's
 * options one per entry ("  -n, --tokens N  tokens to generate (default
 * 256)": the default goes below the text when the line would pass 100
 * columns) and the footer. */
void llm_opt_help(const llm_opt_spec *spec, FILE *f);

#endif
