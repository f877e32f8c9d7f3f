/* Unit tests for lib/opt: values of every kind stored (a choice also by a
 * library's lookup), defaults kept, options and operands in any order,
 * counts, --help's text from the table (a long default below its text), and
 * each usage error (bad number, out of range, unknown option, missing value,
 * bad choice, too many items or operands, exclusive options, a subcommand's
 * name before its messages) exiting 2 with its message — run in a child
 * process, whose exit status and stderr are checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "cli.h"
#include "opt.h"

typedef struct values {
    long n, big;
    double temp;
    const char *model;
    int quiet, tie, mode;
    const char *names[3];
    llm_opt_list list;
    int calls;
} values;

static const char *parse_even(void *dest, const char *arg, char why[64])
{
    int v = atoi(arg);
    if (v % 2) {
        snprintf(why, 64, "%d is odd", v);
        return why;
    }
    *(int *)dest += v;
    return NULL;
}

/* A table over v, as a tool would declare it. */
static void make_spec(llm_opt_spec *spec, llm_opt *opts, values *v)
{
    static const char *const exclusive[] = {"model tie even", NULL};
    *v = (values){.n = 256, .temp = 0.8, .tie = 1, .list = {.items = v->names}};
    llm_opt table[] = {
        {"model", 'm', LLM_OPT_STRING, &v->model, .arg = "CKPT", .help = "the checkpoint", .section = "Model:"},
        {"tokens", 'n', LLM_OPT_LONG, &v->n, .arg = "N", .help = "tokens to generate", .def = "256", .min = 0, .max = 1000},
        {"temp", 0, LLM_OPT_DOUBLE, &v->temp, .arg = "T", .help = "temperature\n0 = greedy", .def = "0.8", .min = 0, .max = 10},
        {"tie", 0, LLM_OPT_SET, &v->tie, .help = "tie the classifier"},
        {"no-tie", 0, LLM_OPT_CLEAR, &v->tie, .help = "an untied classifier"},
        {"name", 0, LLM_OPT_LIST, &v->list, .arg = "GLOB", .help = "repeatable", .max = 3},
        {"verbose-mode", 0, LLM_OPT_CHOICE, &v->mode, .arg = "M", .help = "how", .choices = "off|some|all", .section = "Other:"},
        {"even", 0, LLM_OPT_CALL, &v->calls, .arg = "E", .help = "an even number", .parse = parse_even},
        {"quiet", 'q', LLM_OPT_SET, &v->quiet, .help = "quiet"},
        {"big", 0, LLM_OPT_LONG, &v->big, .arg = "B", .help = "beyond a double's 53 bits", .min = -(1L << 62),
         .max = 1L << 62},
        {0},
    };
    memcpy(opts, table, sizeof table);
    *spec = (llm_opt_spec){.tool = "test-opt", .usage = "usage: test-opt [options] FILE...", .opts = opts,
                           .exclusive = exclusive, .footer = "See nothing.", .operands = 2};
}

static int argv_of(char *line, char **argv)
{
    int n = 0;
    for (char *t = strtok(line, " "); t; t = strtok(NULL, " ")) argv[n++] = t;
    argv[n] = NULL;
    return n;
}

static void test_values(void)
{
    llm_opt opts[11];
    llm_opt_spec spec;
    values v;
    make_spec(&spec, opts, &v);
    char line[] = "test-opt a.txt -n 12 --temp=0.25 --no-tie --name x* -q --name y --even 4 b.txt --verbose-mode all --even 6 --big 4611686018427387904";
    char *argv[40];
    int argc = argv_of(line, argv);
    int first = llm_opt_parse(&spec, argc, argv);
    CHECK(v.n == 12 && v.temp == 0.25 && v.tie == 0 && v.quiet == 1 && v.mode == 2 && v.calls == 10);
    CHECK(v.model == NULL && v.big == 1L << 62);
    CHECK(v.list.n == 2 && !strcmp(v.names[0], "x*") && !strcmp(v.names[1], "y"));
    CHECK_MSG(argc - first == 2 && !strcmp(argv[first], "a.txt") && !strcmp(argv[first + 1], "b.txt"),
              "operands %d from %d", argc - first, first);
    CHECK(llm_opt_given(&spec, "even") && llm_opt_find(&spec, "even")->given == 2);
    CHECK(!llm_opt_given(&spec, "model") && !llm_opt_given(&spec, "no-such"));
    /* defaults stay when not given; a second parse starts afresh */
    make_spec(&spec, opts, &v);
    char line2[] = "test-opt -mmodel.llmt";
    argc = argv_of(line2, argv);
    first = llm_opt_parse(&spec, argc, argv);
    CHECK(first == argc && v.n == 256 && v.temp == 0.8 && v.tie == 1 && !strcmp(v.model, "model.llmt"));
    CHECK(!llm_opt_given(&spec, "even"));
}

