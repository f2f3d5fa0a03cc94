/*
 * auth — HMAC-SHA256 through OpenSSL 3's EVP_MAC, key files in hex.
 *
 * The EVP_MAC method is fetched once per process (pthread_once) and then
 * only read: fetching it for every tag takes OpenSSL's method-store lock on
 * a path that runs for every message.
 */
#include "auth.h"

#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

/* A key file is 64 hex digits and a newline; anything much longer is not a
 * key file, so reading stops here. */
#define KEYFILE_MAX 4096

static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *hmac_mac;

int
auth_key_generate(struct auth_key *out)
{
	if (RAND_bytes(out->k, AUTH_KEY_LEN) != 1)
		return -EIO;
	return 0;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
auth_key_write(const char *path, const struct auth_key *k)
{
	static const char hex[] = "0123456789abcdef";
	char text[2 * AUTH_KEY_LEN + 1];
	int fd;
	int rc;

	for (int i = 0; i < AUTH_KEY_LEN; i++) {
		text[2 * i] = hex[k->k[i] >> 4];
		text[2 * i + 1] = hex[k->k[i] & 0xf];
	}
	text[2 * AUTH_KEY_LEN] = '\n';

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, text, sizeof(text));
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc != 0)
		unlink(path); /* ours (O_EXCL): do not leave half a key */
	OPENSSL_cleanse(text, sizeof(text));
	return rc;
}

static int
hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

