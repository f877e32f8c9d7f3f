/* libFuzzer target for adapter streams (llm_adapter_load_mem): any bytes
 * must give an adapter whose every tensor lies inside its arena, or a clean
 * error, never a crash or an allocation beyond what the settings imply. */
#include <stdint.h>

#include "adapter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    llm_error err = {0};
    llm_adapter ad;
    if (llm_adapter_load_mem(data, size, "fuzz", &ad, &err) == 0) {
        double sum = 0;
        for (int i = 0; i < ad.n_tensors; i++) {
            const llm_param_tensor *t = &ad.tensors[i];
            sum += ad.arena[t->offset] + ad.arena[t->offset + t->count - 1];
        }
        (void)sum;
        llm_adapter_free(&ad);
    }
    return 0;
}
