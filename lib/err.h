/* err — errors as values for every libllm module.
 *
 * A library function returns 0 on success or a negative LLM_ERR_* code, and
 * fills the caller's llm_error with a one-line message naming what failed
 * (file, tensor, byte offset).  The library never prints and never exits; the
 * tools print the message with their name in front (see cli.h).
 *
 *     llm_error err = {0};
 *     llm_reader *r;
 *     if (llm_reader_open(&r, "model.llmt", &err) < 0)
 *         fprintf(stderr, "tool: %s\n", err.msg);
 */
#ifndef LLM_ERR_H
#define LLM_ERR_H

enum llm_err_code {
    LLM_OK = 0,
    LLM_ERR_IO = -1,        /* read/write/open failed (errno detail in msg) */
    LLM_ERR_FORMAT = -2,    /* input is not what it claims to be */
    LLM_ERR_TRUNCATED = -3, /* input ended early */
    LLM_ERR_CHECKSUM = -4,  /* zstd frame checksum mismatch or corrupt data */
    LLM_ERR_NOMEM = -5,     /* allocation failed */
    LLM_ERR_ARG = -6,       /* caller passed something invalid */
    LLM_ERR_LIMIT = -7,     /* a size beyond a documented limit */
    LLM_ERR_STATE = -8,     /* call out of order (programmer error) */
};

typedef struct llm_error {
    int code;      /* the last LLM_ERR_* set, 0 when none */
    char msg[512]; /* one line, no trailing newline */
} llm_error;

/* Fills err (may be NULL) with code and a printf-style message; returns code,
 * so a caller can write `return llm_error_set(err, LLM_ERR_ARG, "...")`. */
int llm_error_set(llm_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to the message already in err (for adding a file or a
 * tensor name as the error travels up).  Returns err->code. */
int llm_error_prefix(llm_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Return early on error: LLM_TRY(expr) evaluates expr once and returns its
 * value when negative. */
#define LLM_TRY(expr)                                \
    do {                                             \
        int llm_try_rc_ = (expr);                    \
        if (llm_try_rc_ < 0) return llm_try_rc_;     \
    } while (0)

#endif
