/*
 * Blobs on 3 nodes (N=3): a put is stored once on every replica, a second
 * put of the same bytes changes nothing (no commit, same record count), a
 * get answers from any node, keys reserved for blobs refuse plain puts,
 * and a get of a blob nobody stored is -ENOENT.
 */
#include <errno.h>
#include <string.h>

#include "blob.h"
#include "err.h"
#include "harness.h"
#include "mem.h"
#include "wire.h"

static struct harness h;


int
main(void)
{
	harness_init(&h);
	harness_start(&h, 0, NULL);
	harness_start_joined(&h, 1, 0, NULL);
	harness_start_joined(&h, 2, 0, NULL);
	harness_wait_ring(&h, 3, 30000);
	struct dyn_client *cl = harness_client(&h, 5000, 0, 1, 2, -1);
	struct dyn_client *one[3];
	for (int i = 0; i < 3; i++)
		one[i] = harness_client_direct(&h, i);

	size_t len = 200000;
	uint8_t *data = mem_alloc(len), *back = mem_alloc(len);
	CHECK(data && back);
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 31 + 7);
	uint8_t key[BLOB_KEY_LEN], key2[BLOB_KEY_LEN];
	CHECK_RC(dyn_blob_put(cl, BLOB_DATA, data, len, NULL, key), 0);
	CHECK(key[0] == BLOB_DATA);

	/* Every node answers (the replicas hold it; W=2, so poll for the
	 * third); the bytes are the same. */
	long long deadline = harness_now_ms() + 10000;
	for (int i = 0; i < 3; i++) {
		size_t got = 0;
		int rc;
		while ((rc = dyn_blob_get(one[i], key, back, len, &got)) != 0 &&
		    harness_now_ms() < deadline)
			harness_pause_ms(20);
		CHECK_RC(rc, 0);
		CHECK(got == len && memcmp(back, data, len) == 0);
	}
	uint64_t keys0 = harness_keys(&h, 0);
	CHECK(keys0 == 1);

	/* Same bytes again: same key, nothing written anywhere. */
	uint64_t c0[3];
	for (int i = 0; i < 3; i++)
		c0[i] = harness_stat(&h, i, "updates");
	CHECK_RC(dyn_blob_put(cl, BLOB_DATA, data, len, NULL, key2), 0);
	CHECK(memcmp(key, key2, BLOB_KEY_LEN) == 0);
	for (int i = 0; i < 3; i++) {
		CHECK(harness_stat(&h, i, "updates") == c0[i]);
		CHECK(harness_keys(&h, i) == 1);
	}

	/* Another kind, same bytes: another key. */
	CHECK_RC(dyn_blob_put(cl, BLOB_REFS, data, 100, NULL, key2), 0);
	CHECK(key2[0] == BLOB_REFS && memcmp(key + 1, key2 + 1, 32) != 0);

	/* A buffer too small, an unknown blob, reserved keys. */
	size_t got;
	CHECK_RC(dyn_blob_get(cl, key, back, 10, &got), DYN_ETOOBIG);
	uint8_t nokey[BLOB_KEY_LEN] = {BLOB_DATA, 1, 2, 3};
	CHECK_RC(dyn_blob_get(cl, nokey, back, len, &got), -ENOENT);
	CHECK_RC(dyn_put(cl, key, BLOB_KEY_LEN, NULL, 0, "x", 1, NULL, NULL,
	             NULL),
	    -EINVAL);
	CHECK_RC(dyn_delete(cl, key, BLOB_KEY_LEN, NULL, 0, NULL), -EINVAL);
	struct dyn_get_result gr;
	CHECK_RC(dyn_get(cl, key, BLOB_KEY_LEN, NULL, &gr), -EINVAL);
	dyn_get_result_fini(&gr);

	mem_free(data);
	mem_free(back);
	for (int i = 0; i < 3; i++)
		dyn_client_free(one[i]);
	dyn_client_free(cl);
	printf("blob: ok\n");
	return 0;
}
