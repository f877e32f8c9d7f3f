/* pzstd — parallel, in-order decoding of a zstd input's frames (pzstd.h).
 *
 * A ring of slots carries the input through three hands: the cutter thread
 * fills slot k (a whole compressed frame, or bytes that need no worker),
 * a worker decodes frame slots, and the consumer (llm_pzstd_read) empties
 * slot k in order and frees it for the cutter.  One mutex guards the slot
 * states and sequence numbers; the bytes of a slot belong to whichever hand
 * its state names, so they are touched without the lock. */
#include "pzstd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "zframe.h"

enum {
    READ_CHUNK = 1 << 20, /* bytes per pass-through or sequentially decoded slot */
    READ_STEP = 1 << 17,  /* bytes per read(2): a frame's buffer goes to its slot whole, and
                           * only what was read past its end is copied out again */
};

enum slot_state {
    SLOT_FREE,  /* the cutter's */
    SLOT_CUT,   /* a frame waiting for a worker */
    SLOT_BUSY,  /* a worker's */
    SLOT_DONE,  /* the consumer's */
};

enum slot_kind {
    SLOT_FRAME, /* comp: one whole frame; out: its content unless `sequential` */
    SLOT_BYTES, /* out: a frame's content decoded by the cutter */
    SLOT_INPUT, /* out: input passed through as it is (from the first point no frame starts) */
    SLOT_END,   /* the input ended cleanly */
    SLOT_FAIL,  /* the input failed here: code and what */
};

typedef struct slot {
    int state, kind;
    unsigned char *comp;
    size_t comp_len, comp_cap;
    unsigned char *out;
    size_t out_len, out_cap;
    int sequential;     /* a frame no worker could decode whole: the consumer streams it */
    int code;           /* SLOT_FAIL */
    int at_byte;        /* SLOT_FAIL: the message gives the decoded offset */
    char what[384];
} slot;

struct llm_pzstd {
    int fd, own_fd;
    int wake[2];                /* a byte here stops the cutter waiting on fd */
    char label[256];
    int n_workers, n_slots;
    slot *slots;
    pthread_mutex_t mu;
    pthread_cond_t cv_free, cv_work, cv_done;
    uint64_t cut_seq, work_seq, read_seq;
    int stop;
    pthread_t cutter, workers[LLM_PZSTD_MAX_THREADS];
    int cutter_started, n_started;
    /* the cutter's input buffer and sequential decoder */
    unsigned char *in;
    size_t in_pos, in_len, in_cap;
    int in_eof;
    ZSTD_DCtx *cut_dctx;
    /* the consumer's */
    size_t read_pos;            /* bytes of the current slot handed out */
    size_t seq_in_pos;          /* compressed bytes of a sequential frame consumed */
    int seq_active;
    ZSTD_DCtx *seq_dctx;
    uint64_t delivered;
    llm_error fail;             /* code != 0: every later read fails with it */
};

static slot *slot_at(llm_pzstd *p, uint64_t seq) { return &p->slots[seq % (uint64_t)p->n_slots]; }

static int grow(unsigned char **buf, size_t *cap, size_t want)
{
    if (*cap >= want) return 0;
    unsigned char *b = realloc(*buf, want);
    if (!b) return -1;
    *buf = b, *cap = want;
    return 0;
}

/* ---------- the cutter ---------- */

/* The next free slot, or NULL when p is stopping. */
static slot *cut_acquire(llm_pzstd *p)
{
    pthread_mutex_lock(&p->mu);
    slot *s = slot_at(p, p->cut_seq);
    while (s->state != SLOT_FREE && !p->stop) pthread_cond_wait(&p->cv_free, &p->mu);
    int stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    if (stop) return NULL;
    s->sequential = 0;
    s->comp_len = s->out_len = 0;
    return s;
}

