/* cli — what every bin/llm-* tool shares: its name in messages, dying with the
 * right exit status, number parsing for options, and refusing to write binary
 * to a terminal.  This is the one module that prints and exits, and only
 * tools (never other library modules) call it.
 *
 *     llm_cli_init("llm-tensor");
 *     long level = llm_cli_long("--level", optarg, 1, 19);   // exits 2 when bad
 *     if (rc < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);     // "llm-tensor: ..."
 */
#ifndef LLM_CLI_H
#define LLM_CLI_H

#include <stdio.h>

#define LLM_VERSION "0.1.0"

enum { LLM_EXIT_OK = 0, LLM_EXIT_DATA = 1, LLM_EXIT_USAGE = 2 };

/* Sets the tool name put in front of every message, and looks after the
 * tool's outputs until it exits:
 * - every temporary output file (outfile.h: stream writers, checkpoints,
 *   images, tables) is removed if the tool dies (llm_die, llm_usage_error)
 *   or is killed by any signal whose default action ends the process
 *   (SIGINT, SIGTERM, SIGQUIT, SIGUSR1, SIGXFSZ, SIGPIPE, ...) before it is
 *   renamed into place.  A signal the tool handles itself (llm-train's SIGINT
 *   save) or that is ignored stays so; the list has no fixed length;
 * - standard output is flushed and closed at exit: when a write to it failed
 *   the tool says "tool: stdout: write: strerror" and exits 1. */
void llm_cli_init(const char *tool);
const char *llm_cli_tool(void);

/* Prints "tool: message" to stderr and exits with status. */
void llm_die(int status, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
/* Prints "tool: message" to stderr. */
void llm_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "tool: message\nTry 'tool --help'." and exits 2. */
void llm_usage_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* 0 when every write to fp so far succeeded, else the errno of the one that
 * failed; with flush, fp's buffer is pushed to its file first.  Call it after
 * each line or record written to a text output (stdout, a log): the failing
 * write's errno is still at hand then, and a long run stops at once. */
int llm_cli_output_errno(FILE *fp, int flush);
/* Dies "tool: name: write: strerror" (exit 1) when llm_cli_output_errno
 * finds a failed write. */
void llm_cli_check_output(FILE *fp, const char *name, int flush);
/* Flushes and closes fp; dies as llm_cli_check_output (or "name: close:
 * strerror") when a write, the flush or the close failed. */
void llm_cli_close_output(FILE *fp, const char *name);

/* Parses an integer option value in [min, max], or exits 2 naming the option. */
long llm_cli_long(const char *opt, const char *text, long min, long max);
/* Parses a finite number in [min, max], or exits 2 naming the option. */
double llm_cli_double(const char *opt, const char *text, double min, double max);

/* Sets the OpenMP team to n threads (n > 0), and OpenBLAS's with it.  The
 * tools are built against OpenBLAS's OpenMP build (the Makefile prefers it):
 * its kernels then run on OpenMP's threads, one pool, and a product called
 * inside a parallel region runs on its caller's thread alone.  A build
 * against OpenBLAS's own pthreads gets single-threaded BLAS instead (two
 * pools spinning on the same cores fight: 20x slower on 2 cores, measured);
 * llm_cli_init sets that up for the default team too. */
void llm_cli_threads(int n);

/* Progress bars go to stderr, only when it is a terminal or when forced. */
int llm_cli_progress_wanted(int force);
/* Redraws the one-line bar: frac in [0,1] drawn as a bar, then the text. */
void llm_cli_progress(double frac, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ends the bar's line (before other messages, and at the end). */
void llm_cli_progress_done(void);
/* Seconds on a monotonic clock. */
double llm_cli_now(void);
/* Formats seconds as "42s", "3m05s" or "2h01m" into buf. */
char *llm_cli_duration(double seconds, char *buf, size_t size);

/* Exits 2 when fd is a terminal and force is 0: binary output is not for screens. */
void llm_cli_refuse_tty(int fd, int force);

#endif
