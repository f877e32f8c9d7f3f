/* rope — rotary position embeddings (Su et al., RoFormer) and their
 * long-context scalings.
 *
 * Each head vector is split into pairs (x[2i], x[2i+1]), as in Meta's Llama
 * and llama2.c, and pair i at position p is rotated by the angle p * f_i with
 * f_i = theta^(-2i/d).  q.k then depends only on the distance between the two
 * positions.  The cos/sin table is computed in double precision, position by
 * position as positions come into use (llm_rope_reserve): a context of
 * millions of positions costs nothing until they are used, and each entry is
 * the same whenever it is computed.  The rotation is orthogonal, so its
 * backward pass is the rotation by -angle.
 *
 *     llm_rope r;
 *     LLM_TRY(llm_rope_init(&r, 64, 2048, 10000.0, &err));    // head size, positions, base
 *     LLM_TRY(llm_rope_reserve(&r, T, &err));                 // positions 0..T-1 tabulated
 *     llm_rope_apply(&r, q, B * T, ld, n_heads, T, 0, 0); // row i at position i % T
 *     llm_rope_free(&r);
 *
 * Scalings.  A model trained on orig_ctx positions sees, beyond them, angles
 * it never saw; a scaling changes the frequencies so that a longer context
 * lands (mostly) on trained angles.  With d the head size, b = theta the base,
 * F = factor >= 1, f_i = b^(-2i/d) for i = 0..d/2-1, and f'_i what the table
 * uses:
 *
 *   none         f'_i = f_i.
 *   linear       Position interpolation (Chen et al. 2023, "Extending Context
 *                Window of Large Language Models via Positional
 *                Interpolation"): positions divided by F, i.e. f'_i = f_i / F.
 *   ntk          NTK-aware scaling (bloc97, r/LocalLLaMA, June 2023): the base
 *                becomes b' = b * F^(d/(d-2)), f'_i = b'^(-2i/d).  The highest
 *                frequency (i = 0) is unchanged and the lowest (i = d/2-1) is
 *                exactly f_i / F: high frequencies extrapolate, low ones
 *                interpolate.  Needs d >= 4.
 *   dynamic-ntk  Dynamic NTK (emozilla; as in Hugging Face transformers'
 *                _compute_dynamic_ntk_parameters): with L = cur_len, the
 *                sequence length in use (the caller passes the context it will
 *                run at; 0 means max_pos), b' = b * (F*L/orig_ctx - (F-1))^(d/(d-2))
 *                when L > orig_ctx, else b' = b (unscaled); f'_i = b'^(-2i/d).
 *                (So F = 1 still scales beyond orig_ctx, as NTK by L/orig_ctx.)
 *                The table is built once for that L.  Needs d >= 4.
 *   yarn         YaRN (Peng, Quesnelle, Fan, Shippole 2023, "YaRN: Efficient
 *                Context Window Extension of Large Language Models", section
 *                3.2 "NTK-by-parts" and 3.4): with wavelength
 *                lambda_i = 2*pi/f_i and r_i = orig_ctx/lambda_i the number of
 *                rotations pair i makes over the trained context,
 *                  gamma_i = clamp((r_i - alpha)/(beta - alpha), 0, 1),
 *                  f'_i = (1 - gamma_i) * f_i/F + gamma_i * f_i,
 *                alpha = yarn_alpha (default 1), beta = yarn_beta (default 32).
 *                Pairs turning more than beta times keep f_i (extrapolate),
 *                pairs turning less than alpha times get f_i/F (interpolate).
 *                This is the paper's ramp, linear in r.  The authors' code
 *                (jquesnelle/yarn, and transformers' _compute_yarn_parameters,
 *                beta_fast = 32 = beta, beta_slow = 1 = alpha) instead ramps
 *                linearly in the pair index i between floor(i(beta)) and
 *                ceil(i(alpha)), i(n) = d*ln(orig_ctx/(2*pi*n))/(2*ln b) being
 *                where r_i = n: the two agree outside the ramp and differ
 *                slightly inside it.  YaRN also sharpens attention: the logits
 *                q.k/sqrt(d) are multiplied by 1/t = (0.1*ln F + 1)^2 (the
 *                paper's sqrt(1/t) = 0.1 ln F + 1, which the code folds into
 *                both q and k), see llm_rope_attn_scale.  The table itself stays a
 *                pure rotation.
 *
 *     llm_rope_scaling s = {.kind = LLM_ROPE_YARN, .factor = 4, .orig_ctx = 128};
 *     LLM_TRY(llm_rope_init_scaled(&r, 64, 512, 10000.0, &s, &err));
 *     float logit_scale = llm_rope_attn_scale(&s) / sqrtf(64);
 */
