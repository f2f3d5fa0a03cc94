#include "cred.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "mem.h"

#define CRED_FILE_MAX (64 * 1024)

unsigned
cred_role_mask(enum auth_role role)
{
	/* A node checks every request, so it holds every role's key. */
	return role == AUTH_NODE ? AUTH_ALL_ROLES : AUTH_ROLE_BIT(role);
}

void
cred_keys_encode(const struct auth_keys *keys, enum auth_role role,
    struct buf *out)
{
	unsigned mask = cred_role_mask(role);
	uint8_t ngens = 0;
	for (int g = 0; g < AUTH_GENS; g++)
		if (keys->gen[g].id != 0)
			ngens++;
	buf_put_u8(out, CRED_KEYS_VERSION);
	buf_put_u8(out, (uint8_t)role);
	buf_put_u8(out, ngens);
	for (int g = 0; g < AUTH_GENS; g++) {
		const struct auth_gen *gen = &keys->gen[g];
		if (gen->id == 0)
			continue;
		unsigned have = gen->have & mask;
		buf_put_u32(out, gen->id);
		buf_put_u8(out, (uint8_t)have);
		for (int r = 0; r < AUTH_NROLES; r++)
			if (have & AUTH_ROLE_BIT(r))
				buf_put(out, gen->role[r].k, AUTH_KEY_LEN);
	}
	buf_put(out, keys->blob.k, AUTH_KEY_LEN);
}

int
cred_keys_decode(const void *p, size_t len, enum auth_role role,
    struct auth_keys *out, char *err, size_t errlen)
{
	struct auth_keys k;
	struct rd r;
	uint8_t ver = 0, brole = 0, ngens = 0;
	const uint8_t *kp;
	int rc = -EINVAL;

