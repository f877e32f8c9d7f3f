/* calib — histograms of |x| that grow by doubling, and the max, percentile,
 * MSE and entropy (KL) thresholds computed from them (llm-calib(1)). */
#include "calib.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const method_names[LLM_CALIB_METHODS] = {"max", "percentile", "mse", "entropy"};

const char *llm_calib_method_name(int method)
{
    return method >= 0 && method < LLM_CALIB_METHODS ? method_names[method] : NULL;
}

int llm_calib_method_from_name(const char *name)
{
    for (int m = 0; m < LLM_CALIB_METHODS; m++)
        if (strcmp(name, method_names[m]) == 0) return m;
    return -1;
}

/* ---------- the histogram ---------- */

/* The smallest power of two strictly above a (a > 0). */
static double pow2_above(double a)
{
    int e;
    frexp(a, &e); /* a = m * 2^e, 0.5 <= m < 1 */
    return ldexp(1.0, e);
}

int llm_calib_hist_init(llm_calib_hist *h, int bins, llm_error *err)
{
    memset(h, 0, sizeof *h);
    if (bins < LLM_CALIB_MIN_BINS || bins > LLM_CALIB_MAX_BINS)
        return llm_error_set(err, LLM_ERR_ARG, "bin count %d outside %d..%d", bins, LLM_CALIB_MIN_BINS,
                             LLM_CALIB_MAX_BINS);
    int fine = bins * LLM_CALIB_FINE;
    h->count = calloc((size_t)fine, sizeof *h->count);
    if (!h->count) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory for a %d-bin histogram", fine);
    h->bins = bins, h->fine = fine;
    h->min = INFINITY, h->max = -INFINITY;
    return 0;
}

void llm_calib_hist_free(llm_calib_hist *h)
{
    if (!h) return;
    free(h->count);
    memset(h, 0, sizeof *h);
}

/* Widens the range to `range`, a power of two above the current one, merging
 * bins.  Bin j covers [j, j+1) * range / fine; after s doublings it lies
 * inside bin j >> s, whose edges are also edges of the old bins: the merge is
 * exact.  Destinations j >> s < j are already read, so this works in place. */
static void grow(llm_calib_hist *h, double range)
{
    if (h->range == 0) { /* every value so far was zero: bin 0 stays bin 0 */
        h->range = range;
        return;
    }
    int s = ilogb(range) - ilogb(h->range);
    for (int j = 1; j < h->fine; j++) { /* empty bins are left alone: their pages may never be touched */
        uint64_t c = h->count[j];
        if (!c) continue;
        h->count[j] = 0;
        h->count[s >= 31 ? 0 : j >> s] += c;
    }
    h->range = range;
}

void llm_calib_hist_add(llm_calib_hist *h, const float *x, size_t n)
{
    if (n == 0) return;
    double range = h->range, inv = range > 0 ? h->fine / range : 0;
    float mn = INFINITY, mx = -INFINITY;
    uint64_t *count = h->count;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
        /* |x| * fine / range is exact in a double (24 + 24 significant bits at
         * most), so a value's bin never depends on rounding */
        double a = fabsf(v);
        if (a >= range && a > 0) {
            grow(h, pow2_above(a));
            range = h->range, inv = h->fine / range;
        }
        count[(size_t)(a * inv)]++;
    }
    h->total += n;
    if (mn < h->min) h->min = mn;
    if (mx > h->max) h->max = mx;
    h->absmax = fmax(-h->min, h->max);
}

int llm_calib_hist_top(const llm_calib_hist *h)
{
    return h->total > 0 && h->absmax > 0 ? h->bins : 0;
}

/* ---------- the histogram as a density ----------
 *
 * Fine bin j holds its count spread evenly over [lo_j, hi_j): lo_j =
 * j * range / fine, hi_j = lo_{j+1}, except that the bin holding absmax (top)
 * ends at absmax.  The percentile, MSE and entropy methods read the
 * histogram through this density. */

/* The fine bin holding absmax (absmax > 0). */
static int fine_top(const llm_calib_hist *h)
{
    return (int)(h->absmax * h->fine / h->range); /* exact, as when counting */
}

/* The edges of fine bin j <= top. */
static void fine_edges(const llm_calib_hist *h, int top, int j, double *lo, double *hi)
{
    *lo = j * h->range / h->fine;
    *hi = j == top ? h->absmax : (j + 1) * h->range / h->fine;
}

