/* stats — chunked two-pass moments merged with Chan's parallel update. */
#include "stats.h"

#include <math.h>

void llm_stats_init(llm_stats *s)
{
    *s = (llm_stats){0};
    s->min = INFINITY;
    s->max = -INFINITY;
}

void llm_stats_merge(llm_stats *into, const llm_stats *from)
{
    into->nan += from->nan;
    into->inf += from->inf;
    if (from->count == 0) return;
    if (from->min < into->min) into->min = from->min;
    if (from->max > into->max) into->max = from->max;
    if (from->absmax > into->absmax) into->absmax = from->absmax;
    double na = (double)into->count, nb = (double)from->count, n = na + nb;
    double delta = from->mean - into->mean;
    into->mean += delta * nb / n;
    into->m2 += from->m2 + delta * delta * na * nb / n;
    into->count += from->count;
}

void llm_stats_add(llm_stats *s, const double *x, size_t n, size_t stride)
{
    llm_stats c;
    llm_stats_init(&c);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double v = x[i * stride];
        if (isnan(v)) { c.nan++; continue; }
        if (isinf(v)) { c.inf++; continue; }
        c.count++;
        sum += v;
        if (v < c.min) c.min = v;
        if (v > c.max) c.max = v;
        if (fabs(v) > c.absmax) c.absmax = fabs(v);
    }
    if (c.count) {
        c.mean = sum / (double)c.count;
        for (size_t i = 0; i < n; i++) {
            double v = x[i * stride];
            if (isfinite(v)) c.m2 += (v - c.mean) * (v - c.mean);
        }
    }
    llm_stats_merge(s, &c);
}

double llm_stats_std(const llm_stats *s)
{
    return s->count ? sqrt(s->m2 / (double)s->count) : 0.0;
}
