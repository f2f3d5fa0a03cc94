/*
 * A live node fed garbage keeps serving correct answers: random bytes, wrong
 * magic, huge length fields, bad and missing tags, authenticated but
 * inconsistent messages, oversized keys and values, forged contexts, raw
 * TCP junk.  A message with a bad tag gets the unsigned refusal and the
 * node logs why; anything else malformed gets no answer.  A process
 * without the cluster key is refused at once (DYN_EREFUSED, not a
 * timeout), reads nothing and writes nothing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "bloom.h"
#include "buf.h"
#include "err.h"
#include "harness.h"
#include "mem.h"
#include "refusal.h"
#include "wire.h"

static struct harness h;
static struct dyn_client *cl;
static struct auth_keys nodek; /* h.keys, signing as a node */
static nng_socket raw;
static int dropped;

/* The node still answers a real request correctly. */
static void
check_alive(void)
{
	struct dyn_get_result r;
	CHECK_RC(dyn_get(cl, "k", 1, NULL, &r), 0);
	CHECK(r.versions.n == 1 && r.versions.v[0].len == 4 &&
	    memcmp(r.versions.v[0].value, "good", 4) == 0);
	dyn_get_result_fini(&r);
}

static nng_msg *
send_raw(const void *p, size_t len)
{
	return harness_send_raw(raw, p, len, 500);
}

/* The message must be dropped without an answer, and the node live. */
static void
expect_dropped(const void *p, size_t len)
{
	nng_msg *reply = send_raw(p, len);
	CHECK(reply == NULL);
	dropped++;
	check_alive();
}

/* The message must get the refusal (a bad tag), and the node live. */
static void
expect_refused(const void *p, size_t len)
{
	nng_msg *reply = send_raw(p, len);
	CHECK(reply != NULL);
	CHECK(refusal_is(nng_msg_body(reply), nng_msg_len(reply)));
	nng_msg_free(reply);
	dropped++;
	check_alive();
}

/* The message must get a WIRE_ERROR carrying want. */
static void
expect_error(const struct buf *b, int want)
{
	nng_msg *reply = send_raw(b->data, b->len);
	CHECK(reply != NULL);
	struct wire_msg m;
	CHECK_RC(wire_decode(&nodek, nng_msg_body(reply), nng_msg_len(reply),
	             &m),
	    0);
	CHECK(m.type == WIRE_ERROR);
	int32_t st = 0;
	CHECK_RC(wire_get_i32(&m, F_STATUS, &st), 0);
	CHECK_RC(st, want);
	nng_msg_free(reply);
	check_alive();
}

/* A message with a correct tag over whatever bytes body holds. */
static void
seal_raw(struct buf *b, uint8_t type, const struct buf *body, uint32_t nf)
{
	wire_begin(b, type, 0, 7);
	buf_put(b, body->data, body->len);
	be_put_u32(b->data + 20, nf); /* the field count, as claimed */
	CHECK_RC(wire_seal(b, &nodek), 0);
}

static void
raw_tcp(const void *p, size_t len)
{
	const char *port = strrchr(h.nodes[0].addr, ':') + 1;
	struct sockaddr_in sa = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)atoi(port))};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	ssize_t w = write(fd, p, len);
	(void)w;
	close(fd);
	check_alive();
}

