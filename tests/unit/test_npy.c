/* test_npy — the .npy header reader and writer: round trips, byte-exact
 * agreement with numpy.save, every malformed header rejected with the right
 * code, reading through a pipe, and (when numpy is installed) files written
 * by numpy read here and files written here loaded by numpy. */
#include "check.h"
#include "npy.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const llm_dtype npy_dtypes[] = {LLM_DTYPE_F32, LLM_DTYPE_F64, LLM_DTYPE_F16,
                                       LLM_DTYPE_I8,  LLM_DTYPE_U8,  LLM_DTYPE_I32,
                                       LLM_DTYPE_I64};
#define N_DTYPES (int)(sizeof npy_dtypes / sizeof npy_dtypes[0])

/* Builds magic + version major.0 + length + dict (dict_len bytes). */
static size_t make_header(int major, const char *dict, size_t dict_len, unsigned char *out)
{
    size_t prefix = major == 1 ? 10 : 12;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    for (size_t i = 0; i < prefix - 8; i++) out[8 + i] = (unsigned char)(dict_len >> (8 * i));
    memcpy(out + prefix, dict, dict_len);
    return prefix + dict_len;
}

static int parse_dict(const char *dict, llm_npy_header *h, llm_error *err)
{
    static unsigned char buf[4096];
    size_t n = make_header(1, dict, strlen(dict), buf);
    return llm_npy_parse_header(buf, n, h, err);
}

static int shape_eq(const llm_shape *s, int ndim, const int64_t *dims)
{
    if (s->ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (s->dim[i] != dims[i]) return 0;
    return 1;
}

/* --------------------------------------------------------------- tests */

static void test_roundtrip(void)
{
    static const struct {
        int ndim;
        int64_t dim[LLM_MAX_DIMS];
    } shapes[] = {
        {0, {0}}, {1, {0}}, {1, {7}}, {2, {2, 3}}, {8, {1, 2, 3, 4, 5, 6, 7, 8}},
        {3, {INT64_C(1) << 40, 0, INT64_C(1) << 48}},
    };
    llm_error err = {0};
    for (int d = 0; d < N_DTYPES; d++) {
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            llm_shape s = llm_shape_make(shapes[k].ndim, shapes[k].dim);
            char buf[1024];
            size_t len = 0;
            CHECK_OK(llm_npy_format_header(npy_dtypes[d], &s, buf, sizeof buf, &len, &err), err);
            CHECK_MSG(len % 64 == 0 && len >= 64, "dtype %d shape %zu: length %zu", d, k, len);
            CHECK(buf[len - 1] == '\n');
            llm_npy_header h;
            CHECK_OK(llm_npy_parse_header(buf, len, &h, &err), err);
            uint64_t want;
            CHECK_OK(llm_payload_bytes(npy_dtypes[d], &s, &want, &err), err);
            CHECK_MSG(h.dtype == npy_dtypes[d] && h.major == 1 && h.minor == 0 &&
                          h.swap_bytes == 0 && h.header_bytes == len && h.nbytes == want &&
                          shape_eq(&h.shape, s.ndim, s.dim),
                      "dtype %d shape %zu did not round-trip", d, k);
            /* One byte short of the header is truncated. */
            CHECK(llm_npy_parse_header(buf, len - 1, &h, &err) == LLM_ERR_TRUNCATED);
        }
    }
}

static void test_format_matches_numpy(void)
{
    /* The exact headers numpy 1.24 np.save writes (hard-coded from the format:
     * sorted keys, repr of the shape, 21 - len(repr(shape[0])) spare spaces,
     * then spaces and '\n' up to a multiple of 64). */
    static const struct {
        llm_dtype dtype;
        int ndim;
        int64_t dim[LLM_MAX_DIMS];
        size_t len;
        const char *bytes;
    } cases[] = {
        {LLM_DTYPE_F32, 2, {2, 3}, 128,
         "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, "
         "3), }                                                          \n"},
        {LLM_DTYPE_F64, 0, {0}, 128,
         "\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (), "
         "}                                                              \n"},
        {LLM_DTYPE_U8, 1, {7}, 128,
         "\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 'shape': (7,)"
         ", }                                                            \n"},
        {LLM_DTYPE_I64, 8, {1, 2, 3, 4, 5, 6, 7, 8}, 128,
         "\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (1, "
         "2, 3, 4, 5, 6, 7, 8), }                                        \n"},
        {LLM_DTYPE_I32, 1, {1234567}, 128,
         "\x93NUMPY\x01\x00v\x00{'descr': '<i4', 'fortran_order': False, 'shape': (123"
         "4567,), }                                                      \n"},
        {LLM_DTYPE_I8, 1, {0}, 128,
         "\x93NUMPY\x01\x00v\x00{'descr': '|i1', 'fortran_order': False, 'shape': (0,)"
         ", }                                                            \n"},
        {LLM_DTYPE_F16, 4, {1, 1, 1, 1}, 128,
         "\x93NUMPY\x01\x00v\x00{'descr': '<f2', 'fortran_order': False, 'shape': (1, "
         "1, 1, 1), }                                                    \n"},
        {LLM_DTYPE_F64,
         8,
         {0, 1000000000000, 1000000000000, 1000000000000, 1000000000000, 1000000000000,
          1000000000000, 1000000000000},
         256,
         "\x93NUMPY\x01\x00\xf6\x00{'descr': '<f8', 'fortran_order': False, 'shape': (0, "
         "1000000000000, 1000000000000, 1000000000000, 1000000000000, 1000"
         "000000000, 1000000000000, 1000000000000), }                     "
         "                                                               \n"},
    };
    llm_error err = {0};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        llm_shape s = llm_shape_make(cases[k].ndim, cases[k].dim);
        char buf[1024];
        size_t len = 0;
        CHECK_OK(llm_npy_format_header(cases[k].dtype, &s, buf, sizeof buf, &len, &err), err);
        CHECK_MSG(len == cases[k].len && memcmp(buf, cases[k].bytes, len) == 0,
                  "case %zu: got %zu bytes '%.*s'", k, len, (int)len - 10, buf + 10);
        llm_npy_header h;
        CHECK_OK(llm_npy_parse_header(cases[k].bytes, cases[k].len, &h, &err), err);
        CHECK_MSG(h.dtype == cases[k].dtype && shape_eq(&h.shape, s.ndim, s.dim) &&
                      h.header_bytes == cases[k].len,
                  "case %zu: parsed wrong", k);
    }
    /* The big-endian header numpy writes for np.zeros((0,), '>f2'). */
    static const char be[] =
        "\x93NUMPY\x01\x00v\x00{'descr': '>f2', 'fortran_order': False, 'shape': (0,)"
        ", }                                                            \n";
    llm_npy_header h;
    CHECK_OK(llm_npy_parse_header(be, 128, &h, &err), err);
    CHECK(h.dtype == LLM_DTYPE_F16 && h.swap_bytes == 1 && h.nbytes == 0);
}