static void cut_publish(llm_pzstd *p, slot *s, int kind)
{
    pthread_mutex_lock(&p->mu);
    s->kind = kind;
    s->state = kind == SLOT_FRAME ? SLOT_CUT : SLOT_DONE;
    p->cut_seq++;
    pthread_cond_signal(kind == SLOT_FRAME ? &p->cv_work : &p->cv_done);
    pthread_mutex_unlock(&p->mu);
}

/* Publishes a failure (the cutter then stops). */
static void cut_fail(llm_pzstd *p, int code, int at_byte, const char *fmt, const char *detail)
{
    slot *s = cut_acquire(p);
    if (!s) return;
    s->code = code;
    s->at_byte = at_byte;
    snprintf(s->what, sizeof s->what, fmt, detail);
    cut_publish(p, s, SLOT_FAIL);
}

/* Reads until `want` bytes are buffered, the input ends, or the buffer is at
 * its limit.  0, or -1 after publishing a failure (read error, out of memory)
 * or when stopping. */
static int cut_fill(llm_pzstd *p, size_t want)
{
    while (p->in_len - p->in_pos < want && !p->in_eof) {
        if (p->in_pos > 0 && p->in_cap - p->in_len < READ_CHUNK / 4) {
            memmove(p->in, p->in + p->in_pos, p->in_len - p->in_pos);
            p->in_len -= p->in_pos;
            p->in_pos = 0;
        }
        if (p->in_len == p->in_cap) {
            size_t limit = LLM_PZSTD_MAX_FRAME + READ_CHUNK;
            if (p->in_cap >= limit) return 0;
            size_t cap = p->in_cap * 2 < limit ? p->in_cap * 2 : limit;
            if (grow(&p->in, &p->in_cap, cap) < 0) {
                cut_fail(p, LLM_ERR_NOMEM, 0, "%s", "out of memory");
                return -1;
            }
        }
        struct pollfd pf[2] = {{.fd = p->fd, .events = POLLIN}, {.fd = p->wake[0], .events = POLLIN}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR) continue;
            cut_fail(p, LLM_ERR_IO, 0, "read: %s", strerror(errno));
            return -1;
        }
        if (pf[1].revents) return -1; /* stopping */
        size_t room = p->in_cap - p->in_len;
        ssize_t n = read(p->fd, p->in + p->in_len, room < READ_STEP ? room : READ_STEP);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) {
            cut_fail(p, LLM_ERR_IO, 0, "read: %s", strerror(errno));
            return -1;
        }
        if (n == 0) p->in_eof = 1;
        p->in_len += (size_t)n;
    }
    return 0;
}

/* Passes the rest of the input through unchanged.  0 at its end, -1 when stopped. */
static int cut_pass_through(llm_pzstd *p)
{
    for (;;) {
        if (p->in_pos == p->in_len) LLM_TRY(cut_fill(p, 1));
        size_t avail = p->in_len - p->in_pos;
        if (avail == 0) return 0;
        slot *s = cut_acquire(p);
        if (!s) return -1;
        size_t k = avail < READ_CHUNK ? avail : READ_CHUNK;
        if (grow(&s->out, &s->out_cap, READ_CHUNK) < 0) {
            cut_fail(p, LLM_ERR_NOMEM, 0, "%s", "out of memory");
            return -1;
        }
        memcpy(s->out, p->in + p->in_pos, k);
        s->out_len = k;
        p->in_pos += k;
        cut_publish(p, s, SLOT_INPUT);
    }
}

/* Decodes one frame here, in order, into byte slots: for a frame too large to
 * hold whole, or one whose size cannot be found (corrupt or cut short), so its
 * errors come out after all the bytes before them.  0 when the frame ended
 * cleanly, -1 after a failure or when stopped. */
