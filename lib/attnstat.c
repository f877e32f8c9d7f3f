/* attnstat — per-head attention statistics, causal leaks and head similarity. */
#include "attnstat.h"

#include <math.h>
#include <string.h>

void llm_attnstat_init(llm_attnstat *s)
{
    memset(s, 0, sizeof *s);
    s->leak_row = -1;
}

void llm_attnstat_add_row(llm_attnstat *s, int64_t i, const double *p, int64_t T)
{
    double entropy = 0, distance = 0, leak = 0;
    for (int64_t j = 0; j < T; j++) {
        if (p[j] > 0) entropy -= p[j] * log(p[j]);
        distance += p[j] * (double)(i - j);
        if (j > i) leak += fabs(p[j]);
    }
    s->entropy += entropy;
    s->distance += distance;
    s->diagonal += p[i];
    s->first += p[0];
    s->leak += leak;
    if (leak > s->leak_max) s->leak_max = leak, s->leak_row = i;
    s->rows++;
}

void llm_attnstat_finish(llm_attnstat *s)
{
    if (s->rows == 0) return;
    double n = (double)s->rows;
    s->entropy /= n, s->distance /= n, s->diagonal /= n, s->first /= n, s->leak /= n;
}

void llm_attnstat_head_sim(const float *maps, int64_t H, int64_t N, double *sim)
{
    #pragma omp parallel for schedule(dynamic, 1)
    for (int64_t a = 0; a < H; a++) {
        const float *x = maps + a * N;
        for (int64_t b = 0; b <= a; b++) {
            const float *y = maps + b * N;
            double xy = 0, xx = 0, yy = 0;
            for (int64_t k = 0; k < N; k++) {
                xy += (double)x[k] * y[k];
                xx += (double)x[k] * x[k];
                yy += (double)y[k] * y[k];
            }
            double c = xx > 0 && yy > 0 ? xy / (sqrt(xx) * sqrt(yy)) : 0;
            sim[a * H + b] = sim[b * H + a] = c;
        }
    }
}