static void test_format_rejects(void)
{
    llm_error err = {0};
    llm_shape s = llm_shape_make(2, (int64_t[]){2, 3});
    char buf[1024];
    size_t len;
    CHECK(llm_npy_format_header(LLM_DTYPE_BF16, &s, buf, sizeof buf, &len, &err) ==
          LLM_ERR_ARG);
    CHECK_MSG(strstr(err.msg, "bf16") != NULL, "message: %s", err.msg);
    CHECK(llm_npy_format_header(LLM_DTYPE_I4, &s, buf, sizeof buf, &len, &err) == LLM_ERR_ARG);
    CHECK(llm_npy_format_header(LLM_DTYPE_U4, &s, buf, sizeof buf, &len, &err) == LLM_ERR_ARG);
    CHECK(llm_npy_format_header((llm_dtype)99, &s, buf, sizeof buf, &len, &err) ==
          LLM_ERR_ARG);
    CHECK(llm_npy_format_header(LLM_DTYPE_F32, &s, buf, 127, &len, &err) == LLM_ERR_ARG);
    llm_shape big = llm_shape_make(1, (int64_t[]){(INT64_C(1) << 48) + 1});
    CHECK(llm_npy_format_header(LLM_DTYPE_U8, &big, buf, sizeof buf, &len, &err) ==
          LLM_ERR_LIMIT);
    llm_shape many = {.ndim = 9};
    CHECK(llm_npy_format_header(LLM_DTYPE_U8, &many, buf, sizeof buf, &len, &err) ==
          LLM_ERR_LIMIT);
    llm_shape neg = llm_shape_make(1, (int64_t[]){-1});
    CHECK(llm_npy_format_header(LLM_DTYPE_U8, &neg, buf, sizeof buf, &len, &err) ==
          LLM_ERR_LIMIT);
    /* A payload over 2^62 bytes cannot be described either. */
    llm_shape huge = llm_shape_make(2, (int64_t[]){INT64_C(1) << 40, INT64_C(1) << 40});
    CHECK(llm_npy_format_header(LLM_DTYPE_F32, &huge, buf, sizeof buf, &len, &err) ==
          LLM_ERR_LIMIT);
}

