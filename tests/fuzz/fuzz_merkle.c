/* libFuzzer target: the Merkle exchange decoders (level messages and leaf
 * lists come from the peer during anti-entropy), and merkle_diff / step
 * against a small tree built here. */
#include <errno.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "mem.h"
#include "merkle.h"

static struct merkle *tree;

static void
build(void)
{
	if (tree || merkle_new(64, 5, NULL, &tree) != 0)
		return;
	for (int i = 0; i < 32; i++) {
		struct keypos pos = {{0}};
		pos.b[0] = (uint8_t)(5 << 2); /* partition 5 of 64 */
		pos.b[1] = (uint8_t)(i * 7);
		uint8_t d[MERKLE_HASH_LEN] = {(uint8_t)i};
		merkle_add(tree, &pos, &i, sizeof(i), d);
	}
	merkle_finish(tree);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	build();
	struct rd in;
	struct merkle_level lvl;
	rd_init(&in, data, size);
	int rc = merkle_level_decode(&in, &lvl);
	FUZZ_REQUIRE(rc == 0 || rc == DYN_EBADMSG);
	if (rc == 0 && tree) {
		uint32_t *idx = NULL, n = 0;
		rc = merkle_diff(tree, &lvl, &idx, &n);
		FUZZ_REQUIRE(rc == 0 || rc == DYN_EBADMSG || rc == -ENOMEM);
		mem_free(idx);
	}
	struct merkle_leaves lv;
	rd_init(&in, data, size);
	rc = merkle_leaves_decode(&in, &lv);
	FUZZ_REQUIRE(rc == 0 || rc == DYN_EBADMSG);
	return 0;
}
