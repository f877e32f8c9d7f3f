/* outfile — output files that appear whole or not at all.
 *
 * A tool never overwrites its output in place: it writes to a temporary file
 * beside the target (same directory, so rename is atomic) and renames it into
 * place only when everything was written.  An interrupted or failed run leaves
 * the old file, if any, untouched.  "-" means standard output, written directly.
 *
 * Only a regular file (or a name not taken yet) is replaced that way.  An
 * existing FIFO, character or block device is opened and written directly, as
 * sort -o and cp do, so -o /dev/null stays the system's /dev/null and a FIFO's
 * reader gets the data; a directory is refused.  A symbolic link is followed:
 * the file it points to (created when the link dangles) is replaced atomically
 * and the link stays.
 *
 *     llm_outfile *f;
 *     LLM_TRY(llm_outfile_open(&f, "x.npy", &err));
 *     write(llm_outfile_fd(f), buf, n);
 *     LLM_TRY(llm_outfile_commit(f, &err));      // or llm_outfile_abort(f) on failure
 */
#ifndef LLM_OUTFILE_H
#define LLM_OUTFILE_H

#include "err.h"

typedef struct llm_outfile llm_outfile;

/* Creates the temporary file for path ("-": stdout; a FIFO or a device: path
 * itself, opened for writing, which waits for a FIFO's reader).  *out is
 * owned by the caller until commit or abort. */
int llm_outfile_open(llm_outfile **out, const char *path, llm_error *err);
/* The descriptor to write to (a temporary file's may be read and sought too). */
int llm_outfile_fd(const llm_outfile *f);
/* The output's name for messages: the path given, or "stdout" for "-". */
const char *llm_outfile_path(const llm_outfile *f);
/* Finishes the output and frees f in every case: a temporary file is synced,
 * closed and renamed into place (on failure it is removed); a FIFO or device
 * is closed (stdout is left open).  Returns 0 or < 0 with err filled. */
int llm_outfile_commit(llm_outfile *f, llm_error *err);
/* Closes and removes the temporary file and frees f; f may be NULL.  What
 * was written to stdout, a FIFO or a device stays written. */
void llm_outfile_abort(llm_outfile *f);

/* Calls on_create (NULL: nobody) with the path of every temporary file
 * created from now on, by this module or by the stream writer, which uses it,
 * just before the file is created, and on_release with the same path once it
 * has been renamed into place or removed (or could not be created): a tool
 * keeps a list of them so that a signal arriving mid-write removes them
 * (llm_cli_init does). */
void llm_outfile_watch(void (*on_create)(const char *tmp_path), void (*on_release)(const char *tmp_path));

#endif