static void test_parse_variants(void)
{
    static const struct {
        const char *dict;
        llm_dtype dtype;
        int swap, ndim;
        int64_t dim[LLM_MAX_DIMS];
    } cases[] = {
        {"{'shape': (2,3,), 'descr': \"<f8\", 'fortran_order': False}", LLM_DTYPE_F64, 0, 2,
         {2, 3}},
        {"  {  'descr' :'<i4' ,\n\t'fortran_order':False,'shape':( 2 , 3 ) , }   \n",
         LLM_DTYPE_I32, 0, 2, {2, 3}},
        {"{\"descr\": \"|u1\", \"fortran_order\": False, \"shape\": (), }", LLM_DTYPE_U8, 0, 0,
         {0}},
        {"{'fortran_order': False, 'shape': (5,), 'descr': '>f4'}\n", LLM_DTYPE_F32, 1, 1, {5}},
        {"{'descr': '>i8', 'fortran_order': False, 'shape': (1, 2)}", LLM_DTYPE_I64, 1, 2,
         {1, 2}},
        {"{'descr': '>f8', 'fortran_order': False, 'shape': ()}", LLM_DTYPE_F64, 1, 0, {0}},
        {"{'descr': '>f2', 'fortran_order': False, 'shape': (4,)}", LLM_DTYPE_F16, 1, 1, {4}},
        {"{'descr': '>i4', 'fortran_order': False, 'shape': (4,)}", LLM_DTYPE_I32, 1, 1, {4}},
        {"{'descr': '>i1', 'fortran_order': False, 'shape': (4,)}", LLM_DTYPE_I8, 0, 1, {4}},
        {"{'descr': '<u1', 'fortran_order': False, 'shape': (4,)}", LLM_DTYPE_U8, 0, 1, {4}},
        {"{'descr': '=i1', 'fortran_order': False, 'shape': (4,)}", LLM_DTYPE_I8, 0, 1, {4}},
        {"{'descr': '=f4', 'fortran_order': False, 'shape': (4,)}", LLM_DTYPE_F32, 0, 1, {4}},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (0,)}", LLM_DTYPE_F16, 0, 1, {0}},
        {"{'descr':'|i1','fortran_order':False,'shape':(1,2,3,4,5,6,7,8,),}", LLM_DTYPE_I8, 0,
         8, {1, 2, 3, 4, 5, 6, 7, 8}},
        {"{'descr': '|i1', 'fortran_order': False, 'shape': (281474976710656,)}", LLM_DTYPE_I8,
         0, 1, {INT64_C(1) << 48}},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (0000012,)}", LLM_DTYPE_F32, 0, 1,
         {12}},
        {"{'descr': '<f4',\r\n 'fortran_order': False,\f 'shape': (3,\n 4)}", LLM_DTYPE_F32, 0,
         2, {3, 4}},
    };
    llm_error err = {0};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        llm_npy_header h;
        int rc = parse_dict(cases[k].dict, &h, &err);
        CHECK_MSG(rc == 0, "case %zu: %s", k, err.msg);
        if (rc) continue;
        CHECK_MSG(h.dtype == cases[k].dtype && h.swap_bytes == cases[k].swap &&
                      shape_eq(&h.shape, cases[k].ndim, cases[k].dim) &&
                      h.header_bytes == 10 + strlen(cases[k].dict),
                  "case %zu: dtype %d swap %d ndim %d", k, h.dtype, h.swap_bytes, h.shape.ndim);
    }
}

static void test_parse_v2_v3(void)
{
    llm_error err = {0};
    static unsigned char buf[200000];
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
    for (int major = 2; major <= 3; major++) {
        llm_npy_header h;
        size_t n = make_header(major, dict, strlen(dict), buf);
        CHECK_OK(llm_npy_parse_header(buf, n, &h, &err), err);
        CHECK(h.major == major && h.minor == 0 && h.header_bytes == 12 + strlen(dict));
        CHECK(h.dtype == LLM_DTYPE_F32 && h.nbytes == 24);
    }
    /* A version 2.0 header longer than 1.0 allows: the dict padded to 100000 bytes. */
    static char big[100001];
    memset(big, ' ', 100000);
    memcpy(big, dict, strlen(dict) - 1);
    big[99999] = '\n';
    llm_npy_header h;
    size_t n = make_header(2, big, 100000, buf);
    CHECK_OK(llm_npy_parse_header(buf, n, &h, &err), err);
    CHECK(h.major == 2 && h.header_bytes == 100012 && h.shape.ndim == 2);
    CHECK(llm_npy_parse_header(buf, n - 1, &h, &err) == LLM_ERR_TRUNCATED);
    /* Version 3.0 with 2.0's layout. */
    buf[6] = 3;
    CHECK_OK(llm_npy_parse_header(buf, n, &h, &err), err);
    CHECK(h.major == 3);
}