void llm_calib_hist_rebin(const llm_calib_hist *h, double *count)
{
    memset(count, 0, (size_t)h->bins * sizeof *count);
    if (h->total == 0) return;
    if (h->absmax == 0) {
        count[0] = (double)h->total;
        return;
    }
    int top = fine_top(h), last = h->bins - 1;
    double per = h->bins / h->absmax; /* coarse bins per unit of |x| */
    for (int j = 0; j <= top; j++) {
        if (!h->count[j]) continue;
        double c = (double)h->count[j], lo, hi;
        fine_edges(h, top, j, &lo, &hi);
        if (!(hi > lo)) { /* the values of the top bin all equal absmax */
            count[last] += c;
            continue;
        }
        /* a fine bin is at most 1/16 of a coarse one: it overlaps one or two */
        int k = (int)(lo * per);
        if (k > last) k = last;
        if (k > 0 && (double)k * h->absmax / h->bins > lo) k--; /* lo * per rounded up to an edge */
        for (; k <= last; k++) {
            double a = (double)k * h->absmax / h->bins, b = k == last ? hi : (double)(k + 1) * h->absmax / h->bins;
            double part = fmin(hi, b) - fmax(lo, a);
            if (part > 0) count[k] += c * part / (hi - lo);
            if (b >= hi) break;
        }
    }
}

/* Smallest value v with at least p% of the values at or below it under the
 * density (within one fine bin of the order statistic). */
static double percentile_amax(const llm_calib_hist *h, double p)
{
    double target = p / 100.0 * (double)h->total, lo, hi;
    int top = fine_top(h);
    uint64_t below = 0;
    for (int j = 0; j <= top; j++) {
        if (h->count[j] && (double)(below + h->count[j]) >= target) {
            double frac = (target - (double)below) / (double)h->count[j];
            fine_edges(h, top, j, &lo, &hi);
            return lo + (frac > 0 ? frac : 0) * (hi - lo);
        }
        below += h->count[j];
    }
    return h->absmax;
}

/* Prefix sums of the density's moments: m[k][j] = the integral of x^k over
 * fine bins 0..j-1, k = 0, 1, 2, j = 0..top+1. */
typedef struct moments {
    const llm_calib_hist *h;
    int top;
    double *m[3];
} moments;

static int moments_init(moments *mo, const llm_calib_hist *h, llm_error *err)
{
    mo->h = h, mo->top = fine_top(h);
    size_t n = (size_t)mo->top + 2;
    for (int k = 0; k < 3; k++) mo->m[k] = malloc(n * sizeof *mo->m[k]);
    if (!mo->m[0] || !mo->m[1] || !mo->m[2]) {
        for (int k = 0; k < 3; k++) free(mo->m[k]);
        return llm_error_set(err, LLM_ERR_NOMEM, "out of memory for %zu prefix sums", 3 * n);
    }
    mo->m[0][0] = mo->m[1][0] = mo->m[2][0] = 0;
    for (int j = 0; j <= mo->top; j++) {
        double c = (double)h->count[j], lo, hi;
        fine_edges(h, mo->top, j, &lo, &hi);
        mo->m[0][j + 1] = mo->m[0][j] + c;
        mo->m[1][j + 1] = mo->m[1][j] + c * (lo + hi) / 2;
        mo->m[2][j + 1] = mo->m[2][j] + c * (lo * lo + lo * hi + hi * hi) / 3;
    }
    return 0;
}

static void moments_free(moments *mo)
{
    for (int k = 0; k < 3; k++) free(mo->m[k]);
}

/* The density's count, sum and sum of squares below x >= 0 (out[0..2]). */
static void moments_below(const moments *mo, double x, double *out)
{
    const llm_calib_hist *h = mo->h;
    int j = x < h->absmax ? (int)(x * h->fine / h->range) : mo->top + 1;
    if (j > mo->top) {
        for (int k = 0; k < 3; k++) out[k] = mo->m[k][mo->top + 1];
        return;
    }
    double lo, hi;
    fine_edges(h, mo->top, j, &lo, &hi);
    x = fmin(fmax(x, lo), hi); /* x * fine / range may round across an edge */
    double c = hi > lo ? (double)h->count[j] * (x - lo) / (hi - lo) : 0;
    out[0] = mo->m[0][j] + c;
    out[1] = mo->m[1][j] + c * (lo + x) / 2;
    out[2] = mo->m[2][j] + c * (lo * lo + lo * x + x * x) / 3;
}