static int cut_sequential(llm_pzstd *p)
{
    if (!p->cut_dctx && !(p->cut_dctx = ZSTD_createDCtx())) {
        cut_fail(p, LLM_ERR_NOMEM, 0, "%s", "out of memory");
        return -1;
    }
    ZSTD_DCtx_reset(p->cut_dctx, ZSTD_reset_session_only);
    for (;;) {
        slot *s = cut_acquire(p);
        if (!s) return -1;
        if (grow(&s->out, &s->out_cap, READ_CHUNK) < 0) {
            cut_fail(p, LLM_ERR_NOMEM, 0, "%s", "out of memory");
            return -1;
        }
        size_t ret = 1;
        while (s->out_len < READ_CHUNK && ret != 0) {
            if (p->in_pos == p->in_len && cut_fill(p, 1) < 0) return -1;
            if (p->in_pos == p->in_len) {
                cut_publish(p, s, SLOT_BYTES);
                cut_fail(p, LLM_ERR_TRUNCATED, 1, "%s", "truncated: the zstd frame is cut short");
                return -1;
            }
            ZSTD_inBuffer ib = {p->in + p->in_pos, p->in_len - p->in_pos, 0};
            /* zstd drops a call's output when the call fails: keep calls
             * as small as the stream reader's */
            size_t end = s->out_len + ZSTD_DStreamOutSize();
            ZSTD_outBuffer ob = {s->out, end < READ_CHUNK ? end : READ_CHUNK, s->out_len};
            ret = ZSTD_decompressStream(p->cut_dctx, &ob, &ib);
            p->in_pos += ib.pos;
            s->out_len = ob.pos;
            if (ZSTD_isError(ret)) {
                cut_publish(p, s, SLOT_BYTES);
                cut_fail(p, ZSTD_getErrorCode(ret) == ZSTD_error_checksum_wrong ? LLM_ERR_CHECKSUM : LLM_ERR_FORMAT,
                         1, "zstd: %s", ZSTD_getErrorName(ret));
                return -1;
            }
        }
        cut_publish(p, s, SLOT_BYTES);
        if (ret == 0) return 0;
    }
}

/* Cuts the input into frames for the workers until it ends or fails. */
static void *cutter_main(void *arg)
{
    llm_pzstd *p = arg;
    for (;;) {
        if (cut_fill(p, 4) < 0) return NULL;
        size_t avail = p->in_len - p->in_pos;
        if (avail == 0) break;
        llm_zframe_kind kind = llm_zframe_detect(p->in + p->in_pos, avail);
        if (kind == LLM_ZFRAME_NONE) {
            if (cut_pass_through(p) < 0) return NULL;
            break;
        }
        size_t size;
        for (;;) {
            size = ZSTD_findFrameCompressedSize(p->in + p->in_pos, avail);
            if (!ZSTD_isError(size)) break;
            if (ZSTD_getErrorCode(size) != ZSTD_error_srcSize_wrong || p->in_eof ||
                avail >= LLM_PZSTD_MAX_FRAME)
                break;
            if (cut_fill(p, avail + 1) < 0) return NULL;
            avail = p->in_len - p->in_pos;
        }
        llm_error e = {0};
        if (llm_zframe_check_header(p->in + p->in_pos, avail, &e) < 0) {
            cut_fail(p, e.code, 1, "%s", e.msg);
            return NULL;
        }
        if (ZSTD_isError(size) || size > LLM_PZSTD_MAX_FRAME) {
            if (cut_sequential(p) < 0) return NULL;
            continue;
        }
        if (kind == LLM_ZFRAME_SKIPPABLE) {
            p->in_pos += size;
            continue;
        }
        slot *s = cut_acquire(p);
        if (!s) return NULL;
        size_t tail = p->in_len - p->in_pos - size, in_cap = LLM_FRAME_BYTES + READ_CHUNK;
        if (p->in_pos == 0 && grow(&s->comp, &s->comp_cap, tail > in_cap ? tail : in_cap) == 0) {
            /* hand the input buffer to the slot; keep the slot's old one */
            unsigned char *b = s->comp;
            size_t cap = s->comp_cap;
            s->comp = p->in, s->comp_cap = p->in_cap;
            p->in = b, p->in_cap = cap;
            memcpy(p->in, s->comp + size, tail);
            p->in_len = tail;
        } else {
            if (grow(&s->comp, &s->comp_cap, size) < 0) {
                cut_fail(p, LLM_ERR_NOMEM, 0, "%s", "out of memory");
                return NULL;
            }
            memcpy(s->comp, p->in + p->in_pos, size);
            p->in_pos += size;
        }
        s->comp_len = size;
        cut_publish(p, s, SLOT_FRAME);
    }
    slot *s = cut_acquire(p);
    if (s) cut_publish(p, s, SLOT_END);
    return NULL;
}

