/* Unit tests for common/cred and common/ca: a CA made and a credential
 * issued and loaded back (round trip), the role keys block's version
 * check, and malformed or inconsistent credential files refused with a
 * reason. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "auth.h"
#include "buf.h"
#include "cli.h"
#include "ca.h"
#include "cred.h"
#include "err.h"

struct dir {
	char path[64];
	char ca[96];    /* the CA */
	char other[96]; /* another CA */
	char node[128]; /* a node credential of ca */
	char text[8192]; /* its text */
};

static void
path_of(const struct dir *d, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", d->path, name);
}

static void
write_text(const char *path, const char *text, mode_t mode)
{
	unlink(path);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void
read_text(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	fclose(f);
}

static int
setup(void **state)
{
	struct dir *d = calloc(1, sizeof(*d));
	char err[256];
	const char *hosts[] = {"127.0.0.1", "node1.example", "::1"};
	if (d == NULL)
		return -1;
	snprintf(d->path, sizeof(d->path), "/tmp/test_cred.XXXXXX");
	if (mkdtemp(d->path) == NULL) {
		free(d);
		return -1;
	}
	path_of(d, "ca", d->ca, sizeof(d->ca));
	path_of(d, "other", d->other, sizeof(d->other));
	path_of(d, "n1.pem", d->node, sizeof(d->node));
	struct ca_issue_opts o = {
		.name = "n1",
		.role = AUTH_NODE,
		.hosts = hosts,
		.nhosts = 3,
	};
	if (ca_init(d->ca, err, sizeof(err)) != 0 ||
	    ca_init(d->other, err, sizeof(err)) != 0 ||
	    ca_issue(d->ca, &o, d->node, err, sizeof(err)) != 0) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	read_text(d->node, d->text, sizeof(d->text));
	*state = d;
	return 0;
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int
teardown(void **state)
{
	struct dir *d = *state;
	nftw(d->path, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(d);
	return 0;
}

static void
master_of(const char *ca, struct auth_key *k)
{
	char p[160];
	snprintf(p, sizeof(p), "%s/%s", ca, CA_MASTER_FILE);
	assert_int_equal(auth_key_load(p, k), 0);
}

static void
test_round_trip_node(void **state)
{
	struct dir *d = *state;
	struct cred c;
	struct auth_key master;
	struct auth_keys want;
	char err[256] = "";

	assert_int_equal(cred_load(d->node, &c, err, sizeof(err)), 0);
	assert_string_equal(c.name, "n1");
	assert_int_equal(c.role, AUTH_NODE);
	assert_int_equal(c.nca, 1);
	assert_int_equal(c.keys.self, AUTH_NODE);
	master_of(d->ca, &master);
	assert_int_equal(auth_keys_from_master(&master, AUTH_NODE, &want), 0);
	assert_int_equal(c.keys.gen[0].id, auth_key_id(&master));
	assert_int_equal(c.keys.gen[0].have, AUTH_ALL_ROLES);
	assert_int_equal(c.keys.gen[1].id, 0);
	for (int r = 0; r < AUTH_NROLES; r++)
		assert_memory_equal(c.keys.gen[0].role[r].k,
		    want.gen[0].role[r].k, AUTH_KEY_LEN);
	assert_memory_equal(c.keys.blob.k, want.blob.k, AUTH_KEY_LEN);
	assert_non_null(strstr(c.cert_pem, "BEGIN CERTIFICATE"));
	assert_non_null(strstr(c.key_pem, "BEGIN PRIVATE KEY"));
	assert_non_null(strstr(c.ca_pem, "BEGIN CERTIFICATE"));

	nng_tls_config *srv = NULL, *cli = NULL;
	assert_int_equal(cred_tls_config(&c, NNG_TLS_MODE_SERVER, &srv), 0);
	assert_int_equal(cred_tls_config(&c, NNG_TLS_MODE_CLIENT, &cli), 0);
	nng_tls_config_free(srv);
	nng_tls_config_free(cli);
	cred_fini(&c);
	assert_null(c.key_pem);
}

static void
test_round_trip_client(void **state)
{
	struct dir *d = *state;
	struct cred c;
	struct auth_key master;
	struct auth_keys want;
	char p[160], err[256] = "";
	struct ca_issue_opts o = {.name = "laptop", .role = AUTH_CLIENT};

	path_of(d, "laptop.pem", p, sizeof(p));
	assert_int_equal(ca_issue(d->ca, &o, p, err, sizeof(err)), 0);
	/* Never overwritten. */
	assert_int_equal(ca_issue(d->ca, &o, p, err, sizeof(err)), -EEXIST);
	assert_int_equal(cred_load(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.name, "laptop");
	assert_int_equal(c.role, AUTH_CLIENT);
	assert_int_equal(c.keys.self, AUTH_CLIENT);
	assert_int_equal(c.keys.gen[0].have, AUTH_ROLE_BIT(AUTH_CLIENT));
	master_of(d->ca, &master);
	assert_int_equal(auth_keys_from_master(&master, AUTH_CLIENT, &want),
	    0);
	assert_memory_equal(c.keys.gen[0].role[AUTH_CLIENT].k,
	    want.gen[0].role[AUTH_CLIENT].k, AUTH_KEY_LEN);
	/* A client holds neither the node's nor the admin's key. */
	static const uint8_t zero[AUTH_KEY_LEN];
	assert_memory_equal(c.keys.gen[0].role[AUTH_NODE].k, zero,
	    AUTH_KEY_LEN);
	assert_memory_equal(c.keys.gen[0].role[AUTH_ADMIN].k, zero,
	    AUTH_KEY_LEN);
	assert_null(auth_role_key(&c.keys, 0, AUTH_NODE));
	assert_non_null(auth_role_key(&c.keys, 0, AUTH_CLIENT));
	cred_fini(&c);
}

static void
test_ca_init_refuses_overwrite(void **state)
{
	struct dir *d = *state;
	char err[256] = "";
	assert_int_equal(ca_init(d->ca, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "exists"));
}

static void
test_keys_two_generations(void **state)
{
	(void)state;
	struct auth_key m1, m2;
	struct auth_keys k, a, got;
	struct buf b;
	char err[256];

	memset(m1.k, 1, sizeof(m1.k));
	memset(m2.k, 2, sizeof(m2.k));
	assert_int_equal(auth_keys_from_master(&m1, AUTH_ADMIN, &k), 0);
	assert_int_equal(auth_keys_from_master(&m2, AUTH_ADMIN, &a), 0);
	k.gen[1] = a.gen[0];
	buf_init(&b);
	cred_keys_encode(&k, AUTH_ADMIN, &b);
	assert_int_equal(buf_err(&b), 0);
	/* 3 + 2 x (4 + 1 + 32) + 32 */
	assert_int_equal(b.len, 3 + 2 * 37 + 32);
	assert_int_equal(cred_keys_decode(b.data, b.len, AUTH_ADMIN, &got,
	                     err, sizeof(err)),
	    0);
	assert_int_equal(got.gen[1].id, auth_key_id(&m2));
	assert_memory_equal(got.gen[1].role[AUTH_ADMIN].k,
	    a.gen[0].role[AUTH_ADMIN].k, AUTH_KEY_LEN);
	/* Of another role: refused. */
	assert_int_equal(cred_keys_decode(b.data, b.len, AUTH_CLIENT, &got,
	                     err, sizeof(err)),
	    -EINVAL);
	/* Every truncation, and a byte too many. */
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(cred_keys_decode(b.data, n, AUTH_ADMIN, &got,
		                     err, sizeof(err)),
		    -EINVAL);
	buf_put_u8(&b, 0);
	assert_int_equal(cred_keys_decode(b.data, b.len, AUTH_ADMIN, &got,
	                     err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "past its end"));
	buf_fini(&b);
}

/* d->text with its role keys block replaced by base64 of blk. */
static void
with_keys_block(const struct dir *d, const uint8_t *blk, size_t len,
    char *out, size_t cap)
{
	const char *at = strstr(d->text, "-----BEGIN " CRED_KEYS_PEM);
	assert_non_null(at);
	size_t head = (size_t)(at - d->text);
	BIO *bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	assert_true(PEM_write_bio(bio, CRED_KEYS_PEM, "", blk, (long)len) > 0);
	char *p;
	long n = BIO_get_mem_data(bio, &p);
	assert_true(head + (size_t)n < cap);
	memcpy(out, d->text, head);
	memcpy(out + head, p, (size_t)n);
	out[head + (size_t)n] = '\0';
	BIO_free(bio);
}

static void
test_wrong_version_refused(void **state)
{
	struct dir *d = *state;
	struct auth_key master;
	struct auth_keys k;
	struct cred c;
	struct buf b;
	char p[160], text[8192], err[256] = "";

	master_of(d->ca, &master);
	assert_int_equal(auth_keys_from_master(&master, AUTH_NODE, &k), 0);
	buf_init(&b);
	cred_keys_encode(&k, AUTH_NODE, &b);
	b.data[0] = 2;
	with_keys_block(d, b.data, b.len, text, sizeof(text));
	path_of(d, "v2.pem", p, sizeof(p));
	write_text(p, text, 0600);
	assert_int_equal(cred_load(p, &c, err, sizeof(err)), DYN_EPROTO);
	assert_non_null(strstr(err, "version 2"));
	assert_non_null(strstr(err, "version 1"));

	/* The same block as version 1 loads: only the version was wrong. */
	b.data[0] = CRED_KEYS_VERSION;
	with_keys_block(d, b.data, b.len, text, sizeof(text));
	write_text(p, text, 0600);
	assert_int_equal(cred_load(p, &c, err, sizeof(err)), 0);
	cred_fini(&c);

	/* A client's keys under a node's certificate. */
	b.data[1] = AUTH_CLIENT;
	with_keys_block(d, b.data, b.len, text, sizeof(text));
	write_text(p, text, 0600);
	assert_int_equal(cred_load(p, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "role"));
	buf_fini(&b);
}

/* Load text as a credential file: the code, and err holding want. */
static void
expect_refused(const struct dir *d, const char *text, mode_t mode, int rc,
    const char *want)
{
	struct cred c;
	char p[160], err[256] = "";
	path_of(d, "bad.pem", p, sizeof(p));
	write_text(p, text, mode);
	int got = cred_load(p, &c, err, sizeof(err));
	if (got != rc || !strstr(err, want))
		fail_msg("want %d '%s', got %d '%s'", rc, want, got, err);
	assert_non_null(strstr(err, p)); /* the message names the file */
}

/* The text of block i (0-based) of d->text, BEGIN to END line. */
static void
block_text(const struct dir *d, int i, char *out, size_t cap)
{
	const char *s = d->text;
	for (int j = 0; j <= i; j++) {
		s = strstr(j ? s + 1 : s, "-----BEGIN ");
		assert_non_null(s);
	}
	const char *e = strstr(s, "-----END ");
	assert_non_null(e);
	e = strchr(e, '\n');
	size_t n = e ? (size_t)(e + 1 - s) : strlen(s);
	assert_true(n < cap);
	memcpy(out, s, n);
	out[n] = '\0';
}

static void
test_malformed_refused(void **state)
{
	struct dir *d = *state;
	char text[32768], b0[4096], b1[4096], b2[4096], b3[4096];
	char p[160], err[256];

	block_text(d, 0, b0, sizeof(b0));
	block_text(d, 1, b1, sizeof(b1));
	block_text(d, 2, b2, sizeof(b2));
	block_text(d, 3, b3, sizeof(b3));

	expect_refused(d, "", 0600, -EINVAL, "first PEM block");
	expect_refused(d, "hello\n", 0600, -EINVAL, "outside");
	snprintf(text, sizeof(text), "%s# comment\n%s%s%s", b0, b1, b2, b3);
	expect_refused(d, text, 0600, -EINVAL, "outside");
	/* Key first, certificate second. */
	snprintf(text, sizeof(text), "%s%s%s%s", b1, b0, b2, b3);
	expect_refused(d, text, 0600, -EINVAL, "first PEM block");
	/* No CA. */
	snprintf(text, sizeof(text), "%s%s%s", b0, b1, b3);
	expect_refused(d, text, 0600, -EINVAL, "no CA");
	/* No role keys. */
	snprintf(text, sizeof(text), "%s%s%s", b0, b1, b2);
	expect_refused(d, text, 0600, -EINVAL, "no " CRED_KEYS_PEM);
	/* A block past the role keys. */
	snprintf(text, sizeof(text), "%s%s%s%s%s", b0, b1, b2, b3, b2);
	expect_refused(d, text, 0600, -EINVAL, "unexpected");
	/* An END missing, or not the BEGIN's. */
	snprintf(text, sizeof(text), "%s%s%s%.*s", b0, b1, b2,
	    (int)(strstr(b3, "-----END") - b3), b3);
	expect_refused(d, text, 0600, -EINVAL, "no END");
	snprintf(text, sizeof(text), "%s%s%s%s", b0, b1, b2, b3);
	char *end = strstr(text, "-----END PRIVATE KEY");
	memcpy(end, "-----END PRIVATE KEX", 20);
	expect_refused(d, text, 0600, -EINVAL, "does not match");
	/* Base64 garbled inside the certificate. */
	snprintf(text, sizeof(text), "%s%s%s%s", b0, b1, b2, b3);
	text[40] = '!';
	text[41] = '!';
	expect_refused(d, text, 0600, -EINVAL, "certificate");
	/* The CA certificate as the own one (not a leaf signed by it is
	 * fine for X.509, but the key is not its key). */
	snprintf(text, sizeof(text), "%s%s%s%s", b2, b1, b2, b3);
	expect_refused(d, text, 0600, -EINVAL, "role (OU)");

	/* Another CA's certificate to trust: the own one does not check. */
	char oca[4096];
	snprintf(p, sizeof(p), "%s/%s", d->other, CA_CERT_FILE);
	read_text(p, oca, sizeof(oca));
	snprintf(text, sizeof(text), "%s%s%s%s", b0, b1, oca, b3);
	expect_refused(d, text, 0600, -EINVAL, "does not check");
	/* Two CAs, the right one second: fine (rotation). */
	snprintf(text, sizeof(text), "%s%s%s%s%s", b0, b1, oca, b2, b3);
	path_of(d, "two.pem", p, sizeof(p));
	write_text(p, text, 0600);
	struct cred c;
	assert_int_equal(cred_load(p, &c, err, sizeof(err)), 0);
	assert_int_equal(c.nca, 2);
	cred_fini(&c);
	/* Three are too many. */
	snprintf(text, sizeof(text), "%s%s%s%s%s%s", b0, b1, oca, b2, oca,
	    b3);
	expect_refused(d, text, 0600, -EINVAL, "more than 2");

	/* Another credential's key under this certificate. */
	char k2[4096], o2[160];
	struct ca_issue_opts o = {.name = "n2", .role = AUTH_NODE};
	path_of(d, "n2.pem", o2, sizeof(o2));
	assert_int_equal(ca_issue(d->ca, &o, o2, err, sizeof(err)), 0);
	read_text(o2, k2, sizeof(k2));
	char *ks = strstr(k2, "-----BEGIN PRIVATE KEY");
	char *ke = strchr(strstr(ks, "-----END PRIVATE KEY"), '\n');
	ke[1] = '\0';
	snprintf(text, sizeof(text), "%s%s%s%s", b0, ks, b2, b3);
	expect_refused(d, text, 0600, -EINVAL, "not the certificate's");

	/* Readable by others: refused, it holds a private key. */
	expect_refused(d, d->text, 0644, -EACCES, "chmod 600");
	/* Missing. */
	path_of(d, "none.pem", p, sizeof(p));
	assert_int_equal(cred_load(p, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "none.pem"));
}

/* cli_auth_load: --cred and --cluster-key are alternatives; a flag beats
 * the environment, and of the environment's two, the credential. */
static void
test_auth_load(void **state)
{
	struct dir *d = *state;
	struct auth_keys k;
	struct cred c;
	bool have;
	char key[160], err[600];

	snprintf(key, sizeof(key), "%s/%s", d->ca, CA_MASTER_FILE);
	unsetenv(CRED_ENV);
	unsetenv(CLI_KEY_ENV);
	assert_int_equal(cli_auth_load(NULL, NULL, AUTH_CLIENT, &k, &c, &have,
	                     err, sizeof(err)),
	    -ENOKEY);
	assert_non_null(strstr(err, "--cred"));
	assert_int_equal(cli_auth_load(key, d->node, AUTH_CLIENT, &k, &c,
	                     &have, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "alternatives"));

	/* The key file: every role's keys, signing as asked. */
	assert_int_equal(cli_auth_load(key, NULL, AUTH_CLIENT, &k, &c, &have,
	                     err, sizeof(err)),
	    0);
	assert_false(have);
	assert_int_equal(k.self, AUTH_CLIENT);
	assert_int_equal(k.gen[0].have, AUTH_ALL_ROLES);

	/* The credential: its role's keys, signing as its role. */
	assert_int_equal(cli_auth_load(NULL, d->node, AUTH_CLIENT, &k, &c,
	                     &have, err, sizeof(err)),
	    0);
	assert_true(have);
	assert_int_equal(k.self, AUTH_NODE);
	assert_string_equal(c.name, "n1");
	cred_fini(&c);

	/* The environment: the credential wins; a flag beats both. */
	setenv(CRED_ENV, d->node, 1);
	setenv(CLI_KEY_ENV, key, 1);
	assert_int_equal(cli_auth_load(NULL, NULL, AUTH_ADMIN, &k, &c, &have,
	                     err, sizeof(err)),
	    0);
	assert_true(have);
	cred_fini(&c);
	assert_int_equal(cli_auth_load(key, NULL, AUTH_ADMIN, &k, &c, &have,
	                     err, sizeof(err)),
	    0);
	assert_false(have);
	assert_int_equal(k.self, AUTH_ADMIN);
	/* A credential that does not load: its reason. */
	char p[160];
	path_of(d, "none.pem", p, sizeof(p));
	assert_int_equal(cli_auth_load(NULL, p, AUTH_ADMIN, &k, &c, &have, err,
	                     sizeof(err)),
	    -ENOENT);
	assert_non_null(strstr(err, "credential"));
	assert_non_null(strstr(err, "none.pem"));
	unsetenv(CRED_ENV);
	unsetenv(CLI_KEY_ENV);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip_node, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_round_trip_client, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_ca_init_refuses_overwrite,
	        setup, teardown),
	    cmocka_unit_test(test_keys_two_generations),
	    cmocka_unit_test_setup_teardown(test_wrong_version_refused, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_refused, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(test_auth_load, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
