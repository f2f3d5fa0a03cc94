#include "blob.h"

#include <string.h>

#include "err.h"

static const char REFS_MAGIC[4] = {'D', 'R', 'E', 'F'};
#define REFS_HDR_MIN 8 /* magic + count */

void
blob_key_derive(const struct auth_key *cluster, struct blob_key *out)
{
	static const char dom[] = AUTH_BLOB_DOMAIN;
	struct auth_key k;
	auth_tag(cluster, dom, sizeof(dom) - 1, NULL, 0, k.k);
	memcpy(out->k, k.k, sizeof(out->k));
}

void
blob_name(const struct blob_key *k, const void *data, size_t len,
    uint8_t name[BLOB_NAME_LEN])
{
	struct auth_key ak;
	memcpy(ak.k, k->k, sizeof(ak.k));
	auth_tag(&ak, data, len, NULL, 0, name);
}

void
blob_key(uint8_t kind, const uint8_t name[BLOB_NAME_LEN],
    uint8_t key[BLOB_KEY_LEN])
{
	key[0] = kind;
	memcpy(key + 1, name, BLOB_NAME_LEN);
}

bool
blob_is_key(const void *key, size_t klen)
{
	const uint8_t *p = key;
	return klen == BLOB_KEY_LEN && (p[0] == BLOB_DATA || p[0] == BLOB_REFS);
}

void
blob_refs_encode(struct buf *out, const uint8_t *refs, uint32_t n)
{
	buf_put(out, REFS_MAGIC, sizeof(REFS_MAGIC));
	buf_put_u32(out, n);
	buf_put(out, refs, (size_t)n * BLOB_REF_LEN);
}

int
blob_refs_parse(const void *value, size_t len, const uint8_t **refs,
    uint32_t *n, size_t *hdr)
{
	const uint8_t *p = value;
	*refs = NULL;
	*n = 0;
	*hdr = 0;
	if (len < sizeof(REFS_MAGIC) ||
	    memcmp(p, REFS_MAGIC, sizeof(REFS_MAGIC)) != 0)
		return 0;
	if (len < REFS_HDR_MIN)
		return DYN_EBADMSG;
	uint32_t count = be_get_u32(p + sizeof(REFS_MAGIC));
	if (count > BLOB_REFS_MAX ||
	    (size_t)count * BLOB_REF_LEN > len - REFS_HDR_MIN)
		return DYN_EBADMSG;
	const uint8_t *r = p + REFS_HDR_MIN;
	for (uint32_t i = 0; i < count; i++)
		if (!blob_is_key(r + (size_t)i * BLOB_REF_LEN, BLOB_KEY_LEN))
			return DYN_EBADMSG;
	*refs = r;
	*n = count;
	*hdr = REFS_HDR_MIN + (size_t)count * BLOB_REF_LEN;
	return 0;
}
