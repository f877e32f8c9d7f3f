/* outfile — output files that appear whole or not at all.
 *
 * A tool never overwrites its output in place: it writes to a temporary file
 * beside the target (same directory, so rename is atomic) and renames it into
 * place only when everything was written.  An interrupted or failed run leaves
 * the old file, if any, untouched.  "-" means standard output, written directly.
 *
 *     llm_outfile *f;
 *     TRY(llm_outfile_open(&f, "x.npy", &err));
 *     write(llm_outfile_fd(f), buf, n);
 *     TRY(llm_outfile_commit(f, &err));      // or llm_outfile_abort(f) on failure
 */
#ifndef LLM_OUTFILE_H
#define LLM_OUTFILE_H

#include "err.h"

typedef struct llm_outfile llm_outfile;

/* Creates the temporary file for path ("-": stdout).  *out is owned by the
 * caller until commit or abort. */
int llm_outfile_open(llm_outfile **out, const char *path, llm_error *err);
/* The descriptor to write to. */
int llm_outfile_fd(const llm_outfile *f);
/* The temporary file being written, or NULL for stdout. */
const char *llm_outfile_temp_path(const llm_outfile *f);
/* The target path ("-" for stdout), for messages. */
const char *llm_outfile_path(const llm_outfile *f);
/* Syncs, closes and renames the file into place; frees f in every case.
 * On failure the temporary file is removed. */
int llm_outfile_commit(llm_outfile *f, llm_error *err);
/* Closes and removes the temporary file and frees f; f may be NULL. */
void llm_outfile_abort(llm_outfile *f);

/* Calls on_temp (NULL: nobody) with the path of every temporary file created
 * from now on, by this module or by the stream writer, which uses it: a tool
 * registers them so that a signal arriving mid-write removes them
 * (llm_cli_init does, with llm_cli_remove_on_failure). */
void llm_outfile_watch(void (*on_temp)(const char *tmp_path));

#endif
