/* spool.h - the durable spool: spool_dir/incoming/ (uploads in progress) and
 * spool_dir/jobs/ (committed documents).  Directories 0700, files 0600,
 * opened O_EXCL|O_NOFOLLOW|O_CLOEXEC, random names (no customer data).
 * Functions marked BLOCKING run on an I/O worker, never on the loop. */
#ifndef COPEES_SPOOL_H
#define COPEES_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "job.h"

struct spool;
struct upload;

/* Open the spool at dir, creating dir, incoming/ and jobs/ (0700) when
 * missing; refuse (NULL, *err set, caller frees) a directory that group or
 * others can access. */
struct spool *spool_open(const char *dir, char **err);
void spool_close(struct spool *sp);
/* Create dir (0700) when missing and check that it is ours alone, as
 * spool_open does for the spool (used for the state directory). 0 / -1
 * with *err set (caller frees). */
int spool_private_dir(const char *dir, char **err);
/* Directory of committed documents (borrowed). */
const char *spool_jobs_dir(const struct spool *sp);

/* Start an upload; its file (0600, in incoming/, a random name) is created
 * when its first bytes are written, or by the commit for a held upload.
 * NULL with errno on failure. */
struct upload *spool_upload_new(struct spool *sp);
/* The upload announces len bytes (Content-Length), before any data: up
 * to 1 MiB it is held in memory until the commit writes it (while the
 * held uploads' budget lasts); over 1 MiB it is staged, i.e. hashed and
 * written by data-lane workers (iopool) while it arrives, directly to
 * disk where the filesystem allows; otherwise (or when the staging
 * memory of all uploads is taken) writes happen in spool_upload_write
 * itself. */
void spool_upload_expect(struct upload *up, uint64_t len);
/* Whether staged uploads may use O_DIRECT (default yes, where the
 * filesystem takes it); without, each chunk's writeback is started as it
 * is written. */
void spool_allow_direct(struct spool *sp, bool on);
/* Append data (copied; hashed on the way).  0; 1 when a staged upload's
 * buffers are both taken: stop reading until the ready callback; -1 with
 * errno (ENOSPC = full) when this or an earlier write failed. */
int spool_upload_write(struct upload *up, const void *data, size_t len);
/* Call ready(arg) on the loop each time a staged chunk has been written
 * (or failed): the upload takes data again, and may be idle. */
void spool_upload_on_ready(struct upload *up, void (*ready)(void *arg), void *arg);
/* No chunk write in flight: commit and discard may run (an upload that
 * is not staged is always idle). */
bool spool_upload_idle(const struct upload *up);
/* Bytes taken so far. */
int64_t spool_upload_bytes(const struct upload *up);
/* BLOCKING, on an idle upload.  Write what is still staged, finish the
 * hash, fdatasync, rename into jobs/ under a new random name, fsync jobs/
 * (one fsync serves the renames of concurrent commits).  On success fills
 * name (JOB_NAME_MAX) and sha256 (65 bytes, lowercase hex).  0 / -1
 * (errno; a staged write's failure is reported here too). */
int spool_upload_commit(struct upload *up, char *name, char *sha256);
/* The same in two steps, so that a worker can let other commits rename
 * before the directory fsync that serves them all: _file does everything
 * up to the rename and fills name and sha256 (the name is in jobs/ but
 * not yet durable); _dir then fsyncs jobs/ unless a finished fsync
 * already covered this rename.  0 / -1 (errno) each. */
int spool_upload_commit_file(struct upload *up, char *name, char *sha256);
int spool_upload_commit_dir(struct upload *up);
/* BLOCKING, on an idle upload.  Shred and remove an upload that will not
 * be committed. */
void spool_upload_discard(struct upload *up);
/* Free the handle (after commit or discard; on the loop). */
void spool_upload_free(struct upload *up);

/* Open a committed document read-only.  fd / -1 (errno). */
int spool_job_open(const struct spool *sp, const char *name);
/* True when the committed document exists. */
bool spool_job_exists(const struct spool *sp, const char *name);
/* BLOCKING.  Shred a committed document (see shred.h); receipt filled. */
struct shred_receipt;
int spool_job_shred(const struct spool *sp, const char *name, int passes,
                    struct shred_receipt *r);

/* BLOCKING, startup only.  Shred every file in incoming/; call known() for
 * each file in jobs/ and shred those it returns false for.  Number of files
 * shredded, -1 on error. */
int spool_recover(struct spool *sp, bool (*known)(const char *name, void *arg), void *arg,
                  int passes);
/* BLOCKING, startup only.  The spool's owner mark: spool_dir/.instance
 * holds the instance id of the database whose jobs it keeps, so that a
 * spool_dir whose volume is not mounted (an empty directory) or a
 * database from elsewhere is told apart from a spool whose documents are
 * gone.  _read: 1 with id filled (size n), 0 when there is none, -1
 * (errno; EINVAL for a malformed mark).  _write: written durably (a
 * temporary, fsync, rename, fsync of spool_dir), 0 / -1 (errno). */
int spool_mark_read(const struct spool *sp, char *id, size_t n);
int spool_mark_write(const struct spool *sp, const char *id);
/* Free bytes on the spool's filesystem for unprivileged users; -1 on error. */
int64_t spool_free_bytes(const struct spool *sp);

#endif