/* Mean squared error of symmetric int8 quantize-dequantize with threshold t
 * over the density: q(v) = s * min(round(v / s), 127), s = t / 127, so level
 * k takes the values in [k - 1/2, k + 1/2) * s (level 127 every one from
 * 126.5 s up, the clipped ones too) and costs S2 - 2 k s S1 + (k s)^2 S0
 * over them. */
static double mse_at(const moments *mo, double t)
{
    double s = t / (LLM_CALIB_LEVELS - 1), sum = 0, prev[3] = {0, 0, 0}, cur[3];
    for (int k = 0; k < LLM_CALIB_LEVELS; k++) {
        moments_below(mo, k < LLM_CALIB_LEVELS - 1 ? (k + 0.5) * s : INFINITY, cur);
        double L = k * s;
        sum += (cur[2] - prev[2]) - 2 * L * (cur[1] - prev[1]) + L * L * (cur[0] - prev[0]);
        memcpy(prev, cur, sizeof prev);
    }
    return sum > 0 ? sum / (double)mo->h->total : 0;
}

static double xlogx(double x)
{
    return x > 0 ? x * log(x) : 0;
}

/* KL(P || Q) for every candidate i in LLM_CALIB_LEVELS..bins (kl[i - 1]) over
 * the counts h[0..bins), as TensorRT Model Optimizer computes it.  P: the
 * first i bins, the mass above them added to bin i - 1.  Q: the first i bins
 * without that mass, merged into 128 groups (bin j into group j * 128 / i),
 * each group's mass spread evenly over its non-empty bins.  Both normalised,
 * KL = sum over P > 0 of p log(p / q); infinite where P > 0 and Q = 0 (mass
 * clipped onto an empty bin i - 1) or when no mass lies below bin i.  Q is
 * constant inside a group, so with prefix sums of counts, of non-empty bins
 * and of c log c, each candidate costs one step per group:
 *   total * KL = sum_j P_j log P_j - sum_g PG_g log Q_g + total * log(sumQ / total)
 * where PG_g is P's mass in group g, Q_g the value Q has on its bins and
 * sumQ the mass below bin i. */
static int kl_curve(const double *h, int bins, double *kl, llm_error *err)
{
    size_t n = (size_t)bins + 1;
    double *cum = malloc(n * sizeof *cum), *above = malloc(n * sizeof *above), *clogc = malloc(n * sizeof *clogc);
    int *nz = malloc(n * sizeof *nz);
    if (!cum || !above || !clogc || !nz) {
        free(cum), free(above), free(clogc), free(nz);
        return llm_error_set(err, LLM_ERR_NOMEM, "out of memory for a %d-point curve", bins);
    }
    cum[0] = clogc[0] = 0, nz[0] = 0;
    for (int j = 0; j < bins; j++) {
        cum[j + 1] = cum[j] + h[j];
        clogc[j + 1] = clogc[j] + xlogx(h[j]);
        nz[j + 1] = nz[j] + (h[j] > 0);
    }
    above[bins] = 0; /* summed from the top: exactly 0 when nothing is beyond */
    for (int j = bins - 1; j >= 0; j--) above[j] = above[j + 1] + h[j];
    double total = above[0];
    for (int i = 1; i < bins && i < LLM_CALIB_LEVELS; i++) kl[i - 1] = NAN;
    for (int i = LLM_CALIB_LEVELS; i <= bins; i++) {
        double clipped = above[i], last = h[i - 1];
        if (cum[i] <= 0 || (clipped > 0 && last == 0)) {
            kl[i - 1] = INFINITY;
            continue;
        }
        /* sum of P log P: the clipped bins, the last one with the clipped mass added */
        double plogp = clogc[i - 1] + xlogx(last + clipped), pg_logq = 0;
        for (int g = 0; g < LLM_CALIB_LEVELS; g++) {
            int a = (g * i + LLM_CALIB_LEVELS - 1) / LLM_CALIB_LEVELS;
            int b = ((g + 1) * i + LLM_CALIB_LEVELS - 1) / LLM_CALIB_LEVELS;
            int support = nz[b] - nz[a]; /* Q's non-empty bins, P's too */
            if (support == 0) continue;
            double mass = cum[b] - cum[a];
            if (!(mass > 0)) /* a sliver of mass lost to rounding in the prefix sums */
                for (int k = a; k < b; k++) mass += h[k];
            pg_logq += (b == i ? mass + clipped : mass) * log(mass / support);
        }
        double v = (plogp - pg_logq) / total + log(cum[i] / total);
        kl[i - 1] = v > 0 ? v : 0; /* KL >= 0; rounding may leave -1e-17 */
    }
    free(cum), free(above), free(clogc), free(nz);
    return 0;
}