/* ---------- the workers ---------- */

/* Decodes s->comp whole into s->out, or marks it sequential (too large,
 * out of memory, or an error the consumer will meet again in order). */
static void decode_frame(ZSTD_DCtx *dctx, slot *s)
{
    unsigned long long size = ZSTD_getFrameContentSize(s->comp, s->comp_len);
    size_t cap;
    if (size == ZSTD_CONTENTSIZE_ERROR || (size != ZSTD_CONTENTSIZE_UNKNOWN && size > LLM_PZSTD_MAX_FRAME)) {
        s->sequential = 1;
        return;
    }
    if (size != ZSTD_CONTENTSIZE_UNKNOWN) cap = size ? (size_t)size : 1;
    else cap = s->out_cap > LLM_FRAME_BYTES ? s->out_cap : LLM_FRAME_BYTES;
    for (;;) {
        if (grow(&s->out, &s->out_cap, cap) < 0) break;
        size_t n = ZSTD_decompressDCtx(dctx, s->out, cap, s->comp, s->comp_len);
        if (!ZSTD_isError(n)) {
            s->out_len = n;
            return;
        }
        if (ZSTD_getErrorCode(n) != ZSTD_error_dstSize_tooSmall || cap >= LLM_PZSTD_MAX_FRAME) break;
        cap = cap * 2 < LLM_PZSTD_MAX_FRAME ? cap * 2 : LLM_PZSTD_MAX_FRAME;
    }
    s->sequential = 1;
}

static void *worker_main(void *arg)
{
    llm_pzstd *p = arg;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        if (p->work_seq < p->read_seq) p->work_seq = p->read_seq;
        while (p->work_seq < p->cut_seq && slot_at(p, p->work_seq)->state != SLOT_CUT) p->work_seq++;
        if (p->work_seq == p->cut_seq) {
            pthread_cond_wait(&p->cv_work, &p->mu);
            continue;
        }
        slot *s = slot_at(p, p->work_seq++);
        s->state = SLOT_BUSY;
        pthread_mutex_unlock(&p->mu);
        if (dctx) decode_frame(dctx, s);
        else s->sequential = 1;
        pthread_mutex_lock(&p->mu);
        s->state = SLOT_DONE;
        pthread_cond_broadcast(&p->cv_done);
    }
    pthread_mutex_unlock(&p->mu);
    ZSTD_freeDCtx(dctx);
    return NULL;
}

/* ---------- the consumer ---------- */

static int consumer_fail(llm_pzstd *p, int code, int at_byte, const char *what, llm_error *err)
{
    if (at_byte)
        llm_error_set(&p->fail, code, "%s: byte %llu: %s", p->label, (unsigned long long)p->delivered, what);
    else
        llm_error_set(&p->fail, code, "%s: %s", p->label, what);
    *err = p->fail;
    return code;
}

/* Hands the current slot back to the cutter. */
static void consumer_release(llm_pzstd *p)
{
    pthread_mutex_lock(&p->mu);
    slot_at(p, p->read_seq)->state = SLOT_FREE;
    p->read_seq++;
    pthread_cond_signal(&p->cv_free);
    pthread_mutex_unlock(&p->mu);
    p->read_pos = 0;
    p->seq_in_pos = 0;
    p->seq_active = 0;
}