static void test_parse_rejects(void)
{
    static const struct {
        const char *dict;
        int code;
        const char *msg;
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", LLM_ERR_FORMAT,
         "header: fortran_order True is not supported (C order only)"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }", LLM_ERR_FORMAT,
         "unsupported dtype '<c8'"},
        {"{'descr': '|b1', 'fortran_order': False, 'shape': (2, 3), }", LLM_ERR_FORMAT,
         "unsupported dtype '|b1'"},
        {"{'descr': '<u4', 'fortran_order': False, 'shape': (2, 3), }", LLM_ERR_FORMAT,
         "unsupported dtype"},
        {"{'descr': '<f4 ', 'fortran_order': False, 'shape': (2, 3), }", LLM_ERR_FORMAT,
         "unsupported dtype"},
        {"{'descr': 'f4', 'fortran_order': False, 'shape': (2, 3), }", LLM_ERR_FORMAT,
         "unsupported dtype"},
        {"{'descr': '', 'fortran_order': False, 'shape': (2, 3), }", LLM_ERR_FORMAT,
         "unsupported dtype"},
        {"{'descr': '|f4', 'fortran_order': False, 'shape': (2, 3), }", LLM_ERR_FORMAT,
         "'|' is only for 1-byte types"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", LLM_ERR_FORMAT,
         "structured"},
        {"{'descr': 4, 'fortran_order': False, 'shape': (2,), }", LLM_ERR_FORMAT, "descr"},
        {"{'descr': '<f4', 'fortran_order': False, }", LLM_ERR_FORMAT, "missing key 'shape'"},
        {"{'fortran_order': False, 'shape': (2, 3), }", LLM_ERR_FORMAT, "missing key 'descr'"},
        {"{'descr': '<f4', 'shape': (2, 3), }", LLM_ERR_FORMAT,
         "missing key 'fortran_order'"},
        {"{}", LLM_ERR_FORMAT, "missing key 'descr'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ", LLM_ERR_FORMAT,
         "unterminated dict"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3", LLM_ERR_FORMAT,
         "unterminated dict"},
        {"{'descr': '<f4", LLM_ERR_FORMAT, "unterminated string"},
        {"", LLM_ERR_FORMAT, "unterminated dict"},
        {"   \n", LLM_ERR_FORMAT, "unterminated dict"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }", LLM_ERR_FORMAT,
         "negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }",
         LLM_ERR_LIMIT, "header: "},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (281474976710657,), }",
         LLM_ERR_LIMIT, "limit"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999999999999999999,), }",
         LLM_ERR_LIMIT, "limit"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", LLM_ERR_FORMAT,
         "shape"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2a, 3), }", LLM_ERR_FORMAT,
         "not part of an integer"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,), }", LLM_ERR_FORMAT,
         "not part of an integer"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", LLM_ERR_FORMAT,
         "not part of an integer"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (+2,), }", LLM_ERR_FORMAT,
         "shape"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", LLM_ERR_FORMAT,
         "not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }", LLM_ERR_FORMAT,
         "tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (,), }", LLM_ERR_FORMAT, "shape"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,,), }", LLM_ERR_FORMAT,
         "shape"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", LLM_ERR_FORMAT,
         "',' or ')'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,2,3,4,5,6,7,8,9), }",
         LLM_ERR_LIMIT, "shape has more than 8 dimensions"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", LLM_ERR_FORMAT,
         "True or False"},
        {"{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,), }", LLM_ERR_FORMAT,
         "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'foo': 1}", LLM_ERR_FORMAT,
         "unexpected key 'foo'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
         LLM_ERR_FORMAT, "duplicate key 'descr'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", LLM_ERR_FORMAT,
         "after the dict"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}}", LLM_ERR_FORMAT,
         "after the dict"},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (2,)}", LLM_ERR_FORMAT, "':'"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", LLM_ERR_FORMAT,
         "',' or '}'"},
        {"{'descr': '<f4',, 'fortran_order': False, 'shape': (2,)}", LLM_ERR_FORMAT, "key"},
        {"{, }", LLM_ERR_FORMAT, "key"},
        {"{descr: '<f4', 'fortran_order': False, 'shape': (2,)}", LLM_ERR_FORMAT, "key"},
        {"{'descr\": '<f4', 'fortran_order': False, 'shape': (2,)}", LLM_ERR_FORMAT,
         "unexpected key"},
        {"{'de\\scr': '<f4', 'fortran_order': False, 'shape': (2,)}", LLM_ERR_FORMAT,
         "string"},
        {"{'descr': '<f\xc3\xa9', 'fortran_order': False, 'shape': (2,)}", LLM_ERR_FORMAT,
         "byte 0xc3"},
        {"[1, 2]", LLM_ERR_FORMAT, "'{'"},
    };
    llm_error err = {0};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        llm_npy_header h;
        err.msg[0] = '\0';
        int rc = parse_dict(cases[k].dict, &h, &err);
        CHECK_MSG(rc == cases[k].code && strstr(err.msg, cases[k].msg) != NULL &&
                      strncmp(err.msg, "header: ", 8) == 0,
                  "case %zu (%s): rc %d, message '%s'", k, cases[k].dict, rc, err.msg);
    }

    /* A NUL inside the dict is not the end of it. */
    static const char nul[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\0 ";
    unsigned char buf[256];
    llm_npy_header h;
    size_t n = make_header(1, nul, sizeof nul - 1, buf);
    CHECK(llm_npy_parse_header(buf, n, &h, &err) == LLM_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "byte 0x00") != NULL, "message: %s", err.msg);
}

static void test_parse_prefix_rejects(void)
{
    static const char good[] =
        "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, "
        "3), }                                                          \n";
    unsigned char buf[256];
    llm_error err = {0};
    llm_npy_header h;

    memcpy(buf, good, 128);
    buf[5] = 'Z'; /* "\x93NUMPZ" */
    CHECK(llm_npy_parse_header(buf, 128, &h, &err) == LLM_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "not a .npy file") != NULL, "message: %s", err.msg);
    memcpy(buf, "PK\x03\x04", 4); /* a .npz is a zip file */
    CHECK(llm_npy_parse_header(buf, 128, &h, &err) == LLM_ERR_FORMAT);
    CHECK(llm_npy_parse_header("\x94", 1, &h, &err) == LLM_ERR_FORMAT);

    static const unsigned char versions[][2] = {{9, 0}, {1, 1}, {0, 0}, {4, 0}, {2, 5}};
    for (size_t k = 0; k < sizeof versions / sizeof versions[0]; k++) {
        memcpy(buf, good, 128);
        buf[6] = versions[k][0];
        buf[7] = versions[k][1];
        CHECK_MSG(llm_npy_parse_header(buf, 128, &h, &err) == LLM_ERR_FORMAT &&
                      strstr(err.msg, "version") != NULL,
                  "version %d.%d: %s", versions[k][0], versions[k][1], err.msg);
    }
    memcpy(buf, good, 128);
    buf[6] = 9;
    llm_npy_parse_header(buf, 128, &h, &err);
    CHECK_MSG(strcmp(err.msg, "unsupported .npy version 9.0") == 0, "message: %s", err.msg);

    /* Ends before the prefix, or before the length the prefix gives. */
    for (size_t n = 0; n < 128; n++) {
        int rc = llm_npy_parse_header(good, n, &h, &err);
        CHECK_MSG(rc == LLM_ERR_TRUNCATED && strcmp(err.msg, "truncated .npy header") == 0,
                  "length %zu: rc %d, %s", n, rc, err.msg);
    }
    memcpy(buf, good, 128);
    buf[8] = 200; /* header length past the buffer */
    CHECK(llm_npy_parse_header(buf, 128, &h, &err) == LLM_ERR_TRUNCATED);

    /* A 2.0 header claiming 4 GiB is refused before anything is read. */
    static const unsigned char huge[] = "\x93NUMPY\x02\x00\xff\xff\xff\xff{";
    CHECK(llm_npy_parse_header(huge, sizeof huge - 1, &h, &err) == LLM_ERR_LIMIT);
    static const unsigned char over[] = "\x93NUMPY\x03\x00\xf5\xff\x0f\x00{";
    CHECK(llm_npy_parse_header(over, sizeof over - 1, &h, &err) == LLM_ERR_LIMIT);
    /* Exactly the limit is allowed (then truncated here). */
    static const unsigned char at[] = "\x93NUMPY\x02\x00\xf4\xff\x0f\x00{";
    CHECK(llm_npy_parse_header(at, sizeof at - 1, &h, &err) == LLM_ERR_TRUNCATED);
}