int llm_calib_curves(const llm_calib_hist *h, double *mse, double *kl, llm_error *err)
{
    int top = llm_calib_hist_top(h);
    if (top == 0) return 0;
    if (mse) {
        moments mo;
        TRY(moments_init(&mo, h, err));
        for (int j = 1; j <= top; j++) mse[j - 1] = mse_at(&mo, (double)j * h->absmax / h->bins);
        moments_free(&mo);
    }
    if (kl) {
        double *coarse = malloc((size_t)h->bins * sizeof *coarse);
        if (!coarse) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory for a %d-bin histogram", h->bins);
        llm_calib_hist_rebin(h, coarse);
        int rc = kl_curve(coarse, h->bins, kl, err);
        free(coarse);
        return rc;
    }
    return 0;
}

/* The index of the smallest value, among equals the first (or the last when
 * `last`), or -1 when none is a number. */
static int argmin(const double *v, int n, int last)
{
    int best = -1;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i]) && (best < 0 || v[i] < v[best] || (last && v[i] == v[best]))) best = i;
    return best;
}

int llm_calib_amax(const llm_calib_hist *h, llm_calib_method method, double percentile, double *amax,
                   llm_error *err)
{
    *amax = 0;
    if (method < 0 || method >= LLM_CALIB_METHODS)
        return llm_error_set(err, LLM_ERR_ARG, "unknown calibration method %d", (int)method);
    if (method == LLM_CALIB_PERCENTILE && !(percentile > 0 && percentile <= 100))
        return llm_error_set(err, LLM_ERR_ARG, "percentile %g outside (0, 100]", percentile);
    if (h->total == 0 || h->absmax == 0) return 0;
    /* one repeated value: every method agrees, and bins would only blur it */
    if (method == LLM_CALIB_MAX || h->min == h->max) {
        *amax = h->absmax;
        return 0;
    }
    double t;
    if (method == LLM_CALIB_PERCENTILE) {
        t = percentile_amax(h, percentile);
    } else {
        double *curve = malloc((size_t)h->bins * sizeof *curve);
        if (!curve) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory for a %d-point curve", h->bins);
        int rc = llm_calib_curves(h, method == LLM_CALIB_MSE ? curve : NULL,
                                  method == LLM_CALIB_ENTROPY ? curve : NULL, err);
        int best = rc < 0 ? -1 : argmin(curve, h->bins, method == LLM_CALIB_ENTROPY);
        free(curve);
        if (rc < 0) return rc;
        t = best < 0 ? h->absmax : (double)(best + 1) * h->absmax / h->bins;
    }
    *amax = t < h->absmax ? t : h->absmax;
    return 0;
}

/* ---------- aggregation per name ---------- */

enum { CHUNK_VALUES = 1 << 18 }; /* values per chunk: 1 MiB of f32 */

struct llm_calib {
    llm_calib_opts opts;
    llm_calib_entry **entries; /* [n], in order of first appearance; each allocated alone */
    int n, cap;
    int *slots;                /* [n_slots] hash table of entry indices, -1: empty */
    int n_slots;
};

/* A chunk of one record's values, ready to count. */
typedef struct job {
    llm_calib_entry *e;
    uint64_t record;   /* the record's index among its name's records */
    char seq[32];      /* its seq= attribute, "" when none */
    float *x;          /* [n] */
    size_t n;
    uint64_t offset;   /* element index of x[0] in the record */
    int64_t width;     /* channels (per_channel), chunks hold whole rows */
    int last;          /* the record's last chunk */
} job;

/* Where a stream's records come from while it is being read. */
typedef struct source {
    llm_reader *r;           /* NULL for a tensor in memory */
    const unsigned char *mem;
    llm_dtype dtype;
    uint64_t left;           /* values of the current record not yet read */
    uint64_t offset;         /* values of it already read */
    uint64_t record;
    char seq[32];
    llm_calib_entry *e;
    int64_t width;
    int in_record;
    void *raw;               /* conversion scratch for dtypes other than f32 */
    size_t raw_cap;
} source;

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static int slots_rebuild(llm_calib *c, int n_slots)
{
    int *slots = malloc((size_t)n_slots * sizeof *slots);
    if (!slots) return -1;
    for (int i = 0; i < n_slots; i++) slots[i] = -1;
    for (int i = 0; i < c->n; i++) {
        size_t k = name_hash(c->entries[i]->name) & (size_t)(n_slots - 1);
        while (slots[k] >= 0) k = (k + 1) & (size_t)(n_slots - 1);
        slots[k] = i;
    }
    free(c->slots);
    c->slots = slots, c->n_slots = n_slots;
    return 0;
}