#ifndef LLM_ROPE_H
#define LLM_ROPE_H

#include "err.h"

typedef struct llm_rope {
    int head_dim;  /* d, even */
    int max_pos;   /* positions 0..max_pos-1 may be tabulated */
    int n_pos;     /* positions tabulated so far (llm_rope_reserve) */
    int cap;       /* positions the table has room for */
    double *freq;  /* [d/2] radians per position of each pair */
    float *cos;    /* [n_pos, d/2] */
    float *sin;    /* [n_pos, d/2] */
} llm_rope;

/* Sets up unscaled RoPE for head size d = head_dim (even, > 0), positions
 * 0..max_pos-1 and base theta (> 1): the frequencies, and an empty table
 * (llm_rope_reserve fills it).  r is the caller's; on success it owns what it
 * holds until llm_rope_free; on error r is zeroed (freeing it is safe).
 * Returns 0 or LLM_ERR_ARG / LLM_ERR_NOMEM. */
int llm_rope_init(llm_rope *r, int head_dim, int max_pos, double theta, llm_error *err);
void llm_rope_free(llm_rope *r);

/* Tabulates positions 0..n_pos-1 (n_pos <= max_pos), computing only the ones
 * not tabulated yet; the table's room grows by doubling.  0, LLM_ERR_ARG for
 * n_pos beyond max_pos, or LLM_ERR_NOMEM (the table is left as it was). */
int llm_rope_reserve(llm_rope *r, int n_pos, llm_error *err);

/* The scalings (see the top of this file).  Values are stable. */
typedef enum {
    LLM_ROPE_NONE = 0,
    LLM_ROPE_LINEAR = 1,
    LLM_ROPE_NTK = 2,
    LLM_ROPE_DYNAMIC_NTK = 3,
    LLM_ROPE_YARN = 4,
} llm_rope_kind;

typedef struct llm_rope_scaling {
    llm_rope_kind kind;
    double factor;             /* F >= 1; ignored by none */
    int orig_ctx;              /* the context trained on (dynamic-ntk, yarn), >= 1 */
    int cur_len;               /* dynamic-ntk: the sequence length in use; 0 = max_pos */
    double yarn_alpha, yarn_beta; /* yarn ramp bounds in rotations; 0 = 1 and 32 */
} llm_rope_scaling;

/* Like llm_rope_init, with the frequencies changed by s (NULL = none; for
 * dynamic-ntk they depend on max_pos or cur_len, never on the positions
 * tabulated).  Checks
 * that the factor is finite and >= 1 for every kind but none, orig_ctx >= 1
 * for dynamic-ntk and yarn, cur_len >= 0, 0 < alpha < beta for yarn and
 * d >= 4 for ntk and dynamic-ntk.  Returns 0 or LLM_ERR_ARG / LLM_ERR_NOMEM,
 * with r zeroed on error. */
int llm_rope_init_scaled(llm_rope *r, int head_dim, int max_pos, double theta,
                         const llm_rope_scaling *s, llm_error *err);

/* Writes the d/2 frequencies (radians per position) that
 * llm_rope_init_scaled would use into freq[0..head_dim/2-1] (the caller's).
 * Same arguments and checks; returns 0 or LLM_ERR_ARG. */
int llm_rope_freqs(double *freq, int head_dim, int max_pos, double theta,
                   const llm_rope_scaling *s, llm_error *err);

/* The factor that multiplies the attention logits q.k/sqrt(d): YaRN's
 * (0.1*ln F + 1)^2 when F > 1, 1 for every other kind, for F <= 1 and for
 * s NULL. */
float llm_rope_attn_scale(const llm_rope_scaling *s);

/* The kind named by name, exactly: "none", "linear", "ntk", "dynamic-ntk",
 * "yarn"; LLM_ERR_ARG (< 0) for NULL or any other string. */
int llm_rope_kind_parse(const char *name);

/* Rotates, in place, n_heads heads of d floats at the start of each of n_rows
 * rows of x (row stride ld floats).  Row i sits at position pos0 + i % T
 * (T = sequence length: rows are B sequences of T tokens); positions must be
 * tabulated (below n_pos, see llm_rope_reserve).  inverse = 1 rotates by the
 * negative angle (the backward pass). */
void llm_rope_apply(const llm_rope *r, float *x, int n_rows, int ld, int n_heads, int T, int pos0,
                    int inverse);

#endif