static void test_swap(void)
{
    unsigned char b[24];
    for (int i = 0; i < 24; i++) b[i] = (unsigned char)i;
    llm_npy_swap(b, 24, 1);
    CHECK(b[0] == 0 && b[23] == 23);
    llm_npy_swap(b, 12, 2);
    CHECK(b[0] == 1 && b[1] == 0 && b[22] == 23 && b[23] == 22);
    llm_npy_swap(b, 12, 2);
    llm_npy_swap(b, 6, 4);
    CHECK(b[0] == 3 && b[3] == 0 && b[4] == 7 && b[23] == 20);
    llm_npy_swap(b, 6, 4);
    llm_npy_swap(b, 3, 8);
    CHECK(b[0] == 7 && b[7] == 0 && b[8] == 15 && b[16] == 23 && b[23] == 16);
    llm_npy_swap(b, 3, 8);
    llm_npy_swap(b, 8, 3);
    CHECK(b[0] == 2 && b[1] == 1 && b[2] == 0 && b[21] == 23 && b[23] == 21);
    llm_npy_swap(b, 8, 3);
    for (int i = 0; i < 24; i++) CHECK(b[i] == i);
    llm_npy_swap(NULL, 0, 4);
    /* A big-endian float read back. */
    unsigned char be[4] = {0x3f, 0xc0, 0x00, 0x00};
    float f;
    llm_npy_swap(be, 1, 4);
    memcpy(&f, be, 4);
    CHECK(f == 1.5f);
}

static int read_exact(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k <= 0) return -1;
        got += (size_t)k;
    }
    return 0;
}

static void test_read_header_pipe(void)
{
    llm_error err = {0};
    int fds[2];
    if (pipe(fds) != 0) {
        CHECK_MSG(0, "pipe failed");
        return;
    }
    /* Two arrays one after the other, then a marker byte. */
    llm_shape s1 = llm_shape_make(2, (int64_t[]){2, 3});
    float d1[6] = {1, 2, 3, 4, 5, 6};
    llm_shape s2 = llm_shape_make(1, (int64_t[]){5});
    unsigned char d2[5] = {9, 8, 7, 6, 5};
    CHECK_OK(llm_npy_write_header(fds[1], "p.npy", LLM_DTYPE_F32, &s1, &err), err);
    CHECK(write(fds[1], d1, sizeof d1) == (ssize_t)sizeof d1);
    /* The second header as numpy writes it, version 2.0 with a short dict. */
    static const char dict[] = "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }\n";
    unsigned char h2[128];
    size_t n2 = make_header(2, dict, sizeof dict - 1, h2);
    CHECK(write(fds[1], h2, n2) == (ssize_t)n2);
    CHECK(write(fds[1], d2, sizeof d2) == (ssize_t)sizeof d2);
    CHECK(write(fds[1], "!", 1) == 1);
    close(fds[1]);

    llm_npy_header h;
    CHECK_OK(llm_npy_read_header(fds[0], "p.npy", &h, &err), err);
    CHECK(h.dtype == LLM_DTYPE_F32 && shape_eq(&h.shape, 2, s1.dim) && h.nbytes == 24 &&
          h.header_bytes == 128);
    float r1[6];
    CHECK(read_exact(fds[0], r1, sizeof r1) == 0 && memcmp(r1, d1, sizeof d1) == 0);
    CHECK_OK(llm_npy_read_header(fds[0], "p.npy", &h, &err), err);
    CHECK(h.dtype == LLM_DTYPE_U8 && h.major == 2 && shape_eq(&h.shape, 1, s2.dim) &&
          h.nbytes == 5 && h.header_bytes == n2);
    unsigned char r2[6];
    CHECK(read_exact(fds[0], r2, sizeof r2) == 0 && memcmp(r2, d2, 5) == 0 && r2[5] == '!');
    /* Nothing left: a clean end is still a truncated header. */
    CHECK(llm_npy_read_header(fds[0], "p.npy", &h, &err) == LLM_ERR_TRUNCATED);
    CHECK_MSG(strcmp(err.msg, "p.npy: truncated .npy header") == 0, "message: %s", err.msg);
    close(fds[0]);
}

