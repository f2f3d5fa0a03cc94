#include "ca.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "cred.h"
#include "err.h"
#include "mem.h"

#define CA_DAYS   (20 * 365)
#define CERT_DAYS (5 * 365)
#define SKEW_S    (5 * 60) /* notBefore this far back: clocks differ */

/* OpenSSL's last error, for a message. */
static const char *
ossl_why(void)
{
	static _Thread_local char s[160];
	unsigned long e = ERR_get_error();
	if (e == 0)
		return "unknown OpenSSL error";
	ERR_error_string_n(e, s, sizeof(s));
	ERR_clear_error();
	return s;
}

/* Write a new file (never an existing one), synced; gone on failure. */
static int
write_new(const char *path, mode_t mode, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	int rc = 0;
	const char *c = p;
	while (n > 0 && rc == 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno != EINTR)
			rc = -errno;
		else if (w > 0) {
			c += w;
			n -= (size_t)w;
		}
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc != 0)
		unlink(path);
	return rc;
}

/* Write what bio holds to a new file. */
static int
write_bio(const char *path, mode_t mode, BIO *bio)
{
	char *p = NULL;
	long n = BIO_get_mem_data(bio, &p);
	if (n < 0)
		return -EIO;
	return write_new(path, mode, p, (size_t)n);
}

static void
dir_file(char *out, size_t cap, const char *dir, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
}

static EVP_PKEY *
p256_key(void)
{
	return EVP_EC_gen("P-256");
}

static int
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ex)
		return -EIO;
	int ok = X509_add_ext(cert, ex, -1);
	X509_EXTENSION_free(ex);
	return ok == 1 ? 0 : -EIO;
}

/* A certificate for key's public half, subject CN (and OU if not NULL),
 * valid days from now less the skew; issuer NULL: self-signed. */
static X509 *
cert_new(EVP_PKEY *key, const char *cn, const char *ou, unsigned days,
    X509 *issuer)
{
	X509 *x = X509_new();
	uint8_t serial[16];
	BIGNUM *bn = NULL;
	bool ok = x && RAND_bytes(serial, sizeof(serial)) == 1;
	serial[0] &= 0x7f; /* positive */
	ok = ok && (bn = BN_bin2bn(serial, sizeof(serial), NULL)) &&
	     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
	     X509_set_version(x, 2) == 1 &&
	     X509_gmtime_adj(X509_getm_notBefore(x), -SKEW_S) &&
	     X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) &&
	     X509_set_pubkey(x, key) == 1;
	BN_free(bn);
	X509_NAME *nm = ok ? X509_get_subject_name(x) : NULL;
	ok = ok && X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_UTF8,
	               (const unsigned char *)"dynamo", -1, -1, 0) == 1;
	if (ou)
		ok = ok && X509_NAME_add_entry_by_txt(nm, "OU", MBSTRING_UTF8,
		               (const unsigned char *)ou, -1, -1, 0) == 1;
	ok = ok && X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8,
	               (const unsigned char *)cn, -1, -1, 0) == 1;
	ok = ok && X509_set_issuer_name(x, issuer ? X509_get_subject_name(
	                                                issuer) : nm) == 1;
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* A new CA: its certificate's and its key's PEM text, in memory BIOs
 * the caller frees. */
static int
make_ca(BIO **cert, BIO **pkey, char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	BIO *cb = NULL, *kb = NULL;
	int rc = -EIO;
	/* A name of its own: during a rotation two CAs are trusted, and a
	 * verifier looks a certificate's issuer up by name first. */
	uint8_t id[4];
	char cn[48];
	if (RAND_bytes(id, sizeof(id)) != 1)
		return -EIO;
	snprintf(cn, sizeof(cn), "dynamo cluster CA %02x%02x%02x%02x", id[0],
	    id[1], id[2], id[3]);
	if (!(key = p256_key()) ||
	    !(x = cert_new(key, cn, NULL, CA_DAYS, NULL)) ||
	    add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    add_ext(x, x, NID_subject_key_identifier, "hash") ||
	    X509_sign(x, key, EVP_sha256()) == 0 ||
	    !(cb = BIO_new(BIO_s_mem())) || !(kb = BIO_new(BIO_s_mem())) ||
	    PEM_write_bio_X509(cb, x) != 1 ||
	    PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) != 1) {
		err_say(err, errlen, "making the CA: %s", ossl_why());
		BIO_free(cb);
		BIO_free_all(kb);
	} else {
		*cert = cb;
		*pkey = kb;
		rc = 0;
	}
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

