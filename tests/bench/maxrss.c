/* maxrss — run a command and report its peak resident set size, the way
 * /usr/bin/time -f %M does, so that the training benchmark measures every
 * tool alike without needing GNU time.
 *
 *   usage: maxrss FILE COMMAND [ARG...]
 *
 * Runs COMMAND (searched in PATH) with stdin, stdout and stderr untouched,
 * waits for it and writes "maxrss_kib=N" (wait4's ru_maxrss: the largest
 * resident set the process reached, across exec) to FILE.  Exits with the
 * command's status (128 + signal when it was killed; 127 when it cannot be
 * run).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: maxrss FILE COMMAND [ARG...]\n");
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("maxrss: fork");
        return 127;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "maxrss: %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0)
        if (errno != EINTR) {
            perror("maxrss: wait4");
            return 127;
        }
    FILE *f = fopen(argv[1], "w");
    if (!f || fprintf(f, "maxrss_kib=%ld\n", ru.ru_maxrss) < 0 || fclose(f) != 0) {
        fprintf(stderr, "maxrss: %s: %s\n", argv[1], strerror(errno));
        return 127;
    }
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}