/* Feeds bytes through a pipe to llm_npy_read_header; returns its code. */
static int read_piped(const void *bytes, size_t n, llm_npy_header *h, llm_error *err)
{
    int fds[2];
    if (pipe(fds) != 0) return 1;
    int ok = write(fds[1], bytes, n) == (ssize_t)n;
    close(fds[1]);
    int rc = ok ? llm_npy_read_header(fds[0], "in.npy", h, err) : 1;
    close(fds[0]);
    return rc;
}

static void test_read_header_errors(void)
{
    static const char good[] =
        "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, "
        "3), }                                                          \n";
    llm_error err = {0};
    llm_npy_header h;
    for (size_t n = 0; n < 128; n += (n < 14 ? 1 : 19)) {
        int rc = read_piped(good, n, &h, &err);
        CHECK_MSG(rc == LLM_ERR_TRUNCATED && strcmp(err.msg, "in.npy: truncated .npy header") == 0,
                  "%zu bytes: rc %d, %s", n, rc, err.msg);
    }
    CHECK_OK(read_piped(good, 128, &h, &err), err);
    CHECK(read_piped("abc", 3, &h, &err) == LLM_ERR_FORMAT);
    CHECK_MSG(strcmp(err.msg, "in.npy: not a .npy file (bad magic)") == 0, "message: %s",
              err.msg);
    CHECK(read_piped("hello, world", 12, &h, &err) == LLM_ERR_FORMAT);

    char bad[128];
    memcpy(bad, good, 128);
    bad[6] = 9;
    CHECK(read_piped(bad, 128, &h, &err) == LLM_ERR_FORMAT);
    CHECK_MSG(strcmp(err.msg, "in.npy: unsupported .npy version 9.0") == 0, "message: %s",
              err.msg);
    memcpy(bad, good, 128);
    memcpy(memmem(bad, 128, "False", 5), "True ", 5);
    CHECK(read_piped(bad, 128, &h, &err) == LLM_ERR_FORMAT);
    CHECK_MSG(strcmp(err.msg,
                     "in.npy: header: fortran_order True is not supported (C order only)") == 0,
              "message: %s", err.msg);
    static const unsigned char huge[] = "\x93NUMPY\x02\x00\xff\xff\xff\x7f{'descr'";
    CHECK(read_piped(huge, sizeof huge - 1, &h, &err) == LLM_ERR_LIMIT);
    CHECK_MSG(strncmp(err.msg, "in.npy: ", 8) == 0, "message: %s", err.msg);
    CHECK(llm_npy_read_header(-1, "in.npy", &h, &err) == LLM_ERR_IO);
    CHECK_MSG(strncmp(err.msg, "in.npy: read: ", 14) == 0, "message: %s", err.msg);
    llm_shape s = llm_shape_make(0, NULL);
    CHECK(llm_npy_write_header(-1, "out.npy", LLM_DTYPE_F32, &s, &err) == LLM_ERR_IO);
    CHECK_MSG(strncmp(err.msg, "out.npy: write: ", 16) == 0, "message: %s", err.msg);
    CHECK(llm_npy_write_header(1, "out.npy", LLM_DTYPE_BF16, &s, &err) == LLM_ERR_ARG);
    CHECK_MSG(strncmp(err.msg, "out.npy: ", 9) == 0, "message: %s", err.msg);
}

static void test_read_header_big_file(void)
{
    /* A 2.0 header of 100 KB (more than a pipe holds) from a regular file. */
    llm_error err = {0};
    char path[600];
    snprintf(path, sizeof path, "%s/big_header.npy", check_tmpdir());
    static char dict[100000];
    static unsigned char buf[100100];
    memset(dict, ' ', sizeof dict);
    static const char d[] = "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }";
    memcpy(dict, d, sizeof d - 1);
    dict[sizeof dict - 1] = '\n';
    size_t n = make_header(2, dict, sizeof dict, buf);
    int32_t data[3] = {-1, 0, 123456};
    memcpy(buf + n, data, sizeof data);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(buf, 1, n + sizeof data, f) == n + sizeof data);
    if (f) fclose(f);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    llm_npy_header h;
    CHECK_OK(llm_npy_read_header(fd, path, &h, &err), err);
    CHECK(h.major == 2 && h.header_bytes == n && h.dtype == LLM_DTYPE_I32 && h.nbytes == 12);
    int32_t back[3];
    CHECK(read_exact(fd, back, sizeof back) == 0 && memcmp(back, data, sizeof data) == 0);
    char extra;
    CHECK(read(fd, &extra, 1) == 0);
    close(fd);
}

/* ------------------------------------------------------- against numpy */