int llm_calib_create(llm_calib **out, const llm_calib_opts *opts, llm_error *err)
{
    *out = NULL;
    llm_calib *c = calloc(1, sizeof *c);
    if (!c) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    c->opts = opts ? *opts : (llm_calib_opts){0};
    if (!c->opts.bins) c->opts.bins = LLM_CALIB_BINS;
    if (!c->opts.percentile) c->opts.percentile = 99.99;
    if (c->opts.bins < LLM_CALIB_MIN_BINS || c->opts.bins > LLM_CALIB_MAX_BINS ||
        !(c->opts.percentile > 0 && c->opts.percentile <= 100)) {
        free(c);
        return llm_error_set(err, LLM_ERR_ARG, "calibration options out of range (bins %d, percentile %g)",
                             opts ? opts->bins : 0, opts ? opts->percentile : 0);
    }
    if (slots_rebuild(c, 64) < 0) {
        free(c);
        return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    }
    *out = c;
    return 0;
}

static void entry_free(llm_calib_entry *e)
{
    if (!e) return;
    free(e->name);
    llm_calib_hist_free(&e->hist);
    free(e->channel_absmax);
    free(e);
}

void llm_calib_free(llm_calib *c)
{
    if (!c) return;
    for (int i = 0; i < c->n; i++) entry_free(c->entries[i]);
    free(c->entries);
    free(c->slots);
    free(c);
}

int llm_calib_count(const llm_calib *c)
{
    return c->n;
}

const llm_calib_entry *llm_calib_entry_at(const llm_calib *c, int i)
{
    return i >= 0 && i < c->n ? c->entries[i] : NULL;
}

/* The entry of name, created on first sight. */
static int entry_get(llm_calib *c, const char *name, llm_calib_entry **out, llm_error *err)
{
    size_t mask = (size_t)c->n_slots - 1, k = name_hash(name) & mask;
    for (; c->slots[k] >= 0; k = (k + 1) & mask)
        if (strcmp(c->entries[c->slots[k]]->name, name) == 0) {
            *out = c->entries[c->slots[k]];
            return 0;
        }
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        llm_calib_entry **v = realloc(c->entries, (size_t)cap * sizeof *v);
        if (!v) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
        c->entries = v, c->cap = cap;
    }
    llm_calib_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->name = strdup(name))) {
        free(e);
        return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    }
    int rc = llm_calib_hist_init(&e->hist, c->opts.bins, err);
    if (rc < 0) {
        entry_free(e);
        return rc;
    }
    e->width = -1;
    c->slots[k] = c->n;
    c->entries[c->n++] = e;
    if (2 * c->n > c->n_slots && slots_rebuild(c, 2 * c->n_slots) < 0)
        return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    *out = e;
    return 0;
}

/* Starts a record: checks its dtype and shape, finds its entry. */
static int record_begin(llm_calib *c, source *s, const char *name, llm_dtype dtype, const llm_shape *shape,
                        const char *seq, llm_error *err)
{
    if (!llm_dtype_is_float(dtype))
        return llm_error_set(err, LLM_ERR_FORMAT,
                             "%s: dtype %s: calibration needs floating-point values (f32, f16, bf16, f64)", name,
                             llm_dtype_name(dtype));
    int64_t numel = llm_shape_numel(shape);
    if (numel < 0) return llm_error_set(err, LLM_ERR_FORMAT, "%s: invalid shape", name);
    llm_calib_entry *e = NULL;
    TRY(entry_get(c, name, &e, err));
    int64_t width = shape->ndim > 0 ? shape->dim[shape->ndim - 1] : 1;
    if (c->opts.per_channel) {
        if (width < 1 || width > LLM_CALIB_MAX_WIDTH)
            return llm_error_set(err, LLM_ERR_LIMIT, "%s: record %llu: %lld channels: --per-channel takes 1..%d",
                                 name, (unsigned long long)e->records_begun, (long long)width, LLM_CALIB_MAX_WIDTH);
        if (e->width < 0) {
            e->width = width; /* channel_absmax comes with the first values (count_job) */
        } else if (e->width != width) {
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: record %llu has %lld channels, earlier ones %lld", name,
                                 (unsigned long long)e->records_begun, (long long)width, (long long)e->width);
        }
    } else if (e->width < 0) {
        e->width = width;
    }
    s->e = e;
    s->dtype = dtype;
    s->left = (uint64_t)numel;
    s->offset = 0;
    s->record = e->records_begun++;
    s->width = c->opts.per_channel ? width : 1;
    s->in_record = 1;
    snprintf(s->seq, sizeof s->seq, "%s", seq ? seq : "");
    return 0;
}