int
ca_init(const char *dir, char *err, size_t errlen)
{
	char cpath[PATH_MAX], kpath[PATH_MAX], mpath[PATH_MAX];
	BIO *cb = NULL, *kb = NULL;
	struct auth_key master;
	int rc;

	dir_file(cpath, sizeof(cpath), dir, CA_CERT_FILE);
	dir_file(kpath, sizeof(kpath), dir, CA_KEY_FILE);
	dir_file(mpath, sizeof(mpath), dir, CA_MASTER_FILE);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		err_say(err, errlen, "%s: %s", dir, strerror(-rc));
		return rc;
	}
	const char *paths[] = {cpath, kpath, mpath};
	for (size_t i = 0; i < 3; i++) {
		if (access(paths[i], F_OK) == 0) {
			err_say(err, errlen, "%s exists: not overwriting a CA",
			    paths[i]);
			return -EEXIST;
		}
	}

	if ((rc = make_ca(&cb, &kb, err, errlen)) != 0)
		goto out;
	if ((rc = auth_key_generate(&master)) != 0) {
		err_say(err, errlen, "a master key: %s", strerror(-rc));
		goto out;
	}
	/* The key first: a CA without its key would be of no use. */
	if ((rc = write_bio(kpath, 0600, kb)) != 0) {
		err_say(err, errlen, "%s: %s", kpath, strerror(-rc));
		goto out;
	}
	if ((rc = auth_key_write(mpath, &master)) != 0) {
		err_say(err, errlen, "%s: %s", mpath, strerror(-rc));
		unlink(kpath);
		goto out;
	}
	if ((rc = write_bio(cpath, 0644, cb)) != 0) {
		err_say(err, errlen, "%s: %s", cpath, strerror(-rc));
		unlink(kpath);
		unlink(mpath);
		goto out;
	}
out:
	OPENSSL_cleanse(&master, sizeof(master));
	BIO_free(cb);
	BIO_free(kb);
	ERR_clear_error();
	return rc;
}

/* The subjectAltName value for hosts: IP:a for addresses, DNS:h else. */
static int
san_value(const char *const *hosts, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t a[16];
		bool ip = inet_pton(AF_INET, hosts[i], a) == 1 ||
		          inet_pton(AF_INET6, hosts[i], a) == 1;
		if (hosts[i][0] == '\0' || strpbrk(hosts[i], ", \t\n"))
			return -EINVAL;
		buf_printf(out, "%s%s:%s", i ? "," : "", ip ? "IP" : "DNS",
		    hosts[i]);
	}
	buf_put_u8(out, 0);
	return buf_err(out);
}

/* Every certificate of the CA's ca.pem, appended to bio; the first (the
 * one that signs) into *signer. */
