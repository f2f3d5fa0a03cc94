/*
 * Replays and roles, against real nodes: what a man in the middle who
 * recorded requests, a holder of a client key, and a node of another
 * cluster can do.
 *
 *   - a put, a delete and an admin request (fault), recorded and re-sent
 *     byte for byte, are refused (DYN_EREPLAY) and change nothing; one
 *     re-timed out of the window is refused as stale;
 *   - a client's keys cannot leave, remove, fault, compact, gossip (join)
 *     or replicate: DYN_EROLE, and the ring stays as it was;
 *   - a node with another cluster's key that seeds from this one is never
 *     heard: the ring keeps its three members;
 *   - the refusals are counted in the node's status.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "err.h"
#include "harness.h"
#include "refusal.h"
#include "wire.h"

static struct harness h;
static nng_socket raw; /* to node 0, as a man in the middle */

/* Send recorded bytes; the reply's status (0 for a non-error reply),
 * decoded with keys; the test fails when none comes. */
static int
send_status(const struct auth_keys *keys, const struct buf *b)
{
	nng_msg *reply = harness_send_raw(raw, b->data, b->len, 5000);
	CHECK(reply != NULL);
	struct wire_msg m;
	CHECK_RC(wire_decode(keys, nng_msg_body(reply), nng_msg_len(reply),
	             &m),
	    0);
	int32_t st = 0;
	if (wire_get_i32(&m, F_STATUS, &st) != 0)
		st = 0;
	nng_msg_free(reply);
	return st;
}

static void
record_put(struct buf *b, const char *key, const char *val,
    const struct dyn_get_result *seen)
{
	wire_begin(b, WIRE_PUT_REQ, 0, 100);
	wire_put_str(b, F_KEY, key);
	if (seen)
		wire_put(b, F_CONTEXT, seen->ctx, seen->ctx_len);
	if (val)
		wire_put_str(b, F_VALUE, val);
	else
		wire_put_u32(b, F_FLAGS, WIRE_F_TOMBSTONE);
	CHECK_RC(wire_seal(b, &h.keys), 0);
}

/* key's versions: live ones, tombstones, and the value of the first. */
static void
versions(struct dyn_client *c, const char *key, size_t *live, size_t *tombs,
    char *first, size_t cap)
{
	struct dyn_get_result r;
	int rc = dyn_get(c, key, strlen(key), NULL, &r);
	CHECK(rc == 0 || rc == -ENOENT);
	*live = *tombs = 0;
	first[0] = '\0';
	for (size_t i = 0; i < r.versions.n; i++) {
		const struct version *v = &r.versions.v[i];
		if (v->tombstone) {
			(*tombs)++;
			continue;
		}
		if ((*live)++ == 0)
			snprintf(first, cap, "%.*s", (int)v->len,
			    (const char *)v->value);
	}
	dyn_get_result_fini(&r);
}

/* A put through node 0 that needs all three replicas: it succeeds only
 * while node 0 reaches the others. */
static int
put_all3(const char *key)
{
	struct dyn_client *c = harness_client_direct(&h, 0);
	struct dyn_req_opts o = {.w = 3};
	int rc = dyn_put(c, key, strlen(key), NULL, 0, "x", 1, &o, NULL, NULL);
	dyn_client_free(c);
	return rc;
}

static void
test_replays(struct dyn_client *cl)
{
	struct buf b, old;
	size_t live, tombs;
	char val[64];
	buf_init(&b);
	buf_init(&old);

	/* A blind put: once it adds a version; again, nothing. */
	record_put(&b, "replay/put", "v1", NULL);
	CHECK_RC(send_status(&h.keys, &b), 0);
	CHECK_RC(send_status(&h.keys, &b), DYN_EREPLAY);
	CHECK_RC(send_status(&h.keys, &b), DYN_EREPLAY);
	versions(cl, "replay/put", &live, &tombs, val, sizeof(val));
	CHECK(live == 1 && tombs == 0 && strcmp(val, "v1") == 0);

	/* The same bytes re-timed out of the window (re-tagged here, which
	 * only a key holder can): stale. */
	buf_reset(&old);
	buf_put(&old, b.data, b.len);
	be_put_u64(old.data + 48, wire_clock_ms() - 10 * 60 * 1000);
	uint64_t seq = be_get_u64(old.data + 40);
	be_put_u64(old.data + 40, seq + 1000000);
	CHECK_RC(auth_tag(auth_role_key(&h.keys, 0, h.keys.self), old.data,
	             old.len - AUTH_TAG_LEN, NULL, 0,
	             old.data + old.len - AUTH_TAG_LEN),
	    0);
	CHECK_RC(send_status(&h.keys, &old), DYN_ESTALE);

	/* A delete, recorded; the key written again; the delete re-sent:
	 * no tombstone comes back. */
	harness_put(cl, "replay/del", "v1");
	struct dyn_get_result r;
	CHECK_RC(dyn_get(cl, "replay/del", 10, NULL, &r), 0);
	record_put(&b, "replay/del", NULL, &r);
	dyn_get_result_fini(&r);
	CHECK_RC(send_status(&h.keys, &b), 0);
	versions(cl, "replay/del", &live, &tombs, val, sizeof(val));
	CHECK(live == 0);
	CHECK_RC(dyn_get(cl, "replay/del", 10, NULL, &r), -ENOENT);
	CHECK_RC(dyn_put(cl, "replay/del", 10, r.ctx, r.ctx_len, "v2", 2, NULL,
	             NULL, NULL),
	    0);
	dyn_get_result_fini(&r);
	CHECK_RC(send_status(&h.keys, &b), DYN_EREPLAY);
	versions(cl, "replay/del", &live, &tombs, val, sizeof(val));
	CHECK(live == 1 && tombs == 0 && strcmp(val, "v2") == 0);

	/* An admin request: node 0 cut off from n1, then healed; the cut
	 * re-sent does nothing. */
	wire_begin(&b, WIRE_FAULT_REQ, 0, 101);
	wire_put_str(&b, F_NAME, "n1");
	CHECK_RC(wire_seal(&b, &h.keys), 0);
	CHECK_RC(send_status(&h.keys, &b), 0);
	CHECK(put_all3("replay/cut") != 0); /* the cut is real */
	wire_begin(&old, WIRE_FAULT_REQ, 0, 102);
	wire_put_u32(&old, F_FLAGS, WIRE_F_HEAL);
	CHECK_RC(wire_seal(&old, &h.keys), 0);
	CHECK_RC(send_status(&h.keys, &old), 0);
	CHECK_RC(send_status(&h.keys, &b), DYN_EREPLAY);
	long long until = harness_now_ms() + 20000;
	while (put_all3("replay/healed") != 0) {
		CHECK(harness_now_ms() < until);
		harness_pause_ms(100);
	}
	CHECK(harness_stat(&h, 0, "replays_refused") >= 5);
	buf_fini(&b);
	buf_fini(&old);
	printf("replays: put, delete and fault refused re-sent, stale "
	       "refused; %llu refusals counted\n",
	    (unsigned long long)harness_stat(&h, 0, "replays_refused"));
}

