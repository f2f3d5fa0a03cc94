/*
 * files — the soak's file workload: a dynamofs mount of the cluster and
 * one writer changing a few files in it while the faults run, beside a
 * model of everything it wrote.
 *
 * Each step opens one file, reads it whole and checks that the bytes are
 * a content written to that file before (never torn, never another
 * file's), then changes it: pwrites at random offsets (holes too),
 * truncates and appends in place, or a whole new content written to a
 * temporary file and renamed over it (as editors save); then fsync and
 * close.  A step whose calls all succeed is acknowledged.  The model keeps
 * per file the digest of every content the writer meant, in order, and
 * which was the last acknowledged.  A read of a content older than the
 * last acknowledged is counted as stale (sloppy quorum allows it while a
 * fault lasts).  After a failed step the file's content is undefined (a
 * failed write may have changed part of what it covered): whatever is
 * read next is taken and counted as uncertain.  Every 16 steps the
 * listing is checked, and each sibling shown (name.vK) read and checked
 * the same way.
 *
 * At the end, on a fresh mount (every cache cold): every version of each
 * file (name, or name.v1 .. name.vK when siblings show) is a content the
 * writer wrote to it, and one of them is the last acknowledged or a later
 * one: no acknowledged write lost.  SOAK_CORRUPT=STEP spoils the model's
 * record of that step, to see the checks fail (a self-check).
 */
#ifndef DYN_SOAK_FILES_H
#define DYN_SOAK_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "harness.h"

struct files_counts {
	size_t steps, acked, failed, stale, siblings_seen;
	size_t uncertain; /* contents taken after a failed step */
	size_t files, versions, lost, foreign; /* the final check */
};

/* Mount the cluster (nodes 0 .. nnodes-1 of h) with the dynamofs binary
 * at path dynamofs, under h's directory, and start the writer. */
void files_start(struct harness *h, int nnodes, const char *dynamofs,
    unsigned seed);
/* Stop the writer (its step in flight finishes). */
void files_stop(void);
/* Remount and run the final check; false when anything was lost or
 * foreign, or a check during the run failed (its reason was printed). */
bool files_check(struct files_counts *out);

#endif
