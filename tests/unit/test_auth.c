/* Unit tests for common/auth: HMAC-SHA256 vectors, tag checks, key files. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

#include "auth.h"
#include "blob.h"

struct dir {
	char path[64];
};

static int
setup(void **state)
{
	struct dir *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -1;
	snprintf(d->path, sizeof(d->path), "/tmp/test_auth.XXXXXX");
	if (mkdtemp(d->path) == NULL) {
		free(d);
		return -1;
	}
	*state = d;
	return 0;
}

static int
teardown(void **state)
{
	struct dir *d = *state;
	static const char *const names[] = {"key", "bad", "good", "again",
	                                    "sub/key"};
	char p[128];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", d->path, names[i]);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/sub", d->path);
	rmdir(p);
	rmdir(d->path);
	free(d);
	return 0;
}

static void
path_of(const struct dir *d, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", d->path, name);
}

static void
write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void
unhex(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/* RFC 4231's keys are shorter than 32 bytes; HMAC zero-pads a key to the
 * block size, so the key followed by zeros gives the same MAC. */
static void
key_from(struct auth_key *k, const void *p, size_t n)
{
	memset(k->k, 0, sizeof(k->k));
	memcpy(k->k, p, n);
}

static void
test_rfc4231_case1(void **state)
{
	uint8_t kb[20];
	struct auth_key k;
	uint8_t tag[AUTH_TAG_LEN], want[AUTH_TAG_LEN];

	(void)state;
	memset(kb, 0x0b, sizeof(kb));
	key_from(&k, kb, sizeof(kb));
	unhex("b0344c61d8db38535ca8afceaf0bf12b"
	      "881dc200c9833da726e9376c2e32cff7",
	      want, sizeof(want));
	assert_int_equal(auth_tag(&k, "Hi There", 8, NULL, 0, tag), 0);
	assert_memory_equal(tag, want, AUTH_TAG_LEN);
}

static void
test_rfc4231_case2(void **state)
{
	static const char data[] = "what do ya want for nothing?";
	struct auth_key k;
	uint8_t tag[AUTH_TAG_LEN], want[AUTH_TAG_LEN];
	size_t n = strlen(data);

	(void)state;
	key_from(&k, "Jefe", 4);
	unhex("5bdcc146bf60754e6a042426089575c7"
	      "5a003f089d2739839dec58b964ec3843",
	      want, sizeof(want));
	assert_int_equal(auth_tag(&k, data, n, NULL, 0, tag), 0);
	assert_memory_equal(tag, want, AUTH_TAG_LEN);
	/* Any split into two parts gives the same tag. */
	for (size_t i = 0; i <= n; i++) {
		memset(tag, 0, sizeof(tag));
		assert_int_equal(auth_tag(&k, data, i, data + i, n - i, tag),
		                 0);
		assert_memory_equal(tag, want, AUTH_TAG_LEN);
		assert_true(auth_check(&k, data, i, data + i, n - i, want));
	}
}

static void
test_rfc4231_case4(void **state)
{
	uint8_t kb[25], data[50];
	struct auth_key k;
	uint8_t tag[AUTH_TAG_LEN], want[AUTH_TAG_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(kb); i++)
		kb[i] = (uint8_t)(i + 1);
	memset(data, 0xcd, sizeof(data));
	key_from(&k, kb, sizeof(kb));
	unhex("82558a389a443c0ea4cc819899f2083a"
	      "85f0faa3e578f8077a2e3ff46729665b",
	      want, sizeof(want));
	assert_int_equal(auth_tag(&k, data, sizeof(data), NULL, 0, tag), 0);
	assert_memory_equal(tag, want, AUTH_TAG_LEN);
}

/* The three RFC 4231 cases above as (key, message, tag) triples. */
struct vector {
	struct auth_key k;
	uint8_t data[50];
	size_t len;
	uint8_t tag[AUTH_TAG_LEN];
};

