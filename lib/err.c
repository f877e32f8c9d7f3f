/* err — filling and decorating llm_error messages. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int llm_error_set(llm_error *err, int code, const char *fmt, ...)
{
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

int llm_error_prefix(llm_error *err, const char *fmt, ...)
{
    if (!err) return LLM_ERR_STATE;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix), cap = sizeof err->msg;
    if (plen + 2 >= cap) plen = cap - 3;
    size_t old_len = strnlen(err->msg, cap - 1);
    if (plen + 2 + old_len >= cap) old_len = cap - 1 - plen - 2;
    memmove(err->msg + plen + 2, err->msg, old_len);
    memcpy(err->msg, prefix, plen);
    memcpy(err->msg + plen, ": ", 2);
    err->msg[plen + 2 + old_len] = '\0';
    return err->code;
}