/* Streams a frame no worker decoded into buf.  Bytes produced, with the
 * frame's end releasing the slot, or < 0 with p->fail set (and the bytes
 * produced before the fault in *produced). */
static int64_t consumer_sequential(llm_pzstd *p, slot *s, unsigned char *buf, size_t n, size_t *produced)
{
    *produced = 0;
    if (!p->seq_dctx && !(p->seq_dctx = ZSTD_createDCtx()))
        return llm_error_set(&p->fail, LLM_ERR_NOMEM, "%s: out of memory", p->label);
    if (!p->seq_active) {
        ZSTD_DCtx_reset(p->seq_dctx, ZSTD_reset_session_only);
        p->seq_active = 1;
    }
    ZSTD_outBuffer ob = {buf, n, 0};
    for (;;) {
        ZSTD_inBuffer ib = {s->comp, s->comp_len, p->seq_in_pos};
        size_t ret = ZSTD_decompressStream(p->seq_dctx, &ob, &ib);
        p->seq_in_pos = ib.pos;
        *produced = ob.pos;
        if (ZSTD_isError(ret)) {
            char what[384];
            snprintf(what, sizeof what, "zstd: %s", ZSTD_getErrorName(ret));
            p->delivered += ob.pos;
            llm_error e;
            int code = ZSTD_getErrorCode(ret) == ZSTD_error_checksum_wrong ? LLM_ERR_CHECKSUM : LLM_ERR_FORMAT;
            consumer_fail(p, code, 1, what, &e);
            p->delivered -= ob.pos;
            return code;
        }
        if (ret == 0) {
            consumer_release(p);
            return (int64_t)ob.pos;
        }
        if (ob.pos == ob.size) return (int64_t)ob.pos;
        if (ib.pos == ib.size) {
            p->delivered += ob.pos;
            llm_error e;
            consumer_fail(p, LLM_ERR_TRUNCATED, 1, "truncated: the zstd frame is cut short", &e);
            p->delivered -= ob.pos;
            return LLM_ERR_TRUNCATED;
        }
    }
}

/* llm_pzstd_read, stopping where decoded content gives way to input
 * passed through: *decoded says which the bytes are. */
static int64_t pzstd_read(llm_pzstd *p, void *buf, size_t n, int *decoded, llm_error *err)
{
    unsigned char *d = buf;
    size_t got = 0;
    while (got < n) {
        if (p->fail.code) break;
        slot *s = slot_at(p, p->read_seq);
        pthread_mutex_lock(&p->mu);
        if (got > 0 && s->state != SLOT_DONE) { /* hand out what is here rather than wait */
            pthread_mutex_unlock(&p->mu);
            break;
        }
        while (s->state != SLOT_DONE) pthread_cond_wait(&p->cv_done, &p->mu);
        pthread_mutex_unlock(&p->mu);
        if (s->kind == SLOT_END) break;
        if (s->kind == SLOT_FAIL) {
            llm_error e;
            consumer_fail(p, s->code, s->at_byte, s->what, &e);
            break;
        }
        int dec = s->kind != SLOT_INPUT;
        if (got > 0 && dec != *decoded) break;
        *decoded = dec;
        if (s->kind == SLOT_FRAME && s->sequential) {
            size_t produced;
            int64_t k = consumer_sequential(p, s, d + got, n - got, &produced);
            got += produced;
            p->delivered += produced;
            if (k < 0) break;
            continue;
        }
        size_t k = s->out_len - p->read_pos;
        if (k > n - got) k = n - got;
        memcpy(d + got, s->out + p->read_pos, k);
        p->read_pos += k;
        got += k;
        p->delivered += k;
        if (p->read_pos == s->out_len) consumer_release(p);
    }
    if (got == 0 && p->fail.code) {
        *err = p->fail;
        return p->fail.code;
    }
    return (int64_t)got;
}

