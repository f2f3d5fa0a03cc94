#include "quorum.h"

size_t
quorum_read_set(const struct walk *w, uint32_t *idx, bool *self_reads)
{
	const struct replicas *rp = w->rp;
	size_t k = 0, got = 0, nslow = 0;
	uint32_t total = rp->count + rp->ext_count, slow[REPLICAS_MAX];
	*self_reads = false;
	for (uint32_t i = 0; i < total && got < rp->count; i++) {
		if (w->self[i]) {
			*self_reads = true;
			got++;
		} else if (w->health[i] == RPC_PEER_OK) {
			idx[k++] = i;
			got++;
		} else if (w->health[i] == RPC_PEER_SUSPECT) {
			slow[nslow++] = i;
		}
	}
	for (size_t j = 0; j < nslow && got < rp->count; j++, got++)
		idx[k++] = slow[j];
	return k;
}

int
quorum_standin_take(const struct walk *w, struct put_plan *p,
    enum rpc_health worst)
{
	const struct replicas *rp = w->rp;
	for (int h = RPC_PEER_OK; h <= (int)worst; h++) {
		for (uint32_t i = rp->count; i < rp->count + rp->ext_count; i++) {
			if (!p->taken[i] && !w->self[i] && (int)w->health[i] == h) {
				p->taken[i] = true;
				return (int)i;
			}
		}
	}
	return -1;
}

void
quorum_plan_put(const struct walk *w, struct put_plan *p)
{
	const struct replicas *rp = w->rp;
	uint32_t missed[REPLICAS_MAX];
	size_t nmissed = 0;
	p->nd = p->nhints = 0;
	p->local_standin = -1;
	for (uint32_t i = 0; i < REPLICAS_MAX; i++)
		p->taken[i] = false;
	for (uint32_t i = 0; i < rp->count; i++) {
		if (w->self[i])
			continue;
		if (w->health[i] == RPC_PEER_OK)
			p->d[p->nd++] = (struct quorum_dest){i, -1};
		else
			missed[nmissed++] = i;
	}
	size_t m = 0;
	if (!rp->self_in && nmissed > 0)
		p->local_standin = (int)missed[m++];
	for (; m < nmissed; m++) {
		uint32_t r = missed[m];
		int s = quorum_standin_take(w, p, RPC_PEER_OK);
		if (s < 0 && w->health[r] == RPC_PEER_SUSPECT) {
			/* The suspect replica itself is the best there is; a
			 * hint here too, in case it does not answer. */
			p->d[p->nd++] = (struct quorum_dest){r, -1};
			p->hints[p->nhints++] = r;
			continue;
		}
		if (s < 0)
			s = quorum_standin_take(w, p, RPC_PEER_SUSPECT);
		if (s >= 0)
			p->d[p->nd++] = (struct quorum_dest){(uint32_t)s, (int)r};
		else /* nobody to stand in: the hint stays here */
			p->hints[p->nhints++] = r;
	}
}