static void
vectors(struct vector v[3])
{
	uint8_t kb[25];
	memset(kb, 0x0b, 20);
	key_from(&v[0].k, kb, 20);
	memcpy(v[0].data, "Hi There", v[0].len = 8);
	unhex("b0344c61d8db38535ca8afceaf0bf12b"
	      "881dc200c9833da726e9376c2e32cff7", v[0].tag, AUTH_TAG_LEN);
	key_from(&v[1].k, "Jefe", 4);
	memcpy(v[1].data, "what do ya want for nothing?", v[1].len = 28);
	unhex("5bdcc146bf60754e6a042426089575c7"
	      "5a003f089d2739839dec58b964ec3843", v[1].tag, AUTH_TAG_LEN);
	for (size_t i = 0; i < sizeof(kb); i++)
		kb[i] = (uint8_t)(i + 1);
	key_from(&v[2].k, kb, sizeof(kb));
	memset(v[2].data, 0xcd, v[2].len = 50);
	unhex("82558a389a443c0ea4cc819899f2083a"
	      "85f0faa3e578f8077a2e3ff46729665b", v[2].tag, AUTH_TAG_LEN);
}

/* A thread keeps keyed contexts for its last two keys: any order of three
 * keys (each use of one evicting another) gives every tag right. */
static void
tag_in_order(const struct vector *v, const int *order, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct vector *x = &v[order[i]];
		uint8_t tag[AUTH_TAG_LEN];
		assert_int_equal(auth_tag(&x->k, x->data, x->len, NULL, 0, tag),
		    0);
		assert_memory_equal(tag, x->tag, AUTH_TAG_LEN);
		assert_true(auth_check(&x->k, x->data, x->len, NULL, 0, x->tag));
	}
}

static void
test_keys_interleaved(void **state)
{
	(void)state;
	struct vector v[3];
	vectors(v);
	static const int order[] = {0, 0, 1, 0, 1, 2, 2, 0, 1, 2, 1, 0, 2,
	    0, 2, 1};
	tag_in_order(v, order, sizeof(order) / sizeof(order[0]));
}

static void *
tag_thread(void *arg)
{
	const struct vector *v = arg;
	int order[64];
	for (int i = 0; i < 64; i++)
		order[i] = (i * 7 + i / 5) % 3;
	for (int round = 0; round < 50; round++)
		tag_in_order(v, order, 64);
	return NULL;
}

/* Threads tagging at once, each with its own contexts (threads that
 * exit free theirs). */
static void
test_keys_threads(void **state)
{
	(void)state;
	struct vector v[3];
	vectors(v);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, tag_thread, v), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
}