int64_t llm_pzstd_read(llm_pzstd *p, void *buf, size_t n, llm_error *err)
{
    int decoded = 0;
    return pzstd_read(p, buf, n, &decoded, err);
}

static int64_t pzstd_source(void *ctx, void *buf, size_t n, int *decoded, llm_error *err)
{
    return pzstd_read(ctx, buf, n, decoded, err);
}

int llm_pzstd_reader_open(llm_reader **out, llm_pzstd *p, llm_error *err)
{
    return llm_reader_open_source(out, pzstd_source, p, p->label, err);
}

/* ---------- opening and closing ---------- */

int llm_pzstd_open_fd(llm_pzstd **out, int fd, const char *label, int threads, llm_error *err)
{
    *out = NULL;
    if (threads < 1 || threads > LLM_PZSTD_MAX_THREADS)
        return llm_error_set(err, LLM_ERR_ARG, "%s: %d decoding threads (1..%d)", label, threads,
                             LLM_PZSTD_MAX_THREADS);
    llm_pzstd *p = calloc(1, sizeof *p);
    if (!p) return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", label);
    p->fd = fd;
    llm_widen_pipe(fd); /* else the writer and the cutter take turns */
    p->wake[0] = p->wake[1] = -1;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->n_workers = threads;
    p->n_slots = threads + 2;
    p->slots = calloc((size_t)p->n_slots, sizeof *p->slots);
    p->in_cap = LLM_FRAME_BYTES + READ_CHUNK;
    p->in = malloc(p->in_cap);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_free, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    if (!p->slots || !p->in) {
        llm_pzstd_close(p);
        return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", label);
    }
    if (pipe(p->wake) < 0) {
        int e = errno;
        llm_pzstd_close(p);
        return llm_error_set(err, LLM_ERR_IO, "%s: pipe: %s", label, strerror(e));
    }
    if (pthread_create(&p->cutter, NULL, cutter_main, p) != 0) {
        llm_pzstd_close(p);
        return llm_error_set(err, LLM_ERR_NOMEM, "%s: cannot start a thread", label);
    }
    p->cutter_started = 1;
    for (; p->n_started < threads; p->n_started++)
        if (pthread_create(&p->workers[p->n_started], NULL, worker_main, p) != 0) {
            llm_pzstd_close(p);
            return llm_error_set(err, LLM_ERR_NOMEM, "%s: cannot start a thread", label);
        }
    *out = p;
    return 0;
}

int llm_pzstd_open(llm_pzstd **out, const char *path, int threads, llm_error *err)
{
    if (strcmp(path, "-") == 0) return llm_pzstd_open_fd(out, 0, "-", threads, err);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return llm_error_set(err, LLM_ERR_IO, "%s: %s", path, strerror(errno));
    int rc = llm_pzstd_open_fd(out, fd, path, threads, err);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    (*out)->own_fd = 1;
    return 0;
}

void llm_pzstd_close(llm_pzstd *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv_free);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    if (p->wake[1] >= 0) {
        ssize_t w;
        do w = write(p->wake[1], "", 1);
        while (w < 0 && errno == EINTR);
    }
    if (p->cutter_started) pthread_join(p->cutter, NULL);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->workers[i], NULL);
    for (int i = 0; p->slots && i < p->n_slots; i++) {
        free(p->slots[i].comp);
        free(p->slots[i].out);
    }
    if (p->wake[0] >= 0) close(p->wake[0]);
    if (p->wake[1] >= 0) close(p->wake[1]);
    if (p->own_fd) close(p->fd);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_free);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    ZSTD_freeDCtx(p->cut_dctx);
    ZSTD_freeDCtx(p->seq_dctx);
    free(p->slots);
    free(p->in);
    free(p);
}