	memset(&k, 0, sizeof(k));
	rd_init(&r, p, len);
	if (rd_u8(&r, &ver) != 0) {
		err_say(err, errlen, "role keys block is empty");
		goto out;
	}
	if (ver != CRED_KEYS_VERSION) {
		err_say(err, errlen, "role keys block is version %u; this build "
		    "reads version %u only", ver, CRED_KEYS_VERSION);
		rc = DYN_EPROTO;
		goto out;
	}
	if (rd_u8(&r, &brole) != 0 || rd_u8(&r, &ngens) != 0) {
		err_say(err, errlen, "role keys block is truncated");
		goto out;
	}
	if (brole >= AUTH_NROLES || brole != (uint8_t)role) {
		err_say(err, errlen, "role keys block is for role %u, the "
		    "certificate says %s", brole, auth_role_name(role));
		goto out;
	}
	if (ngens < 1 || ngens > AUTH_GENS) {
		err_say(err, errlen, "role keys block has %u generations (1 or %d "
		    "allowed)", ngens, AUTH_GENS);
		goto out;
	}
	unsigned mask = cred_role_mask(role);
	for (unsigned g = 0; g < ngens; g++) {
		struct auth_gen *gen = &k.gen[g];
		uint8_t have = 0;
		if (rd_u32(&r, &gen->id) != 0 || rd_u8(&r, &have) != 0) {
			err_say(err, errlen, "role keys block is truncated");
			goto out;
		}
		if (gen->id == 0 || (g == 1 && gen->id == k.gen[0].id)) {
			err_say(err, errlen, "role keys generation %u has a bad id",
			    g + 1);
			goto out;
		}
		if (have != mask) {
			err_say(err, errlen, "role keys generation %u holds keys "
			    "0x%x, a %s credential holds 0x%x", g + 1, have,
			    auth_role_name(role), mask);
			goto out;
		}
		gen->have = have;
		for (int ro = 0; ro < AUTH_NROLES; ro++) {
			if (!(have & AUTH_ROLE_BIT(ro)))
				continue;
			if (rd_bytes(&r, AUTH_KEY_LEN, &kp) != 0) {
				err_say(err, errlen, "role keys block is truncated");
				goto out;
			}
			memcpy(gen->role[ro].k, kp, AUTH_KEY_LEN);
		}
	}
	if (rd_bytes(&r, AUTH_KEY_LEN, &kp) != 0) {
		err_say(err, errlen, "role keys block is truncated");
		goto out;
	}
	memcpy(k.blob.k, kp, AUTH_KEY_LEN);
	if (rd_left(&r) != 0) {
		err_say(err, errlen, "role keys block has %zu bytes past its end",
		    rd_left(&r));
		goto out;
	}
	k.self = role;
	*out = k;
	rc = 0;
out:
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

/* Read path whole (at most CRED_FILE_MAX), refusing a file that group or
 * others may read: it holds a private key. */
static int
read_private(const char *path, char **text, size_t *len, char *err,
    size_t errlen)
{
	int rc = 0;
	char *t = NULL;
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		err_say(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		err_say(err, errlen, "%s: %s", path, strerror(-rc));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		err_say(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		rc = -EACCES;
		err_say(err, errlen, "%s: mode %03o lets others read the private "
		    "key; chmod 600 it", path, (unsigned)(st.st_mode & 0777));
		goto out;
	}
	if (!(t = mem_alloc(CRED_FILE_MAX + 2))) {
		rc = -ENOMEM;
		goto out;
	}
	while (n < CRED_FILE_MAX + 1) {
		ssize_t r = read(fd, t + n, CRED_FILE_MAX + 1 - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			err_say(err, errlen, "%s: %s", path, strerror(-rc));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > CRED_FILE_MAX) {
		rc = -EINVAL;
		err_say(err, errlen, "%s: over %d bytes: not a credential", path,
		    CRED_FILE_MAX);
		goto out;
	}
	t[n] = '\0';
	*text = t;
	*len = n;
	t = NULL;
out:
	if (t) {
		OPENSSL_cleanse(t, CRED_FILE_MAX + 2);
		mem_free(t);
	}
	close(fd);
	return rc;
}

/* One PEM block of the file: its label and its text, BEGIN to END line. */
struct block {
	char label[32];
	const char *start;
	size_t len;
	unsigned line;
};

#define MAX_BLOCKS 8

/* Split text into blocks, strictly: only blank lines between them, each
 * BEGIN matched by its END. */
static int
split_blocks(const char *text, size_t len, struct block *b, size_t *nb,
    char *err, size_t errlen)
{
	static const char begin[] = "-----BEGIN ", end[] = "-----END ";
	size_t n = 0;
	const char *p = text, *stop = text + len;
	struct block *cur = NULL;
	unsigned line = 0;

	while (p < stop) {
		const char *nl = memchr(p, '\n', (size_t)(stop - p));
		const char *le = nl ? nl : stop;
		size_t ll = (size_t)(le - p);
		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		line++;
		if (!cur) {
			bool blank = true;
			for (size_t i = 0; i < ll; i++)
				if (p[i] != ' ' && p[i] != '\t')
					blank = false;
			if (!blank) {
				size_t bl = sizeof(begin) - 1;
				if (ll < bl + 5 || memcmp(p, begin, bl) != 0 ||
				    memcmp(p + ll - 5, "-----", 5) != 0 ||
				    ll - bl - 5 >= sizeof(b[0].label)) {
					err_say(err, errlen, "line %u: text outside "
					    "a PEM block", line);
					return -EINVAL;
				}
				if (n == MAX_BLOCKS) {
					err_say(err, errlen, "more than %d PEM "
					    "blocks", MAX_BLOCKS);
					return -EINVAL;
				}
				cur = &b[n++];
				memcpy(cur->label, p + bl, ll - bl - 5);
				cur->label[ll - bl - 5] = '\0';
				cur->start = p;
				cur->line = line;
			}
		} else if (ll >= sizeof(end) - 1 &&
		           memcmp(p, end, sizeof(end) - 1) == 0) {
			size_t el = sizeof(end) - 1;
			if (ll != el + strlen(cur->label) + 5 ||
			    memcmp(p + el, cur->label, strlen(cur->label)) !=
			        0 ||
			    memcmp(p + ll - 5, "-----", 5) != 0) {
				err_say(err, errlen, "line %u: END does not match "
				    "BEGIN %s (line %u)", line, cur->label,
				    cur->line);
				return -EINVAL;
			}
			cur->len = (size_t)(le - cur->start);
			cur = NULL;
		}
		p = nl ? nl + 1 : stop;
	}
	if (cur) {
		err_say(err, errlen, "BEGIN %s (line %u) has no END", cur->label,
		    cur->line);
		return -EINVAL;
	}
	*nb = n;
	return 0;
}

static char *
block_dup(const struct block *b)
{
	char *s = mem_alloc(b->len + 2);
	if (s) {
		memcpy(s, b->start, b->len);
		s[b->len] = '\n';
		s[b->len + 1] = '\0';
	}
	return s;
}

static BIO *
block_bio(const struct block *b)
{
	return BIO_new_mem_buf(b->start, (int)b->len);
}

/* The first entry of the subject's nid, into out; false if none fits. */
static bool
subject_field(X509 *x, int nid, char *out, size_t cap)
{
	X509_NAME *nm = X509_get_subject_name(x);
	int i = X509_NAME_get_index_by_NID(nm, nid, -1);
	if (i < 0)
		return false;
	ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, i));
	int n = ASN1_STRING_length(s);
	if (n <= 0 || (size_t)n >= cap)
		return false;
	memcpy(out, ASN1_STRING_get0_data(s), (size_t)n);
	out[n] = '\0';
	return strlen(out) == (size_t)n;
}

/* The own certificate checks out against the CAs (signature, dates). */
static int
verify_cert(X509 *cert, X509 **cas, unsigned nca, char *err, size_t errlen)
{
	int rc = -ENOMEM;
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	if (!st || !ctx)
		goto out;
	for (unsigned i = 0; i < nca; i++)
		if (X509_STORE_add_cert(st, cas[i]) != 1)
			goto out;
	if (X509_STORE_CTX_init(ctx, st, cert, NULL) != 1)
		goto out;
	if (X509_verify_cert(ctx) != 1) {
		int e = X509_STORE_CTX_get_error(ctx);
		err_say(err, errlen, "the certificate does not check against the "
		    "CA certificate(s) in the file: %s",
		    X509_verify_cert_error_string(e));
		rc = -EINVAL;
		goto out;
	}
	rc = 0;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return rc;
}

static int
parse_blocks(const struct block *b, size_t nb, struct cred *c, char *err,
    size_t errlen)
{
	X509 *cert = NULL, *cas[CRED_MAX_CAS] = {NULL, NULL};
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	unsigned char *data = NULL;
	char *name = NULL, *header = NULL;
	long dlen = 0;
	char ou[16];
	int rc = -EINVAL;
	size_t i = 0;

	if (nb < 1 || strcmp(b[0].label, "CERTIFICATE") != 0) {
		err_say(err, errlen, "the first PEM block must be the "
		    "CERTIFICATE");
		goto out;
	}
	if (!(bio = block_bio(&b[0])) ||
	    !(cert = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		err_say(err, errlen, "the certificate (line %u) does not parse",
		    b[0].line);
		goto out;
	}
	BIO_free(bio);
	bio = NULL;
	if (!subject_field(cert, NID_commonName, c->name, sizeof(c->name)) ||
	    c->name[0] == '\0') {
		err_say(err, errlen, "the certificate has no usable name (CN)");
		goto out;
	}
	if (!subject_field(cert, NID_organizationalUnitName, ou, sizeof(ou)) ||
	    auth_role_parse(ou, &c->role) != 0) {
		err_say(err, errlen, "the certificate's role (OU) is not node, "
		    "client or admin");
		goto out;
	}

	if (nb < 2 || strcmp(b[1].label, "PRIVATE KEY") != 0) {
		err_say(err, errlen, "the second PEM block must be the PRIVATE "
		    "KEY (PKCS#8)");
		goto out;
	}
	if (!(bio = block_bio(&b[1])) ||
	    !(pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL))) {
		err_say(err, errlen, "the private key (line %u) does not parse",
		    b[1].line);
		goto out;
	}
	BIO_free(bio);
	bio = NULL;
	if (X509_check_private_key(cert, pkey) != 1) {
		err_say(err, errlen, "the private key is not the certificate's");
		goto out;
	}

	for (i = 2; i < nb && strcmp(b[i].label, "CERTIFICATE") == 0; i++) {
		if (c->nca == CRED_MAX_CAS) {
			err_say(err, errlen, "more than %d CA certificates",
			    CRED_MAX_CAS);
			goto out;
		}
		X509 *ca = NULL;
		if (!(bio = block_bio(&b[i])) ||
		    !(ca = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
			err_say(err, errlen, "the CA certificate (line %u) does "
			    "not parse", b[i].line);
			goto out;
		}
		BIO_free(bio);
		bio = NULL;
		cas[c->nca++] = ca;
		if (X509_check_ca(ca) == 0) {
			err_say(err, errlen, "the certificate at line %u is not a "
			    "CA's", b[i].line);
			goto out;
		}
	}
	if (c->nca == 0) {
		err_say(err, errlen, "no CA CERTIFICATE after the private key");
		goto out;
	}
	if ((rc = verify_cert(cert, cas, c->nca, err, errlen)) != 0)
		goto out;
	rc = -EINVAL;

	if (i >= nb || strcmp(b[i].label, CRED_KEYS_PEM) != 0) {
		err_say(err, errlen, "no %s block after the CA certificate(s)",
		    CRED_KEYS_PEM);
		goto out;
	}
	if (i + 1 != nb) {
		err_say(err, errlen, "unexpected PEM block %s after the %s",
		    b[i + 1].label, CRED_KEYS_PEM);
		goto out;
	}
	if (!(bio = block_bio(&b[i])) ||
	    PEM_read_bio(bio, &name, &header, &data, &dlen) != 1 ||
	    header[0] != '\0') {
		err_say(err, errlen, "the %s block (line %u) is not valid base64 "
		    "PEM", CRED_KEYS_PEM, b[i].line);
		goto out;
	}
	if ((rc = cred_keys_decode(data, (size_t)dlen, c->role, &c->keys, err,
	         errlen)) != 0)
		goto out;

	/* The PEM text nng's TLS engine parses, as it was in the file. */
	size_t calen = 0;
	for (size_t j = 2; j < 2 + c->nca; j++)
		calen += b[j].len + 1;
	if (!(c->cert_pem = block_dup(&b[0])) ||
	    !(c->key_pem = block_dup(&b[1])) ||
	    !(c->ca_pem = mem_alloc(calen + 1))) {
		rc = -ENOMEM;
		goto out;
	}
	char *w = c->ca_pem;
	for (size_t j = 2; j < 2 + c->nca; j++) {
		memcpy(w, b[j].start, b[j].len);
		w += b[j].len;
		*w++ = '\n';
	}
	*w = '\0';
	rc = 0;
out:
	if (data)
		OPENSSL_cleanse(data, (size_t)dlen);
	OPENSSL_free(data);
	OPENSSL_free(name);
	OPENSSL_free(header);
	BIO_free(bio);
	for (unsigned j = 0; j < CRED_MAX_CAS; j++)
		X509_free(cas[j]);
	X509_free(cert);
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return rc;
}

int
cred_parse(const char *text, size_t len, struct cred *out, char *err,
    size_t errlen)
{
	struct cred c;
	struct block b[MAX_BLOCKS];
	size_t nb = 0;

	memset(&c, 0, sizeof(c));
	int rc = split_blocks(text, len, b, &nb, err, errlen);
	if (rc == 0)
		rc = parse_blocks(b, nb, &c, err, errlen);
	if (rc != 0) {
		if (rc == -ENOMEM)
			err_say(err, errlen, "%s", strerror(ENOMEM));
		cred_fini(&c);
		return rc;
	}
	*out = c;
	OPENSSL_cleanse(&c, sizeof(c));
	return 0;
}

int
cred_load(const char *path, struct cred *out, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	char why[256] = "";

	int rc = read_private(path, &text, &len, err, errlen);
	if (rc != 0)
		return rc;
	rc = cred_parse(text, len, out, why, sizeof(why));
	OPENSSL_cleanse(text, len);
	mem_free(text);
	if (rc != 0)
		err_say(err, errlen, "%s: %s", path, why);
	return rc;
}

void
cred_fini(struct cred *c)
{
	if (!c)
		return;
	if (c->key_pem) {
		OPENSSL_cleanse(c->key_pem, strlen(c->key_pem));
		mem_free(c->key_pem);
	}
	mem_free(c->cert_pem);
	mem_free(c->ca_pem);
	OPENSSL_cleanse(c, sizeof(*c));
}

int
cred_tls_config(const struct cred *c, nng_tls_mode mode,
    nng_tls_config **out)
{
	nng_tls_config *cfg = NULL;
	int rv = nng_tls_config_alloc(&cfg, mode);
	if (rv == 0)
		rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
	if (rv == 0)
		rv = nng_tls_config_ca_chain(cfg, c->ca_pem, NULL);
	if (rv == 0)
		rv = nng_tls_config_own_cert(cfg, c->cert_pem, c->key_pem, NULL);
	if (rv != 0) {
		if (cfg)
			nng_tls_config_free(cfg);
		return err_from_nng(rv);
	}
	*out = cfg;
	return 0;
}