static int
read_cas(const char *path, BIO *bio, X509 **signer, char *err,
    size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		int rc = -errno;
		err_say(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	X509 *x;
	unsigned n = 0;
	int rc = 0;
	while ((x = PEM_read_X509(f, NULL, NULL, NULL))) {
		if (n == CRED_MAX_CAS || PEM_write_bio_X509(bio, x) != 1) {
			err_say(err, errlen, "%s: more than %d certificates", path,
			    CRED_MAX_CAS);
			X509_free(x);
			rc = -EINVAL;
			break;
		}
		if (n++ == 0)
			*signer = x;
		else
			X509_free(x);
	}
	fclose(f);
	ERR_clear_error();
	if (rc == 0 && n == 0) {
		err_say(err, errlen, "%s: no certificate in it", path);
		rc = -EINVAL;
	}
	return rc;
}

int
ca_issue(const char *dir, const struct ca_issue_opts *o, const char *out,
    char *err, size_t errlen)
{
	char cpath[PATH_MAX], kpath[PATH_MAX], mpath[PATH_MAX];
	X509 *ca = NULL, *x = NULL;
	EVP_PKEY *cakey = NULL, *key = NULL;
	BIO *bio = NULL, *cas = NULL;
	FILE *f = NULL;
	struct auth_key_file master;
	struct auth_keys keys;
	struct buf san, blk;
	int rc;

	buf_init(&san);
	buf_init(&blk);
	memset(&keys, 0, sizeof(keys));
	memset(&master, 0, sizeof(master));
	size_t nl = strlen(o->name);
	if (nl == 0 || nl > CRED_NAME_MAX || strpbrk(o->name, "/\n")) {
		err_say(err, errlen, "name '%s': 1 to %d bytes, no '/'", o->name,
		    CRED_NAME_MAX);
		return -EINVAL;
	}
	if (access(out, F_OK) == 0) {
		err_say(err, errlen, "%s exists: not overwriting it", out);
		return -EEXIST;
	}
	if ((rc = san_value(o->hosts, o->nhosts, &san)) != 0) {
		err_say(err, errlen, "a host is empty or holds ',' or a space");
		goto out;
	}
	dir_file(cpath, sizeof(cpath), dir, CA_CERT_FILE);
	dir_file(kpath, sizeof(kpath), dir, CA_KEY_FILE);
	dir_file(mpath, sizeof(mpath), dir, CA_MASTER_FILE);
	if ((rc = auth_key_file_load(mpath, &master)) != 0) {
		err_say(err, errlen, "%s: %s", mpath, strerror(-rc));
		goto out;
	}
	rc = -EIO;
	if (!(cas = BIO_new(BIO_s_mem())) || !(bio = BIO_new(BIO_s_mem()))) {
		err_say(err, errlen, "%s", strerror(ENOMEM));
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = read_cas(cpath, cas, &ca, err, errlen)) != 0)
		goto out;
	if (!(f = fopen(kpath, "r"))) {
		rc = -errno;
		err_say(err, errlen, "%s: %s", kpath, strerror(-rc));
		goto out;
	}
	rc = -EINVAL;
	if (!(cakey = PEM_read_PrivateKey(f, NULL, NULL, NULL)) ||
	    X509_check_private_key(ca, cakey) != 1) {
		err_say(err, errlen, "%s: not the key of %s's first certificate",
		    kpath, cpath);
		goto out;
	}

	rc = -EIO;
	if (!(key = p256_key()) ||
	    !(x = cert_new(key, o->name, auth_role_name(o->role),
	          o->days ? o->days : CERT_DAYS, ca)) ||
	    add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") ||
	    add_ext(x, ca, NID_key_usage, "critical,digitalSignature") ||
	    add_ext(x, ca, NID_ext_key_usage, "serverAuth,clientAuth") ||
	    add_ext(x, ca, NID_subject_key_identifier, "hash") ||
	    add_ext(x, ca, NID_authority_key_identifier, "keyid:always") ||
	    (o->nhosts > 0 && add_ext(x, ca, NID_subject_alt_name,
	                          (const char *)san.data)) ||
	    X509_sign(x, cakey, EVP_sha256()) == 0) {
		err_say(err, errlen, "making the certificate: %s", ossl_why());
		goto out;
	}
	if ((rc = auth_keys_from_file(&master, o->role, &keys)) != 0) {
		err_say(err, errlen, "deriving the role keys: %s", strerror(-rc));
		goto out;
	}
	cred_keys_encode(&keys, o->role, &blk);
	char *cap = NULL;
	long calen = BIO_get_mem_data(cas, &cap);
	rc = -EIO;
	if (buf_err(&blk) != 0 || PEM_write_bio_X509(bio, x) != 1 ||
	    PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) !=
	        1 ||
	    calen <= 0 || BIO_write(bio, cap, (int)calen) != (int)calen ||
	    PEM_write_bio(bio, CRED_KEYS_PEM, "", blk.data, (long)blk.len) <=
	        0) {
		err_say(err, errlen, "writing the credential: %s", ossl_why());
		goto out;
	}
	if ((rc = write_bio(out, 0600, bio)) != 0)
		err_say(err, errlen, "%s: %s", out, strerror(-rc));
out:
	if (f)
		fclose(f);
	OPENSSL_cleanse(&master, sizeof(master));
	OPENSSL_cleanse(&keys, sizeof(keys));
	if (blk.data)
		OPENSSL_cleanse(blk.data, blk.len);
	buf_fini(&blk);
	buf_fini(&san);
	BIO_free_all(bio); /* holds the private key's PEM: freed, not kept */
	BIO_free(cas);
	X509_free(ca);
	X509_free(x);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return rc;
}

/* The CA certificates of path, in order (at most CRED_MAX_CAS). */
static int
load_certs(const char *path, X509 *out[CRED_MAX_CAS], unsigned *n, char *err,
    size_t errlen)
{
	BIO *all = BIO_new(BIO_s_mem());
	X509 *signer = NULL;
	int rc = all ? read_cas(path, all, &signer, err, errlen) : -ENOMEM;
	X509_free(signer);
	*n = 0;
	X509 *x;
	while (rc == 0 && *n < CRED_MAX_CAS &&
	       (x = PEM_read_bio_X509(all, NULL, NULL, NULL)))
		out[(*n)++] = x;
	BIO_free(all);
	ERR_clear_error();
	return rc;
}

/* Replace path by what bio holds (a new file, then renamed). */
static int
replace_bio(const char *path, mode_t mode, BIO *bio)
{
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	unlink(tmp);
	int rc = write_bio(tmp, mode, bio);
	if (rc == 0 && rename(tmp, path) != 0) {
		rc = -errno;
		unlink(tmp);
	}
	return rc;
}

static int
replace_certs(const char *path, X509 *const *certs, unsigned n)
{
	BIO *b = BIO_new(BIO_s_mem());
	int rc = b ? 0 : -ENOMEM;
	for (unsigned i = 0; rc == 0 && i < n; i++)
		if (PEM_write_bio_X509(b, certs[i]) != 1)
			rc = -EIO;
	if (rc == 0)
		rc = replace_bio(path, 0644, b);
	BIO_free(b);
	return rc;
}

