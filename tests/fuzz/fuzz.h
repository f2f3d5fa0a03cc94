/*
 * fuzz — what the libFuzzer targets share: the fixed cluster key and key
 * position their seeds are made with, and a way to stop on a broken
 * invariant that every sanitizer build reports.
 *
 * Messages and contexts carry an HMAC the fuzzer cannot forge, so each
 * target decodes its input twice: as given (the checks before the tag),
 * and with the trailing tag replaced by the right one (everything after).
 */
#ifndef DYN_FUZZ_H
#define DYN_FUZZ_H

#include <stdint.h>
#include <stdlib.h>

#include "auth.h"
#include "keypos.h"

/* clang-format off */
static const struct auth_key fuzz_key = {{
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
	0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
	0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
}};

/* MD5("fuzz/key"), though any 16 bytes would do. */
static const struct keypos fuzz_pos = {{
	0xe6, 0xba, 0x07, 0x4f, 0x73, 0xd7, 0x7d, 0xd8,
	0x1b, 0x51, 0xf5, 0x2a, 0x10, 0x4c, 0x92, 0x0b,
}};
/* clang-format on */

/* The role keys of fuzz_key, signing as a node (the seeds' messages). */
static inline const struct auth_keys *
fuzz_keys(void)
{
	static struct auth_keys k;
	static int done;
	if (!done && auth_keys_from_master(&fuzz_key, AUTH_NODE, &k) == 0)
		done = 1;
	return &k;
}

#define FUZZ_REQUIRE(cond)                                                    \
	do {                                                                  \
		if (!(cond))                                                  \
			abort();                                              \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
