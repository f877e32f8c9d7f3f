/* outfile — temporary file beside the target, renamed into place on commit;
 * FIFOs and devices written directly. */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct llm_outfile {
    int fd;
    int direct;     /* 1: a FIFO or device opened itself, closed on commit */
    char *name;     /* for messages: the path given, "stdout" for "-" */
    char *target;   /* where the temporary file goes: the path, or the file its links end in */
    char *tmp_path; /* NULL for stdout and direct outputs */
};

/* Told of every temporary file (llm_outfile_watch). */
static void (*on_temp_create)(const char *tmp_path);
static void (*on_temp_release)(const char *tmp_path);

void llm_outfile_watch(void (*on_create)(const char *tmp_path), void (*on_release)(const char *tmp_path))
{
    on_temp_create = on_create;
    on_temp_release = on_release;
}

/* Sets f->target to the file a chain of symbolic links at path ends in (a
 * copy of path when it is no link; the name a dangling link points to, which
 * does not exist yet). */
static int follow_links(llm_outfile *f, const char *path, llm_error *err)
{
    char *cur = strdup(path);
    for (int hops = 0; cur; hops++) {
        struct stat st;
        if (lstat(cur, &st) < 0 || !S_ISLNK(st.st_mode)) { /* an lstat error shows on create */
            f->target = cur;
            return 0;
        }
        char link[PATH_MAX];
        ssize_t n = hops < 40 ? readlink(cur, link, sizeof link - 1) : -1;
        if (n < 0) {
            int e = hops < 40 ? errno : ELOOP;
            free(cur);
            return llm_error_set(err, LLM_ERR_IO, "%s: cannot follow the link: %s", path, strerror(e));
        }
        link[n] = '\0';
        const char *slash = strrchr(cur, '/');
        size_t dir = link[0] == '/' || !slash ? 0 : (size_t)(slash - cur) + 1; /* relative: beside the link */
        char *next = malloc(dir + (size_t)n + 1);
        if (next) {
            memcpy(next, cur, dir);
            memcpy(next + dir, link, (size_t)n + 1);
        }
        free(cur);
        cur = next;
    }
    return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", path);
}

/* Opens an existing FIFO or device itself; refuses a directory. */
static int open_direct(llm_outfile *f, const char *path, const struct stat *st, llm_error *err)
{
    if (S_ISDIR(st->st_mode)) return llm_error_set(err, LLM_ERR_IO, "%s: is a directory", path);
    f->fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (f->fd < 0) return llm_error_set(err, LLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    f->direct = 1;
    return 0;
}

/* Creates a temporary file beside f->target. */
static int open_temp(llm_outfile *f, const char *path, llm_error *err)
{
    size_t len = strlen(f->target) + 40;
    if (!(f->tmp_path = malloc(len))) return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", path);
    int e = EEXIST;
    for (int i = 0; i < 100 && e == EEXIST; i++) { /* a name taken: the next one */
        snprintf(f->tmp_path, len, "%s.tmp.%ld.%d", f->target, (long)getpid(), i);
        /* told before the file exists, so a signal just after it appears removes it */
        if (on_temp_create) on_temp_create(f->tmp_path);
        /* readable too: a writer may read back what it wrote (GGUF export does) */
        f->fd = open(f->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f->fd >= 0) return 0;
        e = errno;
        if (on_temp_release) on_temp_release(f->tmp_path);
    }
    free(f->tmp_path);
    f->tmp_path = NULL;
    return llm_error_set(err, LLM_ERR_IO, "%s: cannot create: %s", path, strerror(e));
}

int llm_outfile_open(llm_outfile **out, const char *path, llm_error *err)
{
    int is_stdout = strcmp(path, "-") == 0;
    llm_outfile *f = calloc(1, sizeof *f);
    if (!f || !(f->name = strdup(is_stdout ? "stdout" : path))) {
        free(f);
        return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", path);
    }
    f->fd = -1;
    int rc = 0;
    struct stat st;
    if (is_stdout) f->fd = 1;
    else if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) rc = open_direct(f, path, &st, err);
    else if ((rc = follow_links(f, path, err)) == 0) rc = open_temp(f, path, err);
    if (rc < 0) {
        llm_outfile_abort(f);
        return rc;
    }
    *out = f;
    return 0;
}

int llm_outfile_fd(const llm_outfile *f) { return f->fd; }
const char *llm_outfile_path(const llm_outfile *f) { return f->name; }

int llm_outfile_commit(llm_outfile *f, llm_error *err)
{
    int rc = 0;
    if (f->tmp_path && fsync(f->fd) < 0)
        rc = llm_error_set(err, LLM_ERR_IO, "%s: fsync: %s", f->name, strerror(errno));
    if (f->tmp_path || f->direct) {
        int fd = f->fd;
        f->fd = -1;
        if (close(fd) < 0 && rc == 0) rc = llm_error_set(err, LLM_ERR_IO, "%s: close: %s", f->name, strerror(errno));
    }
    if (f->tmp_path && rc == 0) {
        if (rename(f->tmp_path, f->target) < 0) {
            rc = llm_error_set(err, LLM_ERR_IO, "%s: rename: %s", f->name, strerror(errno));
        } else {
            if (on_temp_release) on_temp_release(f->tmp_path);
            free(f->tmp_path);
            f->tmp_path = NULL;
        }
    }
    llm_outfile_abort(f);
    return rc;
}

void llm_outfile_abort(llm_outfile *f)
{
    if (!f) return;
    if ((f->tmp_path || f->direct) && f->fd >= 0) close(f->fd);
    if (f->tmp_path) {
        unlink(f->tmp_path);
        if (on_temp_release) on_temp_release(f->tmp_path);
        free(f->tmp_path);
    }
    free(f->target);
    free(f->name);
    free(f);
}
