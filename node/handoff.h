/*
 * handoff — delivering hints.  A node that stood in for a replica that was
 * down keeps the write as a hint in its store (store_hint_*); this thread
 * looks at the hints every half second and, for each intended replica that
 * is reachable again, sends it the hinted versions (REPLICATE_REQ, merged
 * there) and deletes a hint only once the replica acknowledged it — and
 * only if it did not grow meanwhile.
 */
#ifndef DYN_HANDOFF_H
#define DYN_HANDOFF_H

#include <stdint.h>

struct node;
struct handoff;

int handoff_start(struct node *n, struct handoff **out);
void handoff_stop(struct handoff *h);
/* Hints delivered since start. */
uint64_t handoff_delivered(struct handoff *h);

#endif