static void
test_check(void **state)
{
	struct auth_key k, other;
	uint8_t tag[AUTH_TAG_LEN];

	(void)state;
	assert_int_equal(auth_key_generate(&k), 0);
	other = k;
	other.k[31] ^= 1;
	assert_int_equal(auth_tag(&k, "abc", 3, "def", 3, tag), 0);
	assert_true(auth_check(&k, "abc", 3, "def", 3, tag));
	assert_true(auth_check(&k, "ab", 2, "cdef", 4, tag));
	assert_false(auth_check(&other, "abc", 3, "def", 3, tag));
	assert_false(auth_check(&k, "abc", 3, "deg", 3, tag));
	assert_false(auth_check(&k, "abc", 3, "de", 2, tag));
	for (int bit = 0; bit < AUTH_TAG_LEN * 8; bit++) {
		tag[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_false(auth_check(&k, "abc", 3, "def", 3, tag));
		tag[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* Empty message. */
	assert_int_equal(auth_tag(&k, NULL, 0, NULL, 0, tag), 0);
	assert_true(auth_check(&k, NULL, 0, NULL, 0, tag));
	assert_true(auth_check(&k, "", 0, "", 0, tag));
}

static void
test_generate(void **state)
{
	struct auth_key a, b;
	static const struct auth_key zero;

	(void)state;
	assert_int_equal(auth_key_generate(&a), 0);
	assert_int_equal(auth_key_generate(&b), 0);
	assert_memory_not_equal(a.k, b.k, AUTH_KEY_LEN);
	assert_memory_not_equal(a.k, zero.k, AUTH_KEY_LEN);
}

static void
test_file_round_trip(void **state)
{
	struct dir *d = *state;
	struct auth_key k, got;
	char p[128];
	struct stat st;
	char text[80];
	FILE *f;

	path_of(d, "key", p, sizeof(p));
	assert_int_equal(auth_key_generate(&k), 0);
	assert_int_equal(auth_key_write(p, &k), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 65);

	/* 64 lower-case hex digits and a newline. */
	f = fopen(p, "r");
	assert_non_null(f);
	assert_non_null(fgets(text, sizeof(text), f));
	fclose(f);
	assert_int_equal(strlen(text), 65);
	assert_int_equal(text[64], '\n');
	assert_int_equal(strspn(text, "0123456789abcdef"), 64);

	assert_int_equal(auth_key_load(p, &got), 0);
	assert_memory_equal(k.k, got.k, AUTH_KEY_LEN);

	/* O_EXCL: an existing file is never overwritten. */
	memset(&got, 0, sizeof(got));
	assert_int_equal(auth_key_write(p, &got), -EEXIST);
	assert_int_equal(auth_key_load(p, &got), 0);
	assert_memory_equal(k.k, got.k, AUTH_KEY_LEN);
}

static void
test_file_errors(void **state)
{
	struct dir *d = *state;
	struct auth_key k;
	char p[128];

	assert_int_equal(auth_key_generate(&k), 0);
	path_of(d, "missing", p, sizeof(p));
	assert_int_equal(auth_key_load(p, &k), -ENOENT);
	path_of(d, "sub/key", p, sizeof(p));
	assert_int_equal(auth_key_write(p, &k), -ENOENT);
	assert_int_equal(auth_key_load(p, &k), -ENOENT);
	/* A directory is not a key file. */
	assert_int_equal(auth_key_load(d->path, &k), -EISDIR);
	assert_int_equal(auth_key_write(d->path, &k), -EEXIST);

	/* Unreadable (root reads anything, so only check as others). */
	if (geteuid() != 0) {
		path_of(d, "key", p, sizeof(p));
		assert_int_equal(auth_key_write(p, &k), 0);
		assert_int_equal(chmod(p, 0), 0);
		assert_int_equal(auth_key_load(p, &k), -EACCES);
		unlink(p);
	}
}

#define HEX64                                                                 \
	"00112233445566778899aabbccddeeff"                                    \
	"0123456789abcdefFEDCBA9876543210"

static void
test_file_whitespace(void **state)
{
	static const char *const ok[] = {
	    HEX64,
	    HEX64 "\n",
	    HEX64 "\r\n",
	    "\n\n  \t" HEX64 " \n\t\n",
	    "\v\f" HEX64 "\f",
	};
	struct dir *d = *state;
	struct auth_key k;
	uint8_t want[AUTH_KEY_LEN];
	char p[128];

	unhex(HEX64, want, sizeof(want));
	path_of(d, "good", p, sizeof(p));
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		memset(&k, 0, sizeof(k));
		write_file(p, ok[i], strlen(ok[i]));
		assert_int_equal(auth_key_load(p, &k), 0);
		assert_memory_equal(k.k, want, AUTH_KEY_LEN);
	}
}

static void
test_file_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "\n",
	    "   \n\t",
	    /* 63 and 65 digits */
	    "00112233445566778899aabbccddeeff"
	    "0123456789abcdefFEDCBA987654321\n",
	    HEX64 "0\n",
	    /* a non-hex digit, in each half of a byte */
	    "g0112233445566778899aabbccddeeff"
	    "0123456789abcdefFEDCBA9876543210\n",
	    "0g112233445566778899aabbccddeeff"
	    "0123456789abcdefFEDCBA9876543210\n",
	    "0x112233445566778899aabbccddeeff"
	    "0123456789abcdefFEDCBA9876543210\n",
	    "0x" HEX64 "\n",
	    /* white space inside */
	    "00112233445566778899aabbccddeeff "
	    "0123456789abcdefFEDCBA9876543210\n",
	    HEX64 "\nx",
	    HEX64 "\n" HEX64 "\n",
	    "key = " HEX64 "\n",
	};
	struct dir *d = *state;
	struct auth_key k, before;
	char p[128];

	memset(&before, 0x5a, sizeof(before));
	path_of(d, "bad", p, sizeof(p));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		k = before;
		write_file(p, bad[i], strlen(bad[i]));
		assert_int_equal(auth_key_load(p, &k), -EINVAL);
		/* A failed load leaves the output alone. */
		assert_memory_equal(k.k, before.k, AUTH_KEY_LEN);
	}

	/* A NUL inside. */
	{
		char t[] = HEX64 "\n";
		t[10] = '\0';
		write_file(p, t, sizeof(t) - 1);
		assert_int_equal(auth_key_load(p, &k), -EINVAL);
	}
	/* A huge file of white space around a key is not a key file. */
	{
		size_t n = 1 << 20;
		char *t = malloc(n);
		assert_non_null(t);
		memset(t, ' ', n);
		memcpy(t + n / 2, HEX64, 64);
		write_file(p, t, n);
		free(t);
		assert_int_equal(auth_key_load(p, &k), -EINVAL);
	}
}

