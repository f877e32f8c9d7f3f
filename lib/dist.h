/* dist — the transport of data-parallel training: MPI.  It starts MPI, says
 * which rank this process is, and provides the collective operations that
 * lib/train.h's trainer uses (llm_comm).  Built without MPI (make found no
 * Open MPI), llm_dist_init fails with a message saying MPI is missing.
 *
 *     if (llm_dist_launched()) {                 // under mpirun
 *         llm_dist *d;
 *         LLM_TRY(llm_dist_init(&d, &err));
 *         LLM_TRY(llm_trainer_distribute(&t, llm_dist_comm(d), &opts, &err));
 *         ...
 *         LLM_TRY(llm_dist_finalize(d, &err));
 *     }
 *
 * Errors name the rank ("rank 1: MPI_Iallreduce: ...").  MPI calls are made
 * from the main thread only, outside OpenMP regions. */
#ifndef LLM_DIST_H
#define LLM_DIST_H

#include "err.h"
#include "train.h"

typedef struct llm_dist llm_dist;

/* 1 when the environment shows an MPI launcher (mpirun, srun, hydra) started
 * this process. */
int llm_dist_launched(void);

/* Starts MPI (with one rank when not launched by mpirun) and fills *d. */
int llm_dist_init(llm_dist **d, llm_error *err);
/* The collectives over every rank, for llm_trainer_distribute. */
const llm_comm *llm_dist_comm(const llm_dist *d);
/* The MPI library's name and version, one line. */
const char *llm_dist_library(const llm_dist *d);
/* Ends MPI (every rank calls it) and frees d. */
int llm_dist_finalize(llm_dist *d, llm_error *err);
/* Stops the whole job, every rank's process, with status (MPI_Abort): for a
 * tool's fatal error on one rank, so the others do not wait for it forever. */
void llm_dist_abort(llm_dist *d, int status) __attribute__((noreturn));

#endif
