/* libFuzzer target: view_decode, the gossip view every peer sends once a
 * second.  What it accepts must be within its caps and encode back to the
 * same bytes, but for the two flags (any non-zero byte is true). */
#include <errno.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "view.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct view v, w;
	struct buf e1, e2, rb;
	int rc;

	buf_init(&e1);
	buf_init(&e2);
	buf_init(&rb);
	memset(&w, 0, sizeof(w));
	rc = view_decode(data, size, &v);
	FUZZ_REQUIRE(rc == 0 || rc == DYN_EBADMSG || rc == -ENOMEM);
	if (rc != 0) {
		FUZZ_REQUIRE(v.members == NULL && v.ring == NULL && v.n == 0);
		goto out;
	}
	FUZZ_REQUIRE(v.n <= GOSSIP_MEMBERS_MAX);
	if (v.has_settings)
		FUZZ_REQUIRE(v.settings.n >= 1 && v.settings.r >= 1 &&
		             v.settings.w >= 1 &&
		             v.settings.n <= REPLICAS_MAX / 2);
	for (size_t i = 0; i < v.n; i++) {
		const struct member *m = &v.members[i];
		size_t nl = strnlen(m->name, sizeof(m->name));
		size_t al = strnlen(m->addr, sizeof(m->addr));
		FUZZ_REQUIRE(nl >= 1 && nl <= RING_NAME_MAX);
		FUZZ_REQUIRE(al >= 1 && al <= RING_ADDR_MAX);
		FUZZ_REQUIRE(m->status >= MEMBER_UP &&
		             m->status <= MEMBER_LEFT);
	}

	/* Same bytes, but for the flags: byte 0 and the one before the
	 * ring (at the end when there is no ring). */
	view_encode(&v, &e1);
	FUZZ_REQUIRE(buf_err(&e1) == 0);
	FUZZ_REQUIRE(e1.len == size);
	size_t ring_flag = size - 1;
	if (v.ring) {
		ring_encode(v.ring, &rb);
		FUZZ_REQUIRE(buf_err(&rb) == 0);
		FUZZ_REQUIRE(size >= 1 + 4 + rb.len);
		ring_flag = size - 4 - rb.len - 1;
	}
	for (size_t i = 0; i < size; i++) {
		if (i == 0 || i == ring_flag)
			FUZZ_REQUIRE(e1.data[i] == (data[i] != 0));
		else
			FUZZ_REQUIRE(e1.data[i] == data[i]);
	}
	FUZZ_REQUIRE(view_decode(e1.data, e1.len, &w) == 0);
	view_encode(&w, &e2);
	FUZZ_REQUIRE(e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0);
out:
	view_fini(&v);
	view_fini(&w);
	buf_fini(&e1);
	buf_fini(&e2);
	buf_fini(&rb);
	return 0;
}
