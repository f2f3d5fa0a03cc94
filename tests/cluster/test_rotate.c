/*
 * Rotating the CA and the master key of a TLS cluster without downtime
 * (`dynamoctl ca rotate`, common/ca.h): after each of the three steps
 * every node is restarted, one at a time, with a credential issued anew,
 * and the clients move to a new credential too.  Throughout, every node
 * serves and the ring keeps its members; at the end the data written
 * before, a blob among it (its name comes from the blob key, which must
 * not change), reads back, and a credential of before the rotation is
 * refused.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "blob.h"
#include "ca.h"
#include "err.h"
#include "harness.h"

static struct harness h;
static uint8_t blob[BLOB_KEY_LEN];
static int written;

/* Everything written so far reads back, and one more put is acked, all
 * from every replica (R = W = 3: nodes of two steps must talk). */
static void
check_data(const char *when)
{
	struct dyn_client *c = harness_client(&h, 5000, 0, 1, 2, -1);
	struct dyn_get_result r;
	const struct dyn_req_opts all = {.r = 3, .w = 3};
	CHECK_RC(dyn_get(c, "rot/0", 5, &all, &r), 0);
	CHECK(r.versions.n == 1 && r.versions.v[0].len == 6 &&
	      memcmp(r.versions.v[0].value, "before", 6) == 0);
	dyn_get_result_fini(&r);
	char buf[64];
	size_t len = 0;
	CHECK_RC(dyn_blob_get(c, blob, buf, sizeof(buf), &len), 0);
	CHECK(len == 9 && memcmp(buf, "blob body", 9) == 0);
	for (int i = 1; i <= written; i++) {
		char key[32];
		snprintf(key, sizeof(key), "rot/%d", i);
		CHECK_RC(dyn_get(c, key, strlen(key), &all, &r), 0);
		dyn_get_result_fini(&r);
	}
	char key[32];
	snprintf(key, sizeof(key), "rot/%d", ++written);
	CHECK_RC(dyn_put(c, key, strlen(key), NULL, 0, when, strlen(when), &all,
	             NULL, NULL),
	    0);
	dyn_client_free(c);
}

static void
step(enum ca_rotate_step s, const char *name)
{
	char err[512];
	long long t0 = harness_now_ms();
	if (ca_rotate(h.cadir, s, err, sizeof(err)) != 0) {
		fprintf(stderr, "ca rotate %s: %s\n", name, err);
		CHECK(0);
	}
	harness_cred_phase(&h, name); /* the clients' credential first */
	check_data(name);
	for (int i = 0; i < 3; i++) {
		CHECK_RC(harness_stop(&h, i, SIGTERM), 0);
		harness_start(&h, i, NULL); /* its credential of this step */
		harness_wait_ring(&h, 3, 60000);
		check_data(name);
	}
	printf("rotate %s: 3 nodes restarted, data read back after each, "
	       "%lld ms\n", name, harness_now_ms() - t0);
}

int
main(void)
{
	harness_init_tls(&h);
	harness_start_cluster(&h, 3);
	char before[512];
	snprintf(before, sizeof(before), "%s", h.credfile);
	struct dyn_client *c = harness_client(&h, 5000, 0, 1, 2, -1);
	harness_put(c, "rot/0", "before");
	CHECK_RC(dyn_blob_put(c, BLOB_DATA, "blob body", 9, NULL, blob), 0);
	dyn_client_free(c);

	/* Out of order: refused, nothing changed. */
	char err[512];
	CHECK_RC(ca_rotate(h.cadir, CA_ROTATE_SWITCH, err, sizeof(err)),
	    -EINVAL);
	printf("switch before begin: %s\n", err);

	step(CA_ROTATE_BEGIN, "-begin");
	step(CA_ROTATE_SWITCH, "-switch");
	step(CA_ROTATE_FINISH, "-finish");

	/* The credential of before: its CA is no longer trusted, its key
	 * no longer accepted. */
	struct cred old;
	CHECK_RC(cred_load(before, &old, err, sizeof(err)), 0);
	const char *addr = h.nodes[0].addr;
	struct dyn_client_opts o = {.nodes = &addr, .nnodes = 1,
	    .keys = old.keys, .cred = &old, .timeout_ms = 1500};
	CHECK_RC(dyn_client_new(&o, &c), 0);
	struct dyn_get_result r;
	int rc = dyn_get(c, "rot/0", 5, NULL, &r);
	CHECK(rc != 0);
	printf("the credential of before the rotation: %s\n",
	    dyn_strerror(rc));
	dyn_client_free(c);
	cred_fini(&old);
	printf("rotate: ok\n");
	return 0;
}