/* Values per chunk for the current record: whole rows when counting channels. */
static size_t chunk_values(const source *s)
{
    if (s->width <= 1) return CHUNK_VALUES;
    size_t rows = CHUNK_VALUES / (size_t)s->width;
    return (rows ? rows : 1) * (size_t)s->width;
}

static int need(void **buf, size_t *cap, size_t bytes, llm_error *err)
{
    if (bytes <= *cap) return 0;
    void *p = realloc(*buf, bytes);
    if (!p) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory for a %zu-byte chunk", bytes);
    *buf = p, *cap = bytes;
    return 0;
}

/* Converts n values of dtype at src to floats; a finite f64 beyond the float
 * range is an error (it would otherwise be counted as infinite). */
static int to_float(const source *s, const void *src, size_t n, float *dst, llm_error *err)
{
    const uint16_t *h = src;
    const double *d = src;
    if (n == 0) return 0;
    switch (s->dtype) {
    case LLM_DTYPE_F32: memcpy(dst, src, n * sizeof *dst); break;
    case LLM_DTYPE_F16: for (size_t i = 0; i < n; i++) dst[i] = llm_f16_to_f32(h[i]); break;
    case LLM_DTYPE_BF16: for (size_t i = 0; i < n; i++) dst[i] = llm_bf16_to_f32(h[i]); break;
    case LLM_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            if (isfinite(d[i]) && fabs(d[i]) > FLT_MAX)
                return llm_error_set(err, LLM_ERR_FORMAT, "%s: record %llu: element %llu (%g) is beyond the float range",
                                     s->e->name, (unsigned long long)s->record,
                                     (unsigned long long)(s->offset + i), d[i]);
            dst[i] = (float)d[i];
        }
        break;
    default: return llm_error_set(err, LLM_ERR_STATE, "unexpected dtype");
    }
    return 0;
}

/* Fills j with the next chunk of values (into *buf), reading record headers as
 * needed.  1: a chunk; 0: the end of the input; < 0: an error. */
static int next_job(llm_calib *c, source *s, job *j, float **buf, size_t *cap, llm_error *err)
{
    while (!s->in_record) {
        if (!s->r) return 0;
        const llm_record *rec;
        int rc = llm_reader_next(s->r, &rec, err);
        if (rc <= 0) return rc;
        if (rec->kind != LLM_RECORD_TENSOR) continue;
        TRY(record_begin(c, s, rec->name, rec->dtype, &rec->shape, llm_record_attr(rec, "seq"), err));
    }
    size_t n = chunk_values(s);
    if (n > s->left) n = (size_t)s->left;
    size_t bytes = n * (size_t)llm_dtype_bits(s->dtype) / 8;
    TRY(need((void **)buf, cap, n * sizeof(float), err));
    const void *src;
    if (s->r) {
        void *dst = *buf;
        if (s->dtype != LLM_DTYPE_F32) {
            TRY(need(&s->raw, &s->raw_cap, bytes, err));
            dst = s->raw;
        }
        int64_t got = llm_reader_read(s->r, dst, bytes, err);
        if (got < 0) return (int)got;
        if ((size_t)got != bytes)
            return llm_error_set(err, LLM_ERR_TRUNCATED, "%s: record %llu ends early", s->e->name,
                                 (unsigned long long)s->record);
        src = dst;
    } else {
        src = s->mem;
        s->mem += bytes;
    }
    if (src != *buf) TRY(to_float(s, src, n, *buf, err));
    *j = (job){.e = s->e, .record = s->record, .x = *buf, .n = n, .offset = s->offset, .width = s->width};
    memcpy(j->seq, s->seq, sizeof j->seq);
    s->left -= n;
    s->offset += n;
    if (s->left == 0) {
        j->last = 1;
        s->in_record = 0;
    }
    return 1;
}