static void test_help(void)
{
    llm_opt opts[11];
    llm_opt_spec spec;
    values v;
    make_spec(&spec, opts, &v);
    llm_opt_find(&spec, "name")->def = "every name there is, in the order given: too long for the line";
    char path[512];
    snprintf(path, sizeof path, "%s/help.txt", check_tmpdir());
    FILE *f = fopen(path, "w+");
    llm_opt_help(&spec, f);
    rewind(f);
    char text[4096];
    size_t len = fread(text, 1, sizeof text - 1, f);
    text[len] = 0;
    fclose(f);
    const char *want[] = {"usage: test-opt [options] FILE...\n", "\nModel:\n", "  -m, --model CKPT      the checkpoint\n",
                          "  -n, --tokens N        tokens to generate (default 256)\n",
                          "      --temp T          temperature\n                        0 = greedy (default 0.8)\n",
                          "      --no-tie          an untied classifier\n",
                          "      --name GLOB       repeatable\n                        (default every name there is, "
                          "in the order given: too long for the line)\n", "\nOther:\n",
                          "      --verbose-mode M  how\n", "  -h, --help", "See nothing.\n"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK_MSG(strstr(text, want[i]) != NULL, "no '%s' in --help:\n%s", want[i], text);
}

/* Runs the parse of line in a child, the table changed by adjust when not
 * NULL: its exit status, and stderr in err. */
static int parse_in_child(const char *line, void (*adjust)(llm_opt_spec *), char *err, size_t cap)
{
    int fds[2];
    if (pipe(fds) < 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        dup2(fds[1], 1);
        llm_cli_init("test-opt");
        llm_opt opts[11];
        llm_opt_spec spec;
        values v;
        make_spec(&spec, opts, &v);
        if (adjust) adjust(&spec);
        char copy[512], *argv[40];
        snprintf(copy, sizeof copy, "%s", line);
        llm_opt_parse(&spec, argv_of(copy, argv), argv);
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t got;
    while (n + 1 < cap && (got = read(fds[0], err + n, cap - 1 - n)) > 0) n += (size_t)got;
    err[n] = 0;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_errors(void)
{
    const struct {
        const char *line;
        int status;
        const char *message;
    } cases[] = {
        {"t -n 12x", 2, "--tokens: '12x' is not an integer in 0..1000"},
        {"t --tokens 1001", 2, "--tokens: '1001' is not an integer in 0..1000"},
        {"t --temp nan", 2, "--temp: 'nan' is not a number in 0..10"},
        {"t --big 4611686018427387905", 2, "--big: '4611686018427387905' is not an integer in "
                                           "-4611686018427387904..4611686018427387904"},
        {"t --big -4611686018427387905", 2, "--big: '-4611686018427387905' is not an integer"},
        {"t --bogus", 2, "unknown option '--bogus'"},
        {"t -x", 2, "unknown option '-x'"},
        {"t --temp", 2, "--temp needs a value"},
        {"t --verbose-mode most", 2, "--verbose-mode: 'most' is not one of off|some|all"},
        {"t --even 3", 2, "--even: 3 is odd"},
        {"t --name a --name b --name c --name d", 2, "--name: more than 3 of them"},
        {"t a b c", 2, "unexpected argument 'c'"},
        {"t --even 2 -m x", 2, "--model, --tie and --even exclude each other"},
        {"t --help", 0, "usage: test-opt"},
        {"t -V", 0, "test-opt (llmpipe) "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[4096];
        int status = parse_in_child(cases[i].line, NULL, err, sizeof err);
        CHECK_MSG(status == cases[i].status && strstr(err, cases[i].message), "'%s': exit %d, output '%s'",
                  cases[i].line, status, err);
        if (cases[i].status == 2)
            CHECK_MSG(strstr(err, "Try 'test-opt --help'.") != NULL, "'%s': no hint in '%s'", cases[i].line, err);
    }
}

static void as_command(llm_opt_spec *spec) { spec->command = "ls"; }

/* A subcommand's name comes before its unknown options, surplus operands and
 * exclusive options, not before a bad value (as llm-tensor always said). */
static void test_command(void)
{
    const struct {
        const char *line, *message;
    } cases[] = {
        {"t --bogus", "test-opt: ls: unknown option '--bogus'\nTry 'test-opt --help'."},
        {"t a b c", "test-opt: ls: unexpected argument 'c'"},
        {"t --tie -m x", "test-opt: ls: --model, --tie and --even exclude each other"},
        {"t -n x", "test-opt: --tokens: 'x' is not an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[4096];
        int status = parse_in_child(cases[i].line, as_command, err, sizeof err);
        CHECK_MSG(status == 2 && strstr(err, cases[i].message), "'%s': exit %d, output '%s'", cases[i].line, status,
                  err);
    }
}

/* --verbose-mode's names valued as a library would value them. */
static int level_of(const char *name)
{
    return !strcmp(name, "off") ? 0 : !strcmp(name, "some") ? 5 : !strcmp(name, "all") ? 10 : -1;
}

static void with_lookup(llm_opt_spec *spec) { llm_opt_find(spec, "verbose-mode")->lookup = level_of; }

/* A CHOICE with a lookup stores the lookup's value, and refuses what it does not know. */
static void test_lookup(void)
{
    llm_opt opts[16];
    llm_opt_spec spec;
    values v;
    make_spec(&spec, opts, &v);
    with_lookup(&spec);
    char line[] = "test-opt --verbose-mode some";
    char *argv[8];
    llm_opt_parse(&spec, argv_of(line, argv), argv);
    CHECK_MSG(v.mode == 5, "mode %d", v.mode);
    char err[4096];
    int status = parse_in_child("t --verbose-mode most", with_lookup, err, sizeof err);
    CHECK_MSG(status == 2 && strstr(err, "--verbose-mode: 'most' is not one of off|some|all"), "exit %d, '%s'",
              status, err);
}

int main(void)
{
    RUN(test_values);
    RUN(test_help);
    RUN(test_errors);
    RUN(test_command);
    RUN(test_lookup);
    return check_done();
}
