#include "refusal.h"

#include <string.h>

/* "DYNR" then a version byte and three zeros: a wire message starts with
 * "DYNM" (WIRE_MAGIC) and is longer. */
static const uint8_t refusal_bytes[REFUSAL_LEN] = {'D', 'Y', 'N', 'R', 1,
    0, 0, 0};

void
refusal_encode(uint8_t out[REFUSAL_LEN])
{
	memcpy(out, refusal_bytes, REFUSAL_LEN);
}

bool
refusal_is(const void *buf, size_t len)
{
	return len == REFUSAL_LEN && memcmp(buf, refusal_bytes, len) == 0;
}
