/* test_outfile — what -o gets: a regular file replaced whole through a
 * temporary file (and nothing left after an abort), a FIFO written directly
 * to its reader and still a FIFO, a character device left a device, a
 * symbolic link kept with the file it points to replaced, a directory
 * refused, and every temporary file reported created and released once. */
#include "check.h"
#include "outfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

static char path_in[4096];

static const char *in_tmp(const char *name)
{
    snprintf(path_in, sizeof path_in, "%s/%s", check_tmpdir(), name);
    return path_in;
}

/* Entries of the test's directory whose names contain ".tmp.". */
static int temp_files_left(void)
{
    DIR *d = opendir(check_tmpdir());
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

static int write_str(llm_outfile *f, const char *s)
{
    return write(llm_outfile_fd(f), s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
}

/* The whole file as a string (static buffer), or "" when unreadable. */
static const char *contents(const char *path)
{
    static char buf[256];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? 0 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0) close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* The watcher's log: creations and releases, by path. */
static char created[16][4096], released[16][4096];
static int n_created, n_released;
static void on_create(const char *p) { snprintf(created[n_created++ % 16], 4096, "%s", p); }
static void on_release(const char *p) { snprintf(released[n_released++ % 16], 4096, "%s", p); }

static void test_regular_file(void)
{
    llm_error err = {0};
    char target[4096];
    snprintf(target, sizeof target, "%s", in_tmp("a.txt"));
    FILE *fp = fopen(target, "w");
    fputs("old", fp);
    fclose(fp);
    llm_outfile *f;
    n_created = n_released = 0;
    llm_outfile_watch(on_create, on_release);
    CHECK_OK(llm_outfile_open(&f, target, &err), err);
    CHECK(write_str(f, "new") == 0);
    CHECK(strcmp(contents(target), "old") == 0); /* untouched until the commit */
    CHECK(temp_files_left() == 1);
    CHECK(strcmp(llm_outfile_path(f), target) == 0);
    CHECK_OK(llm_outfile_commit(f, &err), err);
    CHECK(strcmp(contents(target), "new") == 0);
    CHECK(temp_files_left() == 0);
    CHECK(n_created == 1 && n_released == 1 && strcmp(created[0], released[0]) == 0);
    CHECK(strncmp(created[0], target, strlen(target)) == 0 && strstr(created[0], ".tmp.") != NULL);

    CHECK_OK(llm_outfile_open(&f, target, &err), err); /* aborted: the old file stays */
    CHECK(write_str(f, "partial") == 0);
    llm_outfile_abort(f);
    CHECK(strcmp(contents(target), "new") == 0);
    CHECK(temp_files_left() == 0);
    CHECK(n_created == 2 && n_released == 2 && strcmp(created[1], released[1]) == 0);
    llm_outfile_watch(NULL, NULL);
}

typedef struct reader {
    const char *path;
    char got[64];
} reader;

static void *read_fifo(void *arg)
{
    reader *r = arg;
    int fd = open(r->path, O_RDONLY);
    size_t n = 0;
    for (ssize_t k; fd >= 0 && n < sizeof r->got - 1 && (k = read(fd, r->got + n, sizeof r->got - 1 - n)) > 0;)
        n += (size_t)k;
    r->got[n] = '\0';
    if (fd >= 0) close(fd);
    return NULL;
}

static void test_fifo(void)
{
    llm_error err = {0};
    char fifo[4096];
    snprintf(fifo, sizeof fifo, "%s", in_tmp("p"));
    if (mkfifo(fifo, 0600) < 0) {
        check_skip("mkfifo failed");
        return;
    }
    reader r = {.path = fifo};
    pthread_t th;
    pthread_create(&th, NULL, read_fifo, &r);
    n_created = n_released = 0;
    llm_outfile_watch(on_create, on_release);
    llm_outfile *f;
    CHECK_OK(llm_outfile_open(&f, fifo, &err), err); /* waits for the reader */
    CHECK(write_str(f, "through the fifo") == 0);
    CHECK(temp_files_left() == 0);
    CHECK_OK(llm_outfile_commit(f, &err), err); /* closes: the reader sees the end */
    struct timespec limit;
    clock_gettime(CLOCK_REALTIME, &limit);
    limit.tv_sec += 10;
    if (!CHECK_MSG(pthread_timedjoin_np(th, NULL, &limit) == 0, "the reader still waits after 10 s")) {
        pthread_cancel(th); /* blocked in open() of a FIFO nobody writes */
        pthread_join(th, NULL);
    }
    CHECK_MSG(strcmp(r.got, "through the fifo") == 0, "the reader got '%s'", r.got);
    struct stat st;
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
    CHECK(n_created == 0 && n_released == 0);
    llm_outfile_watch(NULL, NULL);
}

/* /dev/null, or a node made here when allowed (no system file at stake). */
static void test_char_device(void)
{
    llm_error err = {0};
    char dev[4096];
    snprintf(dev, sizeof dev, "%s", in_tmp("null"));
    if (mknod(dev, S_IFCHR | 0666, makedev(1, 3)) < 0) snprintf(dev, sizeof dev, "/dev/null");
    struct stat st;
    if (stat(dev, &st) < 0 || !S_ISCHR(st.st_mode)) {
        check_skip("no character device to write to");
        return;
    }
    llm_outfile *f;
    CHECK_OK(llm_outfile_open(&f, dev, &err), err);
    CHECK(write_str(f, "discarded") == 0);
    CHECK_OK(llm_outfile_commit(f, &err), err);
    CHECK(lstat(dev, &st) == 0 && S_ISCHR(st.st_mode));
    CHECK(temp_files_left() == 0);
    CHECK_OK(llm_outfile_open(&f, dev, &err), err); /* an abort leaves the device too */
    llm_outfile_abort(f);
    CHECK(lstat(dev, &st) == 0 && S_ISCHR(st.st_mode));
    if (strcmp(dev, "/dev/null") != 0) unlink(dev);
}

static void test_symlink(void)
{
    llm_error err = {0};
    char real[4096], link[4096], chain[4096], dangling[4096];
    snprintf(real, sizeof real, "%s", in_tmp("real.txt"));
    snprintf(link, sizeof link, "%s", in_tmp("link.txt"));
    snprintf(chain, sizeof chain, "%s", in_tmp("chain.txt"));
    snprintf(dangling, sizeof dangling, "%s", in_tmp("dangling.txt"));
    FILE *fp = fopen(real, "w");
    fputs("old", fp);
    fclose(fp);
    /* relative links, resolved beside the link: chain -> link -> real */
    CHECK(symlink("real.txt", link) == 0 && symlink("link.txt", chain) == 0);
    CHECK(symlink("made-by-the-link.txt", dangling) == 0);
    llm_outfile *f;
    CHECK_OK(llm_outfile_open(&f, chain, &err), err);
    CHECK(write_str(f, "new") == 0);
    CHECK_OK(llm_outfile_commit(f, &err), err);
    struct stat st;
    CHECK(lstat(chain, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(lstat(real, &st) == 0 && S_ISREG(st.st_mode));
    CHECK(strcmp(contents(real), "new") == 0);
    CHECK_OK(llm_outfile_open(&f, dangling, &err), err);
    CHECK(write_str(f, "made") == 0);
    CHECK_OK(llm_outfile_commit(f, &err), err);
    CHECK(lstat(dangling, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(strcmp(contents(in_tmp("made-by-the-link.txt")), "made") == 0);
    CHECK(temp_files_left() == 0);

    char loop[4096];
    snprintf(loop, sizeof loop, "%s", in_tmp("loop.txt"));
    CHECK(symlink("loop.txt", loop) == 0);
    CHECK(llm_outfile_open(&f, loop, &err) == LLM_ERR_IO);
    CHECK_MSG(strstr(err.msg, strerror(ELOOP)) != NULL, "%s", err.msg);
}

static void test_directory_and_stdout(void)
{
    llm_error err = {0};
    llm_outfile *f;
    CHECK(llm_outfile_open(&f, check_tmpdir(), &err) == LLM_ERR_IO);
    CHECK_MSG(strstr(err.msg, "is a directory") != NULL, "%s", err.msg);
    CHECK(temp_files_left() == 0);
    CHECK_OK(llm_outfile_open(&f, "-", &err), err);
    CHECK(llm_outfile_fd(f) == 1 && strcmp(llm_outfile_path(f), "stdout") == 0);
    CHECK_OK(llm_outfile_commit(f, &err), err);
    CHECK(fcntl(1, F_GETFD) >= 0); /* stdout stays open */
}

int main(void)
{
    RUN(test_regular_file);
    RUN(test_fifo);
    RUN(test_char_device);
    RUN(test_symlink);
    RUN(test_directory_and_stdout);
    return check_done();
}