/* Parse text[0..n): white space, exactly 64 hex digits, white space. */
static int
key_parse(const char *text, size_t n, struct auth_key *out)
{
	struct auth_key k;
	size_t i = 0;
	int rc = -EINVAL;

	while (i < n && is_space(text[i]))
		i++;
	if (n - i < 2 * AUTH_KEY_LEN)
		goto out;
	for (int j = 0; j < AUTH_KEY_LEN; j++) {
		int hi = hex_val(text[i + 2 * (size_t)j]);
		int lo = hex_val(text[i + 2 * (size_t)j + 1]);
		if (hi < 0 || lo < 0)
			goto out;
		k.k[j] = (uint8_t)(hi << 4 | lo);
	}
	for (i += 2 * AUTH_KEY_LEN; i < n; i++)
		if (!is_space(text[i]))
			goto out;
	*out = k;
	rc = 0;
out:
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

/* The text of a key file, at most KEYFILE_MAX bytes, into text. */
static int
read_keyfile(const char *path, char text[KEYFILE_MAX + 1], size_t *len)
{
	size_t n = 0;
	int fd;
	int rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Read one byte past the cap so an oversized file is detected. */
	while (n < (KEYFILE_MAX + 1)) {
		ssize_t r = read(fd, text + n, (KEYFILE_MAX + 1) - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > KEYFILE_MAX) {
		rc = -EINVAL;
		goto out;
	}
	*len = n;
out:
	close(fd);
	return rc;
}

int
auth_key_load(const char *path, struct auth_key *out)
{
	char text[KEYFILE_MAX + 1];
	size_t n = 0;
	int rc = read_keyfile(path, text, &n);
	if (rc == 0)
		rc = key_parse(text, n, out);
	OPENSSL_cleanse(text, sizeof(text));
	return rc;
}

/* One line of a rotation's key file into f. */
static int
key_line(const char *s, size_t n, struct auth_key_file *f)
{
	static const char blob[] = "blob";
	size_t i = 0;
	while (i < n && is_space(s[i]))
		i++;
	if (i == n)
		return 0; /* blank */
	if (n - i > 4 && memcmp(s + i, blob, 4) == 0 && is_space(s[i + 4])) {
		if (f->have_blob)
			return -EINVAL;
		f->have_blob = true;
		return key_parse(s + i + 4, n - i - 4, &f->blob);
	}
	if (f->n == AUTH_GENS)
		return -EINVAL;
	return key_parse(s + i, n - i, &f->master[f->n++]);
}

int
auth_key_file_load(const char *path, struct auth_key_file *out)
{
	char text[KEYFILE_MAX + 1];
	size_t n = 0;
	memset(out, 0, sizeof(*out));
	int rc = read_keyfile(path, text, &n);
	for (size_t at = 0; rc == 0 && at < n;) {
		const char *nl = memchr(text + at, '\n', n - at);
		size_t end = nl ? (size_t)(nl - text) : n;
		rc = key_line(text + at, end - at, out);
		at = end + 1;
	}
	if (rc == 0 && out->n == 0)
		rc = -EINVAL;
	if (rc != 0)
		OPENSSL_cleanse(out, sizeof(*out));
	OPENSSL_cleanse(text, sizeof(text));
	return rc;
}

static void
hex_line(struct buf *b, const char *prefix, const struct auth_key *k)
{
	static const char hex[] = "0123456789abcdef";
	buf_put(b, prefix, strlen(prefix));
	for (int i = 0; i < AUTH_KEY_LEN; i++) {
		buf_put_u8(b, (uint8_t)hex[k->k[i] >> 4]);
		buf_put_u8(b, (uint8_t)hex[k->k[i] & 0xf]);
	}
	buf_put_u8(b, '\n');
}

int
auth_key_file_write(const char *path, const struct auth_key_file *f)
{
	char tmp[4096];
	struct buf b;
	int rc;
	if (f->n == 0 || f->n > AUTH_GENS ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.new", path) >= sizeof(tmp))
		return -EINVAL;
	buf_init(&b);
	for (unsigned i = 0; i < f->n; i++)
		hex_line(&b, "", &f->master[i]);
	if (f->have_blob)
		hex_line(&b, "blob ", &f->blob);
	if ((rc = buf_err(&b)) != 0)
		goto out;
	unlink(tmp); /* a leftover of a write that did not finish */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = write_all(fd, (const char *)b.data, b.len);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0)
		unlink(tmp);
out:
	if (b.data)
		OPENSSL_cleanse(b.data, b.len);
	buf_fini(&b);
	return rc;
}

/*
 * Keying an HMAC context costs more than tagging a small message (OpenSSL
 * fetches the digest and hashes both pads): each thread keeps a keyed
 * context for the last four keys it used (at most: a node's role keys
 * and the blob key) and only resets it per message.  A thread's
 * contexts are freed, their keys cleansed, when it exits.
 */
#define MAC_SLOTS 4

struct mac_slot {
	EVP_MAC_CTX *ctx;
	uint8_t key[AUTH_KEY_LEN];
};

static pthread_key_t mac_tls;
static bool mac_tls_ok;

static void
mac_slots_free(void *p)
{
	struct mac_slot *s = p;
	for (int i = 0; i < MAC_SLOTS; i++)
		EVP_MAC_CTX_free(s[i].ctx);
	OPENSSL_cleanse(s, MAC_SLOTS * sizeof(*s));
	OPENSSL_free(s);
}

static void
hmac_fetch(void)
{
	hmac_mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	mac_tls_ok = pthread_key_create(&mac_tls, mac_slots_free) == 0;
}

/* A fresh keyed context: NULL when out of memory or OpenSSL fails. */
static EVP_MAC_CTX *
mac_new(const struct auth_key *k)
{
	static char digest[] = "SHA256"; /* OSSL_PARAM takes a char * */
	OSSL_PARAM params[2] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	    OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac_mac);
	if (ctx && EVP_MAC_init(ctx, k->k, AUTH_KEY_LEN, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

/* This thread's context for k, reset and ready for a message; NULL when
 * none can be had. */
static EVP_MAC_CTX *
mac_for(const struct auth_key *k)
{
	struct mac_slot *s = pthread_getspecific(mac_tls);
	if (!s) {
		s = OPENSSL_zalloc(MAC_SLOTS * sizeof(*s));
		if (!s || pthread_setspecific(mac_tls, s) != 0) {
			OPENSSL_free(s);
			return NULL;
		}
	}
	for (int i = 0; i < MAC_SLOTS; i++) {
		if (s[i].ctx && CRYPTO_memcmp(s[i].key, k->k, AUTH_KEY_LEN) == 0) {
			if (i > 0) { /* most recent first */
				struct mac_slot t = s[0];
				s[0] = s[i];
				s[i] = t;
			}
			/* No key: the one set is kept, the state reset. */
			return EVP_MAC_init(s[0].ctx, NULL, 0, NULL) == 1 ? s[0].ctx
			                                                  : NULL;
		}
	}
	EVP_MAC_CTX *ctx = mac_new(k);
	if (!ctx)
		return NULL;
	EVP_MAC_CTX_free(s[MAC_SLOTS - 1].ctx);
	memmove(&s[1], &s[0], (MAC_SLOTS - 1) * sizeof(*s));
	s[0].ctx = ctx;
	memcpy(s[0].key, k->k, AUTH_KEY_LEN);
	return ctx;
}

int
auth_tag(const struct auth_key *k, const void *a, size_t alen, const void *b,
         size_t blen, uint8_t tag[AUTH_TAG_LEN])
{
	if (pthread_once(&hmac_once, hmac_fetch) != 0 || hmac_mac == NULL)
		return -EIO;
	/* Without thread storage, a context per call (slow, still right). */
	EVP_MAC_CTX *own = mac_tls_ok ? NULL : mac_new(k);
	EVP_MAC_CTX *ctx = mac_tls_ok ? mac_for(k) : own;
	size_t n = 0;
	int rc = -EIO;
	if (!ctx)
		rc = -ENOMEM;
	else if ((alen == 0 || EVP_MAC_update(ctx, a, alen) == 1) &&
	         (blen == 0 || EVP_MAC_update(ctx, b, blen) == 1) &&
	         EVP_MAC_final(ctx, tag, &n, AUTH_TAG_LEN) == 1 &&
	         n == AUTH_TAG_LEN)
		rc = 0;
	EVP_MAC_CTX_free(own);
	return rc;
}

bool
auth_check(const struct auth_key *k, const void *a, size_t alen, const void *b,
           size_t blen, const uint8_t tag[AUTH_TAG_LEN])
{
	uint8_t want[AUTH_TAG_LEN];
	bool ok;

	if (auth_tag(k, a, alen, b, blen, want) != 0)
		return false;
	ok = CRYPTO_memcmp(want, tag, AUTH_TAG_LEN) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

/* ---- roles --------------------------------------------------------- */

static const char *const role_names[AUTH_NROLES] = {"node", "client",
    "admin"};

const char *
auth_role_name(enum auth_role r)
{
	return (unsigned)r < AUTH_NROLES ? role_names[r] : "?";
}

int
auth_role_parse(const char *s, enum auth_role *out)
{
	for (int r = 0; r < AUTH_NROLES; r++)
		if (strcmp(s, role_names[r]) == 0) {
			*out = (enum auth_role)r;
			return 0;
		}
	return -EINVAL;
}

/* out = HMAC(master, domain): a key for one purpose. */
static int
derive(const struct auth_key *master, const char *domain, struct auth_key *out)
{
	return auth_tag(master, domain, strlen(domain), NULL, 0, out->k);
}

uint32_t
auth_key_id(const struct auth_key *master)
{
	struct auth_key d;
	uint32_t id = 0;
	if (derive(master, "dynamo-key-id-v1", &d) == 0)
		id = (uint32_t)d.k[0] << 24 | (uint32_t)d.k[1] << 16 |
		     (uint32_t)d.k[2] << 8 | d.k[3];
	OPENSSL_cleanse(&d, sizeof(d));
	return id != 0 ? id : 1;
}

int
auth_keys_from_master(const struct auth_key *master, enum auth_role self,
    struct auth_keys *out)
{
	char dom[64];
	int rc = 0;
	memset(out, 0, sizeof(*out));
	out->self = self;
	out->gen[0].id = auth_key_id(master);
	out->gen[0].have = AUTH_ALL_ROLES;
	for (int r = 0; r < AUTH_NROLES && rc == 0; r++) {
		snprintf(dom, sizeof(dom), "dynamo-role-%s-v1", role_names[r]);
		rc = derive(master, dom, &out->gen[0].role[r]);
	}
	if (rc == 0)
		rc = derive(master, AUTH_BLOB_DOMAIN, &out->blob);
	if (rc != 0)
		OPENSSL_cleanse(out, sizeof(*out));
	return rc;
}

int
auth_keys_from_file(const struct auth_key_file *f, enum auth_role self,
    struct auth_keys *out)
{
	struct auth_keys g;
	int rc = 0;
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < f->n && i < AUTH_GENS && rc == 0; i++) {
		rc = auth_keys_from_master(&f->master[i], self, &g);
		if (rc == 0 && i == 0)
			*out = g;
		else if (rc == 0)
			out->gen[i] = g.gen[0];
	}
	if (rc == 0 && f->have_blob)
		out->blob = f->blob;
	OPENSSL_cleanse(&g, sizeof(g));
	if (rc != 0)
		OPENSSL_cleanse(out, sizeof(*out));
	return rc;
}

const struct auth_key *
auth_role_key(const struct auth_keys *k, uint32_t id, enum auth_role role)
{
	if ((unsigned)role >= AUTH_NROLES)
		return NULL;
	for (int g = 0; g < AUTH_GENS; g++) {
		const struct auth_gen *gen = &k->gen[g];
		if (gen->id == 0 || (id != 0 && gen->id != id))
			continue;
		return (gen->have & AUTH_ROLE_BIT(role)) ? &gen->role[role]
		                                         : NULL;
	}
	return NULL;
}