int
ca_rotate(const char *dir, enum ca_rotate_step step, char *err,
    size_t errlen)
{
	char cpath[PATH_MAX], kpath[PATH_MAX], mpath[PATH_MAX];
	char next[PATH_MAX], prev[PATH_MAX];
	X509 *certs[CRED_MAX_CAS + 1] = {NULL};
	unsigned n = 0;
	struct auth_key_file f;
	struct auth_keys keys;
	BIO *cb = NULL, *kb = NULL;
	int rc;

	dir_file(cpath, sizeof(cpath), dir, CA_CERT_FILE);
	dir_file(kpath, sizeof(kpath), dir, CA_KEY_FILE);
	dir_file(mpath, sizeof(mpath), dir, CA_MASTER_FILE);
	dir_file(next, sizeof(next), dir, CA_NEXT_KEY_FILE);
	dir_file(prev, sizeof(prev), dir, CA_PREV_KEY_FILE);
	memset(&keys, 0, sizeof(keys));
	if ((rc = auth_key_file_load(mpath, &f)) != 0) {
		err_say(err, errlen, "%s: %s", mpath, strerror(-rc));
		return rc;
	}
	if ((rc = load_certs(cpath, certs, &n, err, errlen)) != 0)
		goto out;
	bool has_next = access(next, F_OK) == 0;
	bool has_prev = access(prev, F_OK) == 0;
	unsigned want = step == CA_ROTATE_BEGIN ? 1 : 2;
	bool state_ok = step == CA_ROTATE_BEGIN ? !has_next && !has_prev
	              : step == CA_ROTATE_SWITCH ? has_next && !has_prev
	                                         : has_prev && !has_next;
	if (!state_ok || n != want || f.n != want) {
		static const char *const what[] = {
		    "begin: a rotation is in progress already",
		    "switch: no rotation begun (or switched already)",
		    "finish: no rotation switched"};
		err_say(err, errlen, "%s (%s: %u certificate(s), %s: %u key(s))",
		    what[step], cpath, n, mpath, f.n);
		rc = -EINVAL;
		goto out;
	}
	switch (step) {
	case CA_ROTATE_BEGIN:
		/* The new CA and master key are trusted and accepted; the old
		 * ones still sign.  The blob key stays the cluster's. */
		if ((rc = make_ca(&cb, &kb, err, errlen)) != 0)
			goto out;
		if (!(certs[1] = PEM_read_bio_X509(cb, NULL, NULL, NULL))) {
			rc = -EIO;
			goto out;
		}
		n = 2;
		if (!f.have_blob) {
			if ((rc = auth_keys_from_master(&f.master[0], AUTH_NODE,
			         &keys)) != 0)
				goto out;
			f.blob = keys.blob;
			f.have_blob = true;
		}
		if ((rc = auth_key_generate(&f.master[1])) != 0)
			goto out;
		f.n = 2;
		if ((rc = write_bio(next, 0600, kb)) != 0) {
			err_say(err, errlen, "%s: %s", next, strerror(-rc));
			goto out;
		}
		break;
	case CA_ROTATE_SWITCH: {
		/* The new ones sign; the old are still trusted, accepted. */
		X509 *c = certs[0];
		certs[0] = certs[1];
		certs[1] = c;
		struct auth_key m = f.master[0];
		f.master[0] = f.master[1];
		f.master[1] = m;
		OPENSSL_cleanse(&m, sizeof(m));
		if (rename(kpath, prev) != 0 || rename(next, kpath) != 0) {
			rc = -errno;
			err_say(err, errlen, "%s: %s", kpath, strerror(-rc));
			goto out;
		}
		break;
	}
	case CA_ROTATE_FINISH:
		/* The old CA and master key are gone. */
		n = 1;
		f.n = 1;
		break;
	}
	if ((rc = replace_certs(cpath, certs, n)) != 0) {
		err_say(err, errlen, "%s: %s", cpath, strerror(-rc));
		goto out;
	}
	if ((rc = auth_key_file_write(mpath, &f)) != 0) {
		err_say(err, errlen, "%s: %s", mpath, strerror(-rc));
		goto out;
	}
	if (step == CA_ROTATE_FINISH && unlink(prev) != 0) {
		rc = -errno;
		err_say(err, errlen, "%s: %s", prev, strerror(-rc));
	}
out:
	for (unsigned i = 0; i <= CRED_MAX_CAS; i++)
		X509_free(certs[i]);
	BIO_free(cb);
	BIO_free_all(kb);
	OPENSSL_cleanse(&f, sizeof(f));
	OPENSSL_cleanse(&keys, sizeof(keys));
	ERR_clear_error();
	return rc;
}