/* Index of the first NaN or Inf in x[0..n), or -1.  The exponent test on the
 * bits vectorises; it is the fast path for clean data. */
static int64_t first_nonfinite(const float *x, size_t n)
{
    const uint32_t *u = (const uint32_t *)(const void *)x;
    uint32_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t e = u[i] & 0x7f800000u;
        worst = e > worst ? e : worst;
    }
    if (worst != 0x7f800000u) return -1;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return (int64_t)i;
    return -1;
}

/* Counts a chunk into its entry; fails on NaN/Inf unless skipping them. */
static int count_job(llm_calib *c, const job *j, llm_error *err)
{
    llm_calib_entry *e = j->e;
    const float *x = j->x;
    int64_t bad = first_nonfinite(x, j->n);
    if (bad >= 0 && !c->opts.skip_nonfinite)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: record %llu%s%s%s: element %llu is %s (--skip-nonfinite skips such values)",
                             e->name, (unsigned long long)j->record, j->seq[0] ? " (seq=" : "", j->seq,
                             j->seq[0] ? ")" : "", (unsigned long long)(j->offset + (uint64_t)bad),
                             isnan(x[bad]) ? "NaN" : x[bad] > 0 ? "+Inf" : "-Inf");
    if (bad < 0) {
        llm_calib_hist_add(&e->hist, x, j->n);
    } else { /* the finite runs between the skipped values */
        size_t run = 0;
        for (size_t i = 0; i <= j->n; i++) {
            if (i < j->n && isfinite(x[i])) continue;
            llm_calib_hist_add(&e->hist, x + run, i - run);
            if (i < j->n) e->nonfinite++;
            run = i + 1;
        }
    }
    if (c->opts.per_channel && j->n > 0 && !e->channel_absmax && /* with the first values */
        !(e->channel_absmax = calloc((size_t)e->width, sizeof *e->channel_absmax)))
        return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory for %lld channels", e->name, (long long)e->width);
    if (e->channel_absmax)
        for (size_t r = 0; r < j->n; r += (size_t)j->width)
            for (int64_t k = 0; k < j->width; k++) {
                float v = fabsf(x[r + (size_t)k]);
                /* NaN never compares greater; Inf is only here when skipped */
                if (v > e->channel_absmax[k] && v <= FLT_MAX) e->channel_absmax[k] = v;
            }
    if (!j->last) return 0;
    e->records++;
    /* the report's snapshots: at 32, 64, 128, ... records */
    if (c->opts.report && e->records >= 32 && (e->records & (e->records - 1)) == 0 &&
        e->n_snapshots < LLM_CALIB_MAX_SNAPSHOTS) {
        llm_calib_snapshot *sn = &e->snapshots[e->n_snapshots++];
        memset(sn, 0, sizeof *sn);
        sn->records = e->records;
        for (int m = 0; m < LLM_CALIB_METHODS; m++)
            if (c->opts.report & (1u << m))
                TRY(llm_calib_amax(&e->hist, (llm_calib_method)m, c->opts.percentile, &sn->amax[m], err));
    }
    return 0;
}

/* The whole loop: read a chunk, count it. */
static int run(llm_calib *c, source *s, llm_error *err)
{
    float *buf = NULL;
    size_t cap = 0;
    job j;
    int rc;
    while ((rc = next_job(c, s, &j, &buf, &cap, err)) > 0)
        if ((rc = count_job(c, &j, err)) < 0) break;
    free(buf);
    return rc;
}

int llm_calib_add_stream(llm_calib *c, llm_reader *r, llm_error *err)
{
    source s = {.r = r};
    int rc = run(c, &s, err);
    free(s.raw);
    return rc;
}

int llm_calib_add(llm_calib *c, const char *name, llm_dtype dtype, const llm_shape *shape, const void *data,
                  llm_error *err)
{
    source s = {.mem = data};
    TRY(record_begin(c, &s, name, dtype, shape, NULL, err));
    return run(c, &s, err);
}

/* ---------- reading a calibration table ---------- */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

