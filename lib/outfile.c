/* outfile — temporary file beside the target, renamed into place on commit. */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct llm_outfile {
    int fd;
    char *path;     /* target */
    char *tmp_path; /* NULL for stdout */
};

/* Told of every temporary file (llm_outfile_watch). */
static void (*watcher)(const char *tmp_path);

int llm_outfile_open(llm_outfile **out, const char *path, llm_error *err)
{
    llm_outfile *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", path);
    }
    if (strcmp(path, "-") == 0) {
        f->fd = 1;
        *out = f;
        return 0;
    }
    size_t len = strlen(path) + 40;
    f->tmp_path = malloc(len);
    if (!f->tmp_path) {
        llm_outfile_abort(f);
        return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", path);
    }
    f->fd = -1;
    for (int i = 0; i < 100 && f->fd < 0; i++) {
        snprintf(f->tmp_path, len, "%s.tmp.%ld.%d", path, (long)getpid(), i);
        f->fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f->fd < 0 && errno != EEXIST) break;
    }
    if (f->fd < 0) {
        int e = errno;
        free(f->tmp_path);
        f->tmp_path = NULL;
        llm_outfile_abort(f);
        return llm_error_set(err, LLM_ERR_IO, "%s: cannot create: %s", path, strerror(e));
    }
    if (watcher) watcher(f->tmp_path);
    *out = f;
    return 0;
}

void llm_outfile_watch(void (*on_temp)(const char *tmp_path)) { watcher = on_temp; }

int llm_outfile_fd(const llm_outfile *f) { return f->fd; }
const char *llm_outfile_path(const llm_outfile *f) { return f->path; }
const char *llm_outfile_temp_path(const llm_outfile *f) { return f->tmp_path; }

int llm_outfile_commit(llm_outfile *f, llm_error *err)
{
    if (!f->tmp_path) {
        llm_outfile_abort(f);
        return 0;
    }
    int rc = 0;
    if (fsync(f->fd) < 0)
        rc = llm_error_set(err, LLM_ERR_IO, "%s: fsync: %s", f->path, strerror(errno));
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) < 0 && rc == 0)
        rc = llm_error_set(err, LLM_ERR_IO, "%s: close: %s", f->path, strerror(errno));
    if (rc == 0 && rename(f->tmp_path, f->path) < 0)
        rc = llm_error_set(err, LLM_ERR_IO, "%s: rename: %s", f->path, strerror(errno));
    if (rc == 0) {
        free(f->tmp_path);
        f->tmp_path = NULL;
    }
    llm_outfile_abort(f);
    return rc;
}

void llm_outfile_abort(llm_outfile *f)
{
    if (!f) return;
    if (f->tmp_path) {
        if (f->fd >= 0) close(f->fd);
        unlink(f->tmp_path);
        free(f->tmp_path);
    }
    free(f->path);
    free(f);
}
