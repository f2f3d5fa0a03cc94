/*
 * A node whose data disk fills up (a 24 MiB tmpfs as its data directory):
 * puts fail with ENOSPC, never EIO; the node stays up, and every put it
 * acknowledged reads back whole.  Needs root for the mount (exits 77,
 * meson's SKIP, without it).
 */
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "err.h"
#include "harness.h"
#include "mem.h"

#define VALUE_LEN (1u << 20)
#define MAX_PUTS  64 /* 64 MiB: far past the disk */

static struct harness h;
static char mnt[600];

static void
unmount_disk(void)
{
	/* Before the harness removes its directory (atexit runs this
	 * first); lazy, since the node may still hold the files. */
	umount2(mnt, MNT_DETACH);
}

static void
value_of(int i, uint8_t *v)
{
	for (size_t k = 0; k < VALUE_LEN; k++)
		v[k] = (uint8_t)(k * 131 + (size_t)i * 7 + (k >> 12));
}

int
main(void)
{
	harness_init(&h);
	snprintf(mnt, sizeof(mnt), "%s/n0", h.tmp);
	CHECK(mkdir(mnt, 0700) == 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=24m") != 0) {
		printf("SKIP: cannot mount a tmpfs (%s): needs root\n",
		    strerror(errno));
		return 77;
	}
	atexit(unmount_disk);
	harness_start(&h, 0, NULL);
	struct dyn_client *c = harness_client(&h, 10000, 0, -1);

	uint8_t *v = mem_alloc(VALUE_LEN);
	CHECK(v != NULL);
	int acked = 0, full = 0;
	bool ok[MAX_PUTS] = {false};
	for (int i = 0; i < MAX_PUTS; i++) {
		char key[32];
		snprintf(key, sizeof(key), "full/%d", i);
		value_of(i, v);
		int rc = dyn_put(c, key, strlen(key), NULL, 0, v, VALUE_LEN,
		    NULL, NULL, NULL);
		if (rc == 0) {
			ok[i] = true;
			acked++;
			continue;
		}
		CHECK_RC(rc, -ENOSPC);
		full++;
	}
	printf("%d puts of 1 MiB acknowledged, then %d refused with ENOSPC\n",
	    acked, full);
	CHECK(acked > 0 && full > 0);

	/* Still up, and nothing acknowledged is lost. */
	uint8_t *want = mem_alloc(VALUE_LEN);
	CHECK(want != NULL);
	for (int i = 0; i < MAX_PUTS; i++) {
		if (!ok[i])
			continue;
		char key[32];
		snprintf(key, sizeof(key), "full/%d", i);
		value_of(i, want);
		struct dyn_get_result r;
		CHECK_RC(dyn_get(c, key, strlen(key), NULL, &r), 0);
		CHECK(r.versions.n == 1 && r.versions.v[0].len == VALUE_LEN &&
		    memcmp(r.versions.v[0].value, want, VALUE_LEN) == 0);
		dyn_get_result_fini(&r);
	}
	printf("all %d read back\n", acked);
	CHECK_RC(harness_stop(&h, 0, SIGTERM), 0);
	mem_free(want);
	mem_free(v);
	dyn_client_free(c);
	return 0;
}