/* Adds the current record of r (a 1-D f32 tensor) to t. */
static int table_add(llm_calib_table *t, llm_reader *r, const llm_record *rec, llm_error *err)
{
    if (rec->dtype != LLM_DTYPE_F32 || rec->shape.ndim != 1)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s is %s, not a 1-D f32 tensor", t->path, rec->name,
                             llm_dtype_name(rec->dtype));
    llm_calib_table_entry *grown = realloc(t->e, (size_t)(t->n + 1) * sizeof *grown);
    if (!grown) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    t->e = grown;
    llm_calib_table_entry *e = &t->e[t->n++];
    const char *methods = llm_record_attr(rec, "methods");
    *e = (llm_calib_table_entry){.name = strdup(rec->name), .n = rec->shape.dim[0],
                                 .methods = methods ? strdup(methods) : NULL};
    if (!e->name || (methods && !e->methods)) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    llm_tensor tt;
    if (llm_reader_read_tensor(r, &tt, err) < 0) return llm_error_prefix(err, "%s", t->path);
    e->data = tt.data;
    for (int64_t i = 0; i < e->n; i++)
        if (!(e->data[i] >= 0 && isfinite(e->data[i])))
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s holds %g", t->path, e->name, (double)e->data[i]);
    return 0;
}

int llm_calib_table_read(llm_calib_table *t, const char *path, llm_error *err)
{
    *t = (llm_calib_table){.path = strdup(path)};
    if (!t->path) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    llm_reader *r;
    TRY(llm_reader_open(&r, path, err));
    const llm_record *rec;
    int rc;
    while ((rc = llm_reader_next(r, &rec, err)) > 0) {
        int wanted = ends_with(rec->name, ".absmax") || ends_with(rec->name, ".scale");
        if (rec->kind != LLM_RECORD_TENSOR || !wanted) continue;
        if ((rc = table_add(t, r, rec, err)) < 0) break;
    }
    llm_reader_close(r);
    return rc < 0 ? rc : 0;
}

void llm_calib_table_free(llm_calib_table *t)
{
    if (!t) return;
    for (int i = 0; i < t->n; i++) free(t->e[i].name), free(t->e[i].data), free(t->e[i].methods);
    free(t->e);
    free(t->path);
    *t = (llm_calib_table){0};
}

const llm_calib_table_entry *llm_calib_table_find(const llm_calib_table *t, const char *input, const char *what)
{
    char name[LLM_MAX_NAME + 16];
    snprintf(name, sizeof name, "%s.%s", input, what);
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->e[i].name, name)) return &t->e[i];
    return NULL;
}

int llm_calib_table_method_index(const char *list, const char *method)
{
    int i = 0;
    size_t n = strlen(method);
    for (const char *p = list; p && *p; i++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, method, n)) return i;
        p = end ? end + 1 : p + len;
    }
    return -1;
}

int llm_calib_table_scale(const llm_calib_table *t, const char *input, const char *method, float *scale,
                          llm_error *err)
{
    const llm_calib_table_entry *e = llm_calib_table_find(t, input, "scale");
    if (!e) return llm_error_set(err, LLM_ERR_FORMAT, "%s: no %s.scale for w8a8", t->path, input);
    const char *listed = e->methods ? e->methods : "";
    int k = llm_calib_table_method_index(e->methods, method ? method : "entropy");
    if (k < 0 && method)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s.scale has no method '%s' (methods=%s)", t->path, input,
                             method, listed);
    if (k < 0) k = 0;
    if (k >= e->n)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s.scale has %" PRId64 " values for methods=%s", t->path,
                             input, e->n, listed);
    *scale = e->data[k] > 0 ? e->data[k] : 1.0f;
    return 0;
}

int llm_calib_amax_all(const llm_calib *c, const int *methods, int n, double percentile, int threads,
                       double *amax, llm_error *err)
{
    int count = llm_calib_count(c);
    int *failed = calloc((size_t)count + 1, sizeof *failed);
    if (!failed) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
#pragma omp parallel for schedule(dynamic) num_threads(threads > 0 ? threads : 1)
    for (int i = 0; i < count; i++)
        for (int k = 0; k < n; k++)
            if (llm_calib_amax(&llm_calib_entry_at(c, i)->hist, (llm_calib_method)methods[k], percentile,
                               &amax[(size_t)i * LLM_CALIB_METHODS + k], NULL) < 0)
                failed[i] = 1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < count; i++) /* again, alone, for the message */
        for (int k = 0; failed[i] && rc == 0 && k < n; k++)
            if ((rc = llm_calib_amax(&llm_calib_entry_at(c, i)->hist, (llm_calib_method)methods[k], percentile,
                                     &amax[(size_t)i * LLM_CALIB_METHODS + k], err)) < 0)
                llm_error_prefix(err, "%s", llm_calib_entry_at(c, i)->name);
    free(failed);
    return rc;
}
