/* libFuzzer target for what llm-attnviz does with its input: every
 * layers.L.attn.probs record of a stream read row by row (lib/attnmap), each
 * head's rows summed into its statistics (--stats, --check-causal), the
 * heads' maps compared (--head-sim) when they are small, and the first heads
 * drawn as images (to /dev/null) with the record's token labels (--labels).
 * The first input byte picks the drawing options (bit 0: color, 1: labels,
 * 2: log tone, 3: inverted, 4: 16-bit samples); the rest is the stream. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attnmap.h"
#include "attnstat.h"
#include "font.h"
#include "heatmap.h"
#include "labels.h"
#include "stream.h"

enum { DRAW_HEADS = 3, SIM_VALUES = 1 << 16, MAX_PIXELS = 1 << 22 };

/* One record: statistics per head, maps for --head-sim, images of the first heads. */
static void record(llm_reader *r, const llm_record *rec, unsigned opts, int out_fd)
{
    llm_error err = {0};
    llm_attnmap m;
    if (llm_attnmap_open(&m, r, rec, "fuzz", &err) < 0) return;
    llm_heatmap_opts ho = {.tone = {.maxval = opts & 16 ? 65535 : 255, .gamma = 1, .log = (opts >> 2) & 1,
                                    .invert = (opts >> 3) & 1},
                           .color = opts & 1, .scale = 1, .max_pixels = MAX_PIXELS};
    llm_labels lab = {0};
    const char *tokens = llm_record_attr(rec, "tokens");
    if ((opts & 2) && tokens && llm_labels_parse(&lab, tokens, m.T, &err) == 0)
        ho.labels = &lab, ho.scale = LLM_FONT_LINE;
    float *maps = m.heads <= SIM_VALUES / m.T / m.T ? malloc((size_t)(m.heads * m.T * m.T) * sizeof *maps) : NULL;
    llm_heatmap *hm = NULL;
    llm_attnstat st;
    const double *p;
    int64_t h, i;
    int rc;
    while ((rc = llm_attnmap_next(&m, &p, &h, &i, &err)) > 0) {
        if (i == 0) llm_attnstat_init(&st);
        llm_attnstat_add_row(&st, i, p, m.T);
        if (i == m.T - 1) llm_attnstat_finish(&st);
        if (maps)
            for (int64_t j = 0; j < m.T; j++) maps[(h * m.T + i) * m.T + j] = (float)p[j];
        if (h >= DRAW_HEADS) continue;
        if (i == 0 && llm_heatmap_open(&hm, &ho, m.T, 1, 1, out_fd, "fuzz.pgm", &err) < 0) hm = NULL;
        if (!hm) continue;
        llm_heatmap_put_row(hm, 0, i, p);
        if (i == m.T - 1) {
            if (llm_heatmap_end_band(hm, &err) < 0) llm_heatmap_free(hm);
            else (void)llm_heatmap_close(hm, &err); /* frees hm in every case */
            hm = NULL;
        }
    }
    llm_heatmap_free(hm);
    if (rc == 0 && maps) {
        double *sim = malloc((size_t)(m.heads * m.heads) * sizeof *sim);
        if (sim) llm_attnstat_head_sim(maps, m.heads, m.T * m.T, sim);
        free(sim);
    }
    free(maps);
    llm_labels_free(&lab);
    llm_attnmap_close(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int out_fd = -1;
    if (out_fd < 0 && (out_fd = open("/dev/null", O_WRONLY)) < 0) return 0;
    if (size < 1) return 0;
    llm_error err = {0};
    llm_reader *r;
    if (llm_reader_open_mem(&r, data + 1, size - 1, "fuzz", &err) < 0) return 0;
    const llm_record *rec;
    while (llm_reader_next(r, &rec, &err) > 0)
        if (llm_attnmap_layer(rec->name) >= 0) record(r, rec, data[0], out_fd);
    llm_reader_close(r);
    return 0;
}