static void
test_roles(void)
{
	/* The keys a client credential holds: the client role's only. */
	struct auth_keys client = h.keys;
	client.self = AUTH_CLIENT;
	client.gen[0].have = AUTH_ROLE_BIT(AUTH_CLIENT);
	static const struct {
		uint8_t type;
		const char *name; /* F_NAME, or NULL */
	} asks[] = {
	    {WIRE_LEAVE_REQ, NULL},     {WIRE_REMOVE_REQ, "n2"},
	    {WIRE_FAULT_REQ, "n1"},     {WIRE_COMPACT_REQ, NULL},
	    {WIRE_GOSSIP_REQ, NULL},    {WIRE_REPLICATE_REQ, NULL},
	    {WIRE_PURGE_REQ, NULL},     {WIRE_XFER_REQ, NULL},
	};
	struct buf b;
	buf_init(&b);
	for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
		wire_begin(&b, asks[i].type, 0, 200 + i);
		if (asks[i].name)
			wire_put_str(&b, F_NAME, asks[i].name);
		CHECK_RC(wire_seal(&b, &client), 0);
		CHECK_RC(send_status(&client, &b), DYN_EROLE);
	}
	/* A client key cannot pass for a node's: such a tag is no tag (the
	 * node answers only the unsigned refusal). */
	wire_begin(&b, WIRE_GOSSIP_REQ, 0, 300);
	CHECK_RC(wire_seal(&b, &client), 0);
	b.data[24] = AUTH_NODE;
	nng_msg *no = harness_send_raw(raw, b.data, b.len, 500);
	CHECK(no != NULL && refusal_is(nng_msg_body(no), nng_msg_len(no)));
	nng_msg_free(no);
	/* What a client may do, it does. */
	wire_begin(&b, WIRE_GET_REQ, 0, 301);
	wire_put_str(&b, F_KEY, "replay/put");
	CHECK_RC(wire_seal(&b, &client), 0);
	CHECK_RC(send_status(&client, &b), 0);
	buf_fini(&b);
	CHECK(harness_stat(&h, 0, "role_refused") >= 8);
	uint64_t epoch = 0;
	CHECK(harness_rings_agree(&h, 3, &epoch));
	printf("roles: a client's keys refused for 8 node or admin requests; "
	       "the ring unchanged at epoch %llu\n", (unsigned long long)epoch);
}

/* A node of another cluster (its own key) seeding from this one. */
static void
test_foreign_node(void)
{
	char other[600];
	snprintf(other, sizeof(other), "%s/other.key", h.tmp);
	struct auth_key k;
	CHECK_RC(auth_key_generate(&k), 0);
	CHECK_RC(auth_key_write(other, &k), 0);
	uint64_t before = harness_stat(&h, 0, "auth_failures");
	const char *const extra[] = {"--cluster-key", other, NULL};
	harness_start_joined(&h, 3, 0, extra);
	long long until = harness_now_ms() + 20000;
	while (harness_stat(&h, 0, "auth_failures") < before + 3) {
		CHECK(harness_now_ms() < until);
		harness_pause_ms(100);
	}
	harness_stop(&h, 3, SIGKILL);
	uint64_t epoch = 0;
	CHECK(harness_rings_agree(&h, 3, &epoch));
	printf("foreign node: %llu messages refused by tag, ring unchanged\n",
	    (unsigned long long)(harness_stat(&h, 0, "auth_failures") - before));
}

int
main(void)
{
	harness_init(&h);
	harness_start_cluster(&h, 3);
	CHECK(nng_req0_open(&raw) == 0);
	CHECK(nng_dial(raw, h.nodes[0].addr, NULL, 0) == 0);
	struct dyn_client *cl = harness_client(&h, 5000, 0, 1, 2, -1);

	test_replays(cl);
	test_roles();
	test_foreign_node();

	dyn_client_free(cl);
	nng_close(raw);
	printf("security: ok\n");
	return 0;
}