/* A python3 that can import numpy ("python3", then /usr/bin/python3), or NULL. */
static const char *numpy_python(void)
{
    static const char *found;
    static int tried;
    if (tried) return found;
    tried = 1;
    const char *env = getenv("LLM_PYTHON");
    const char *cands[] = {env, "python3", "/usr/bin/python3"};
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        if (!cands[i] || !cands[i][0]) continue;
        char cmd[600];
        snprintf(cmd, sizeof cmd, "'%s' -c 'import numpy' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0) return found = cands[i];
    }
    return NULL;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static void test_numpy_save_then_read(void)
{
    const char *py = numpy_python();
    if (!py) {
        check_skip("python3 with numpy not found");
        return;
    }
    char dir[600];
    snprintf(dir, sizeof dir, "%s/from_numpy", check_tmpdir());
    mkdir(dir, 0700);
    static const char script[] =
        "import sys, numpy as np\n"
        "d = sys.argv[1]\n"
        "rng = np.random.default_rng(12345)\n"
        "specs = [('f4', '<f4', (3, 5)), ('f8', '<f8', (4,)), ('f2', '<f2', (2, 3, 2)),\n"
        "         ('i1', '|i1', (17,)), ('u1', '|u1', (2, 2)), ('i4', '<i4', (6,)),\n"
        "         ('i8', '<i8', (3, 3)), ('bf4', '>f4', (2, 5)), ('bf8', '>f8', ()),\n"
        "         ('bf2', '>f2', (7,)), ('bi4', '>i4', (5,)), ('bi8', '>i8', (2, 1)),\n"
        "         ('e4', '<f4', (0, 3)), ('d8', '<i8', (1, 1, 1, 1, 1, 1, 1, 2))]\n"
        "for name, dt, shape in specs:\n"
        "    t = np.dtype(dt)\n"
        "    if t.kind == 'f':\n"
        "        a = np.asarray(rng.standard_normal(shape) * 100).astype(t)\n"
        "    else:\n"
        "        info = np.iinfo(t)\n"
        "        a = rng.integers(info.min, info.max, size=shape, dtype=t.newbyteorder('='))"
        ".astype(t)\n"
        "    np.save(f'{d}/{name}.npy', a)\n"
        "    a.astype(t.newbyteorder('<')).tofile(f'{d}/{name}.bin')\n"
        "with open(f'{d}/two.npy', 'wb') as f:\n"
        "    np.save(f, np.arange(6, dtype='<i4').reshape(2, 3))\n"
        "    np.save(f, np.array([1.5, -2.0], dtype='>f8'))\n";
    char path[700], cmd[4096];
    snprintf(path, sizeof path, "%s/gen.py", dir);
    CHECK(write_file(path, script) == 0);
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s'", py, path, dir);
    if (!CHECK_MSG(system(cmd) == 0, "%s failed", cmd)) return;

    static const struct {
        const char *name;
        llm_dtype dtype;
        int swap, ndim;
        int64_t dim[LLM_MAX_DIMS];
    } cases[] = {
        {"f4", LLM_DTYPE_F32, 0, 2, {3, 5}},   {"f8", LLM_DTYPE_F64, 0, 1, {4}},
        {"f2", LLM_DTYPE_F16, 0, 3, {2, 3, 2}}, {"i1", LLM_DTYPE_I8, 0, 1, {17}},
        {"u1", LLM_DTYPE_U8, 0, 2, {2, 2}},    {"i4", LLM_DTYPE_I32, 0, 1, {6}},
        {"i8", LLM_DTYPE_I64, 0, 2, {3, 3}},   {"bf4", LLM_DTYPE_F32, 1, 2, {2, 5}},
        {"bf8", LLM_DTYPE_F64, 1, 0, {0}},     {"bf2", LLM_DTYPE_F16, 1, 1, {7}},
        {"bi4", LLM_DTYPE_I32, 1, 1, {5}},     {"bi8", LLM_DTYPE_I64, 1, 2, {2, 1}},
        {"e4", LLM_DTYPE_F32, 0, 2, {0, 3}},
        {"d8", LLM_DTYPE_I64, 0, 8, {1, 1, 1, 1, 1, 1, 1, 2}},
    };
    llm_error err = {0};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        snprintf(path, sizeof path, "%s/%s.npy", dir, cases[k].name);
        int fd = open(path, O_RDONLY);
        if (!CHECK_MSG(fd >= 0, "cannot open %s", path)) continue;
        llm_npy_header h;
        int rc = llm_npy_read_header(fd, path, &h, &err);
        CHECK_MSG(rc == 0, "%s", err.msg);
        if (rc == 0) {
            CHECK_MSG(h.dtype == cases[k].dtype && h.swap_bytes == cases[k].swap &&
                          shape_eq(&h.shape, cases[k].ndim, cases[k].dim) &&
                          h.header_bytes % 64 == 0,
                      "%s: dtype %d swap %d ndim %d", cases[k].name, h.dtype, h.swap_bytes,
                      h.shape.ndim);
            unsigned char *data = malloc(h.nbytes + 1);
            size_t want_len = 0;
            snprintf(path, sizeof path, "%s/%s.bin", dir, cases[k].name);
            unsigned char *want = check_slurp(path, &want_len);
            char extra;
            CHECK(data && want && want_len == h.nbytes);
            if (data && want && want_len == h.nbytes &&
                CHECK(read_exact(fd, data, h.nbytes) == 0) && CHECK(read(fd, &extra, 1) == 0)) {
                if (h.swap_bytes)
                    llm_npy_swap(data, h.nbytes * 8 / (uint64_t)llm_dtype_bits(h.dtype),
                                 llm_dtype_bits(h.dtype) / 8);
                CHECK_MSG(memcmp(data, want, h.nbytes) == 0, "%s: data differs",
                          cases[k].name);
            }
            free(data);
            free(want);
        }
        close(fd);
    }

    /* Two arrays saved one after the other into one file. */
    snprintf(path, sizeof path, "%s/two.npy", dir);
    int fd = open(path, O_RDONLY);
    if (!CHECK(fd >= 0)) return;
    llm_npy_header h;
    int32_t a[6];
    double b[2];
    CHECK_OK(llm_npy_read_header(fd, path, &h, &err), err);
    CHECK(h.dtype == LLM_DTYPE_I32 && h.nbytes == sizeof a && read_exact(fd, a, sizeof a) == 0);
    CHECK(a[0] == 0 && a[5] == 5);
    CHECK_OK(llm_npy_read_header(fd, path, &h, &err), err);
    CHECK(h.dtype == LLM_DTYPE_F64 && h.swap_bytes && read_exact(fd, b, sizeof b) == 0);
    llm_npy_swap(b, 2, 8);
    CHECK(b[0] == 1.5 && b[1] == -2.0);
    close(fd);
}