/* Role keys: the same master gives the same keys, every purpose its own
 * key, the blob key the one blob_key_derive makes; a key is found by its
 * generation's id and only for a role the keys hold. */
static void
test_role_keys(void **state)
{
	(void)state;
	struct auth_key m, other;
	struct auth_keys a, b, c;
	assert_int_equal(auth_key_generate(&m), 0);
	assert_int_equal(auth_key_generate(&other), 0);
	assert_int_equal(auth_keys_from_master(&m, AUTH_ADMIN, &a), 0);
	assert_int_equal(auth_keys_from_master(&m, AUTH_NODE, &b), 0);
	assert_int_equal(auth_keys_from_master(&other, AUTH_NODE, &c), 0);
	assert_int_equal(a.self, AUTH_ADMIN);
	assert_int_equal(a.gen[0].have, AUTH_ALL_ROLES);
	assert_int_equal(a.gen[1].id, 0);
	assert_int_not_equal(a.gen[0].id, 0);
	assert_int_equal(a.gen[0].id, auth_key_id(&m));
	assert_int_not_equal(a.gen[0].id, c.gen[0].id);

	/* Deterministic, distinct per role and from the master. */
	const struct auth_key *all[AUTH_NROLES + 2];
	for (int r = 0; r < AUTH_NROLES; r++) {
		assert_memory_equal(a.gen[0].role[r].k, b.gen[0].role[r].k,
		    AUTH_KEY_LEN);
		assert_memory_not_equal(a.gen[0].role[r].k, c.gen[0].role[r].k,
		    AUTH_KEY_LEN);
		all[r] = &a.gen[0].role[r];
	}
	all[AUTH_NROLES] = &a.blob;
	all[AUTH_NROLES + 1] = &m;
	for (int i = 0; i < AUTH_NROLES + 2; i++)
		for (int j = i + 1; j < AUTH_NROLES + 2; j++)
			assert_memory_not_equal(all[i]->k, all[j]->k,
			    AUTH_KEY_LEN);

	struct blob_key bk;
	blob_key_derive(&m, &bk);
	assert_memory_equal(bk.k, a.blob.k, sizeof(bk.k));

	/* Lookup: the signing generation (id 0), by id, not another id,
	 * not a role the keys lack, not a role out of range. */
	for (int r = 0; r < AUTH_NROLES; r++) {
		assert_ptr_equal(auth_role_key(&a, 0, (enum auth_role)r),
		    &a.gen[0].role[r]);
		assert_ptr_equal(auth_role_key(&a, a.gen[0].id,
		                     (enum auth_role)r),
		    &a.gen[0].role[r]);
		assert_null(auth_role_key(&a, c.gen[0].id, (enum auth_role)r));
	}
	a.gen[0].have = AUTH_ROLE_BIT(AUTH_CLIENT);
	assert_null(auth_role_key(&a, 0, AUTH_NODE));
	assert_null(auth_role_key(&a, 0, AUTH_ADMIN));
	assert_non_null(auth_role_key(&a, 0, AUTH_CLIENT));
	assert_null(auth_role_key(&a, 0, AUTH_NROLES));

	/* A second generation is found by its id. */
	a.gen[1] = c.gen[0];
	assert_ptr_equal(auth_role_key(&a, c.gen[0].id, AUTH_NODE),
	    &a.gen[1].role[AUTH_NODE]);

	/* Names. */
	enum auth_role r;
	for (int i = 0; i < AUTH_NROLES; i++) {
		assert_int_equal(auth_role_parse(
		    auth_role_name((enum auth_role)i), &r), 0);
		assert_int_equal(r, i);
	}
	assert_int_equal(auth_role_parse("root", &r), -EINVAL);
	assert_string_equal(auth_role_name(AUTH_NROLES), "?");
}

