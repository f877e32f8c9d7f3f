/* libFuzzer target for adapter streams (llm_adapter_load_mem): any bytes
 * must give an adapter whose every tensor lies inside its arena, with, when
 * it has a training state, optimizer moments the size of that arena; or a
 * clean error, never a crash or an allocation beyond what the settings
 * imply.  Each input is loaded both ways: for running, and to train on. */
#include <stdint.h>

#include "adapter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    llm_error err = {0};
    llm_adapter ad;
    double sum = 0;
    if (llm_adapter_load_mem(data, size, "fuzz", &ad, NULL, NULL, NULL, &err) == 0) {
        for (int i = 0; i < ad.n_tensors; i++) {
            const llm_param_tensor *t = &ad.tensors[i];
            sum += ad.arena[t->offset] + ad.arena[t->offset + t->count - 1];
        }
        llm_adapter_free(&ad);
    }
    llm_optim o;
    llm_ckpt_train train;
    int has_train;
    if (llm_adapter_load_mem(data, size, "fuzz", &ad, &o, &train, &has_train, &err) == 0) {
        if (has_train && o.n != ad.n_params) __builtin_trap();
        for (int i = 0; has_train && i < ad.n_tensors; i++) {
            const llm_param_tensor *t = &ad.tensors[i];
            if (o.m) sum += o.m[t->offset] + o.m[t->offset + t->count - 1];
            if (o.v) sum += o.v[t->offset] + o.v[t->offset + t->count - 1];
        }
        llm_optim_free(&o);
        llm_adapter_free(&ad);
    }
    (void)sum;
    return 0;
}