int
main(void)
{
	const char *const extra[] = {"--max-value", "1048576", NULL};
	harness_init(&h);
	nodek = h.keys;
	nodek.self = AUTH_NODE;
	harness_start(&h, 0, extra);
	cl = harness_client(&h, 5000, 0, -1);
	CHECK_RC(dyn_put(cl, "k", 1, NULL, 0, "good", 4, NULL, NULL, NULL), 0);
	check_alive();

	CHECK(nng_req0_open(&raw) == 0);
	nng_socket_set_size(raw, NNG_OPT_RECVMAXSZ, WIRE_MAX_MSG + 4096);
	CHECK(nng_dial(raw, h.nodes[0].addr, NULL, 0) == 0);

	/* Random bytes of many lengths. */
	uint8_t junk[8192];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof(junk); i++) {
		x = x * 1103515245u + 12345u;
		junk[i] = (uint8_t)(x >> 16);
	}
	size_t lens[] = {0, 1, 23, 24, 56, 57, 100, 8192};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		expect_dropped(junk, lens[i]);

	/* A real request, then: wrong magic, another version, bad tag,
	 * flipped bit, missing tag, huge length fields. */
	struct buf good, b, body;
	buf_init(&good);
	buf_init(&b);
	buf_init(&body);
	wire_begin(&good, WIRE_GET_REQ, 0, 1);
	wire_put(&good, F_KEY, "k", 1);
	CHECK_RC(wire_seal(&good, &nodek), 0);
	nng_msg *rep = send_raw(good.data, good.len);
	CHECK(rep != NULL);
	nng_msg_free(rep);

	uint8_t m[512];
	CHECK(good.len < sizeof(m));
	memcpy(m, good.data, good.len);
	m[0] ^= 0xff; /* magic */
	expect_dropped(m, good.len);
	memcpy(m, good.data, good.len);
	m[4] = 99; /* version */
	expect_dropped(m, good.len);
	memcpy(m, good.data, good.len);
	m[good.len - 1] ^= 1; /* tag */
	expect_refused(m, good.len);
	memcpy(m, good.data, good.len);
	m[WIRE_HDR_LEN + 7] ^= 0x10; /* body */
	expect_refused(m, good.len);
	expect_dropped(good.data, good.len - AUTH_TAG_LEN); /* no tag */
	memcpy(m, good.data, good.len);
	be_put_u32(m + 16, 0xffffffffu); /* body length */
	expect_dropped(m, good.len);
	memcpy(m, good.data, good.len);
	be_put_u32(m + 20, 0xffffffffu); /* field count */
	expect_dropped(m, good.len);

	/* Sealed with another key. */
	struct auth_key othermaster;
	struct auth_keys other;
	CHECK_RC(auth_key_generate(&othermaster), 0);
	CHECK_RC(auth_keys_from_master(&othermaster, AUTH_NODE, &other), 0);
	buf_reset(&b);
	wire_begin(&b, WIRE_GET_REQ, 0, 2);
	wire_put(&b, F_KEY, "k", 1);
	CHECK_RC(wire_seal(&b, &other), 0);
	expect_refused(b.data, b.len);

	/* Authenticated but inconsistent: a field longer than the body, and
	 * more fields than announced. */
	buf_put_u16(&body, F_KEY);
	buf_put_u32(&body, 0xfffffff0u);
	buf_put(&body, "k", 1);
	seal_raw(&b, WIRE_GET_REQ, &body, 1);
	expect_dropped(b.data, b.len);
	buf_reset(&body);
	buf_put_u16(&body, F_KEY);
	buf_put_u32(&body, 1);
	buf_put(&body, "k", 1);
	seal_raw(&b, WIRE_GET_REQ, &body, 5);
	expect_dropped(b.data, b.len);
	seal_raw(&b, 200, &body, 1); /* unknown type */
	expect_dropped(b.data, b.len);

	/* Well-formed requests the node must refuse with a clear error. */
	size_t big = 70 * 1024;
	uint8_t *bigp = mem_calloc(1, 2u << 20);
	CHECK(bigp != NULL);
	buf_reset(&b);
	wire_begin(&b, WIRE_PUT_REQ, 0, 3);
	wire_put(&b, F_KEY, bigp, big);
	wire_put(&b, F_VALUE, "v", 1);
	CHECK_RC(wire_seal(&b, &nodek), 0);
	expect_error(&b, DYN_ETOOBIG);

	buf_reset(&b);
	wire_begin(&b, WIRE_PUT_REQ, 0, 4);
	wire_put(&b, F_KEY, "k", 1);
	wire_put(&b, F_VALUE, bigp, 2u << 20);
	CHECK_RC(wire_seal(&b, &nodek), 0);
	expect_error(&b, DYN_ETOOBIG);

	buf_reset(&b);
	wire_begin(&b, WIRE_PUT_REQ, 0, 5);
	wire_put(&b, F_KEY, "k", 1);
	wire_put(&b, F_CONTEXT, junk, 60);
	wire_put(&b, F_VALUE, "evil", 4);
	CHECK_RC(wire_seal(&b, &nodek), 0);
	expect_error(&b, DYN_ECONTEXT);

	buf_reset(&b);
	wire_begin(&b, WIRE_PUT_REQ, 0, 6);
	wire_put(&b, F_VALUE, "nokey", 5);
	CHECK_RC(wire_seal(&b, &nodek), 0);
	expect_error(&b, DYN_EBADMSG);

	/* GC filter requests: without a seed, with a short one, and a
	 * reply type sent as a request; then a good one gets a filter. */
	buf_reset(&b);
	wire_begin(&b, WIRE_GC_FILTER_REQ, 0, 8);
	wire_put_str(&b, F_FROM, "stranger");
	CHECK_RC(wire_seal(&b, &nodek), 0);
	expect_error(&b, DYN_EBADMSG);
	buf_reset(&b);
	wire_begin(&b, WIRE_GC_FILTER_REQ, 0, 9);
	wire_put_u32(&b, F_SEED, 1);
	CHECK_RC(wire_seal(&b, &nodek), 0);
	expect_error(&b, DYN_EBADMSG);
	buf_reset(&b);
	wire_begin(&b, WIRE_GC_FILTER_RESP, 0, 10);
	wire_put(&b, F_BLOOM, junk, sizeof(junk));
	CHECK_RC(wire_seal(&b, &nodek), 0);
	expect_error(&b, DYN_EBADMSG);
	buf_reset(&b);
	wire_begin(&b, WIRE_GC_FILTER_REQ, 0, 11);
	wire_put_u64(&b, F_SEED, 42);
	CHECK_RC(wire_seal(&b, &nodek), 0);
	{
		nng_msg *reply = send_raw(b.data, b.len);
		CHECK(reply != NULL);
		struct wire_msg fm;
		CHECK_RC(wire_decode(&nodek, nng_msg_body(reply),
		             nng_msg_len(reply), &fm),
		    0);
		CHECK(fm.type == WIRE_GC_FILTER_RESP);
		const struct wire_field *bf = wire_find(&fm, F_BLOOM);
		CHECK(bf != NULL);
		struct rd rd;
		struct bloom *f;
		rd_init(&rd, bf->data, bf->len);
		CHECK_RC(bloom_decode(&rd, &f), 0);
		CHECK(bloom_seed(f) == 42 && bloom_items(f) == 0);
		bloom_free(f);
		nng_msg_free(reply);
	}

	/* Forged context through the client library too. */
	CHECK_RC(dyn_put(cl, "k", 1, junk, 60, "evil", 4, NULL, NULL, NULL),
	    DYN_ECONTEXT);
	mem_free(bigp);

	/* Raw TCP: junk, and an SP handshake promising a huge message. */
	raw_tcp(junk, sizeof(junk));
	const uint8_t sp[] = {0, 'S', 'P', 0, 0, 0x30, 0, 0,
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	raw_tcp(sp, sizeof(sp));

	/* A process without the key: refused at once, nothing read,
	 * nothing written, and the node says why. */
	struct dyn_client_opts o = {
		.nodes = (const char *const[]){h.nodes[0].addr},
		.nnodes = 1,
		.keys = other,
		.timeout_ms = 500,
	};
	struct dyn_client *intruder;
	CHECK_RC(dyn_client_new(&o, &intruder), 0);
	struct dyn_get_result r;
	long long t0 = harness_now_ms();
	CHECK_RC(dyn_get(intruder, "k", 1, NULL, &r), DYN_EREFUSED);
	long long refused_ms = harness_now_ms() - t0;
	CHECK_RC(dyn_put(intruder, "k", 1, NULL, 0, "evil", 4, NULL, NULL,
	             NULL),
	    DYN_EREFUSED);
	CHECK_RC(dyn_put(intruder, "new", 3, NULL, 0, "evil", 4, NULL, NULL,
	             NULL),
	    DYN_EREFUSED);
	printf("a client with another key was refused in %lld ms\n",
	    refused_ms);
	CHECK(refused_ms < 400); /* its timeout is 500 */
	dropped += 3;
	dyn_client_free(intruder);
	/* dynamoctl with that key says so (the last --cluster-key wins). */
	char otherfile[600], out[1024];
	snprintf(otherfile, sizeof(otherfile), "%s/other.key", h.tmp);
	CHECK_RC(auth_key_write(otherfile, &othermaster), 0);
	int st = harness_ctl(&h, 0, out, sizeof(out),
	    (const char *const[]){"--cluster-key", otherfile, "get", "k",
	        NULL});
	printf("dynamoctl with another key: exit %d: %s", st, out);
	CHECK(st != 0 && strstr(out, "refused by the node: wrong cluster "
	                              "key?") != NULL);
	dropped++;
	check_alive();
	CHECK_RC(dyn_get(cl, "new", 3, NULL, &r), -ENOENT);
	dyn_get_result_fini(&r);

	struct dyn_status s;
	CHECK_RC(dyn_status(cl, 0, &s), 0);
	CHECK(s.keys == 1);
	CHECK(s.stats != NULL);
	unsigned long long rejected = 0, authf = 0;
	const char *p = strstr(s.stats, "rejected=");
	CHECK(p && sscanf(p, "rejected=%llu", &rejected) == 1);
	p = strstr(s.stats, "auth_failures=");
	CHECK(p && sscanf(p, "auth_failures=%llu", &authf) == 1);
	printf("node dropped %llu bad messages (%llu bad tags); test sent "
	       "%d\n",
	    rejected, authf, dropped);
	CHECK(rejected >= (unsigned long long)dropped - 2);
	CHECK(authf >= 5);
	dyn_status_fini(&s);
	CHECK(harness_log_has(&h, 0, "bad tag: wrong cluster key?"));

	nng_close(raw);
	buf_fini(&good);
	buf_fini(&b);
	buf_fini(&body);
	dyn_client_free(cl);
	return 0;
}