static void test_numpy_loads_ours(void)
{
    const char *py = numpy_python();
    if (!py) {
        check_skip("python3 with numpy not found");
        return;
    }
    char dir[600];
    snprintf(dir, sizeof dir, "%s/to_numpy", check_tmpdir());
    mkdir(dir, 0700);
    static const struct {
        int ndim;
        int64_t dim[LLM_MAX_DIMS];
    } shapes[] = {{0, {0}}, {1, {0}}, {1, {7}}, {2, {2, 3}}, {8, {1, 2, 1, 2, 1, 2, 1, 3}},
                  {2, {123456789, 0}}};
    size_t n_shapes = sizeof shapes / sizeof shapes[0];
    char path[700], list[700], cmd[4096];
    snprintf(list, sizeof list, "%s/list.txt", dir);
    FILE *lf = fopen(list, "w");
    if (!CHECK(lf != NULL)) return;
    llm_error err = {0};
    unsigned long long rng = 42;
    for (int d = 0; d < N_DTYPES; d++) {
        for (size_t k = 0; k < n_shapes; k++) {
            llm_shape s = llm_shape_make(shapes[k].ndim, shapes[k].dim);
            uint64_t nbytes;
            CHECK_OK(llm_payload_bytes(npy_dtypes[d], &s, &nbytes, &err), err);
            unsigned char data[256];
            for (uint64_t i = 0; i < nbytes && i < sizeof data; i++)
                data[i] = (unsigned char)(check_uniform(&rng) * 256);
            if (npy_dtypes[d] == LLM_DTYPE_F16 || npy_dtypes[d] == LLM_DTYPE_F32 ||
                npy_dtypes[d] == LLM_DTYPE_F64) /* finite floats, so == works */
                for (uint64_t i = 0; i < nbytes; i++) data[i] &= 0x3f;
            char name[64];
            snprintf(name, sizeof name, "%s_%zu", llm_dtype_name(npy_dtypes[d]), k);
            snprintf(path, sizeof path, "%s/%s.npy", dir, name);
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            CHECK(fd >= 0);
            CHECK_OK(llm_npy_write_header(fd, path, npy_dtypes[d], &s, &err), err);
            CHECK(write(fd, data, nbytes) == (ssize_t)nbytes);
            close(fd);
            snprintf(path, sizeof path, "%s/%s.bin", dir, name);
            FILE *f = fopen(path, "wb");
            CHECK(f && fwrite(data, 1, nbytes, f) == nbytes);
            if (f) fclose(f);
            fprintf(lf, "%s %s", name, llm_dtype_name(npy_dtypes[d]));
            for (int i = 0; i < s.ndim; i++) fprintf(lf, " %lld", (long long)s.dim[i]);
            fprintf(lf, "\n");
        }
    }
    fclose(lf);
    /* numpy loads each file, checks dtype, shape and data against the raw
     * copy, and saves the array again: the bytes must equal ours. */
    static const char script[] =
        "import sys, io, numpy as np\n"
        "d, listing = sys.argv[1], sys.argv[2]\n"
        "types = {'f32': '<f4', 'f64': '<f8', 'f16': '<f2', 'i8': '|i1', 'u8': '|u1',\n"
        "         'i32': '<i4', 'i64': '<i8'}\n"
        "n = 0\n"
        "for line in open(listing):\n"
        "    name, t, *dims = line.split()\n"
        "    shape = tuple(int(x) for x in dims)\n"
        "    a = np.load(f'{d}/{name}.npy')\n"
        "    assert a.dtype == np.dtype(types[t]), (name, a.dtype)\n"
        "    assert a.shape == shape, (name, a.shape, shape)\n"
        "    raw = np.fromfile(f'{d}/{name}.bin', dtype=types[t]).reshape(shape)\n"
        "    assert np.array_equal(a, raw), name\n"
        "    assert a.tobytes() == raw.tobytes(), name\n"
        "    b = io.BytesIO()\n"
        "    np.save(b, a)\n"
        "    assert b.getvalue() == open(f'{d}/{name}.npy', 'rb').read(), name\n"
        "    n += 1\n"
        "assert n == int(sys.argv[3]), n\n";
    snprintf(path, sizeof path, "%s/check.py", dir);
    CHECK(write_file(path, script) == 0);
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s' %d", py, path, dir, list,
             N_DTYPES * (int)n_shapes);
    CHECK_MSG(system(cmd) == 0, "%s failed", cmd);
}

int main(void)
{
    RUN(test_roundtrip);
    RUN(test_format_matches_numpy);
    RUN(test_format_rejects);
    RUN(test_parse_variants);
    RUN(test_parse_v2_v3);
    RUN(test_parse_rejects);
    RUN(test_parse_prefix_rejects);
    RUN(test_swap);
    RUN(test_read_header_pipe);
    RUN(test_read_header_errors);
    RUN(test_read_header_big_file);
    RUN(test_numpy_save_then_read);
    RUN(test_numpy_loads_ours);
    return check_done();
}