/* A rotation's key file: two keys and the blob key; written and read
 * back; its role keys two generations, the blob key the line's. */
static void
test_rotation_file(void **state)
{
	struct dir *d = *state;
	char p[128];
	path_of(d, "rot", p, sizeof(p));
	struct auth_key_file f = {.n = 2, .have_blob = true}, got;
	assert_int_equal(auth_key_generate(&f.master[0]), 0);
	assert_int_equal(auth_key_generate(&f.master[1]), 0);
	assert_int_equal(auth_key_generate(&f.blob), 0);
	assert_int_equal(auth_key_file_write(p, &f), 0);
	assert_int_equal(auth_key_file_write(p, &f), 0); /* replaces */
	assert_int_equal(auth_key_file_load(p, &got), 0);
	assert_int_equal(got.n, 2);
	assert_true(got.have_blob);
	assert_memory_equal(&got.master, &f.master, sizeof(f.master));
	assert_memory_equal(got.blob.k, f.blob.k, AUTH_KEY_LEN);
	/* One key is a plain key file, still. */
	assert_int_equal(auth_key_load(p, &got.blob), -EINVAL);

	struct auth_keys k, one;
	assert_int_equal(auth_keys_from_file(&got, AUTH_CLIENT, &k), 0);
	assert_int_equal(auth_keys_from_master(&f.master[1], AUTH_CLIENT, &one),
	                 0);
	assert_int_equal(k.gen[0].id, auth_key_id(&f.master[0]));
	assert_int_equal(k.gen[1].id, one.gen[0].id);
	assert_memory_equal(auth_role_key(&k, one.gen[0].id, AUTH_NODE),
	                    &one.gen[0].role[AUTH_NODE], sizeof(struct auth_key));
	assert_memory_equal(k.blob.k, f.blob.k, AUTH_KEY_LEN);

	/* Without the blob line: the first key's blob key. */
	got.have_blob = false;
	got.n = 1;
	assert_int_equal(auth_key_file_write(p, &got), 0);
	assert_int_equal(auth_key_file_load(p, &got), 0);
	assert_int_equal(auth_keys_from_file(&got, AUTH_CLIENT, &k), 0);
	assert_int_equal(auth_keys_from_master(&f.master[0], AUTH_CLIENT, &one),
	                 0);
	assert_memory_equal(k.blob.k, one.blob.k, AUTH_KEY_LEN);

	/* Three keys, two blob lines, a stray word, no key: refused. */
	static const char *const bad[] = {
	    HEX64 "\n" HEX64 "\n" HEX64 "\n",
	    HEX64 "\nblob " HEX64 "\nblob " HEX64 "\n",
	    HEX64 "\nkey " HEX64 "\n",
	    "blob " HEX64 "\n",
	    "\n\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(p, bad[i], strlen(bad[i]));
		assert_int_equal(auth_key_file_load(p, &got), -EINVAL);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc4231_case1),
	    cmocka_unit_test(test_rfc4231_case2),
	    cmocka_unit_test(test_rfc4231_case4),
	    cmocka_unit_test(test_keys_interleaved),
	    cmocka_unit_test(test_keys_threads),
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_generate),
	    cmocka_unit_test(test_role_keys),
	    cmocka_unit_test_setup_teardown(test_file_round_trip, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotation_file, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_file_whitespace, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_file_malformed, setup,
	                                    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
