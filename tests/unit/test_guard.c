/*
 * Unit tests for node/guard on a real nng rep socket on loopback, with raw
 * TCP connections that speak nng's SP handshake: the connection cap, the
 * idle reaper (and that it spares a pipe being served), the close of a
 * message declared over NNG_OPT_RECVMAXSZ, and the counters.  The guard
 * allocates in nng's threads, so the default allocator stays in place.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "guard.h"
#include "mono.h"
#include "node_i.h"

#define IDLE_MS 400

struct fixture {
	nng_socket sock;
	struct guard *g;
	int port;
};

static long long
now_ms(void)
{
	return (long long)mono_ms();
}

static void
pause_ms(int ms)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000};
	nanosleep(&ts, NULL);
}

static int
setup(void **state)
{
	static struct fixture fx;
	memset(&fx, 0, sizeof(fx));
	struct guard_opts o = {.max_conns = 3, .idle_ms = IDLE_MS,
	    .workers = 4};
	if (nng_rep0_open(&fx.sock) != 0)
		return -1;
	nng_socket_set_size(fx.sock, NNG_OPT_RECVMAXSZ, 1024);
	if (guard_new(fx.sock, &o, &fx.g) != 0)
		return -1;
	nng_listener l;
	if (nng_listener_create(&l, fx.sock, "tcp://127.0.0.1:0") != 0 ||
	    nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, 1024) != 0 ||
	    nng_listener_start(l, 0) != 0 ||
	    nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &fx.port) != 0)
		return -1;
	*state = &fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	guard_stopping(fx->g);
	nng_close(fx->sock);
	guard_free(fx->g);
	return 0;
}

/* A connection that has done the SP handshake: a pipe of the socket. */
static int
sp_connect(const struct fixture *fx)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)fx->port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct timeval tv = {.tv_sec = 2};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	const uint8_t hello[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
	assert_int_equal(write(fd, hello, sizeof(hello)), sizeof(hello));
	uint8_t theirs[8];
	assert_int_equal(read(fd, theirs, sizeof(theirs)), sizeof(theirs));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static bool
is_closed(int fd)
{
	char b[64];
	ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
	return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* Poll until n of the fds are closed by the other end, or ms pass. */
static size_t
wait_closed(const int *fds, size_t n, size_t want, int ms)
{
	long long end = now_ms() + ms;
	size_t closed;
	for (;;) {
		closed = 0;
		for (size_t i = 0; i < n; i++)
			closed += is_closed(fds[i]);
		if (closed >= want || now_ms() >= end)
			return closed;
		pause_ms(10);
	}
}

static struct guard_stats
stats_when(struct fixture *fx, uint64_t conns)
{
	struct guard_stats st;
	long long end = now_ms() + 2000;
	do {
		guard_stats(fx->g, &st);
		if (st.conns == conns)
			break;
		pause_ms(10);
	} while (now_ms() < end);
	return st;
}

static void
test_cap_then_idle(void **state)
{
	struct fixture *fx = *state;
	int fds[5];
	for (size_t i = 0; i < 5; i++)
		fds[i] = sp_connect(fx);
	/* Two over the cap of 3 are closed as they arrive. */
	assert_int_equal(wait_closed(fds, 5, 2, IDLE_MS * 3 / 4), 2);
	struct guard_stats st = stats_when(fx, 3);
	assert_int_equal(st.conns, 3);
	assert_int_equal(st.conns_refused, 2);
	assert_int_equal(st.conns_total, 3);
	/* The three left are idle: closed within the timeout and a tick. */
	long long t0 = now_ms();
	assert_int_equal(wait_closed(fds, 5, 5, 4 * IDLE_MS), 5);
	assert_true(now_ms() - t0 <= 2 * IDLE_MS);
	st = stats_when(fx, 0);
	assert_int_equal(st.conns, 0);
	assert_int_equal(st.idle_closed, 3);
	for (size_t i = 0; i < 5; i++)
		close(fds[i]);
}

static void
test_busy_is_spared(void **state)
{
	struct fixture *fx = *state;
	int fd = sp_connect(fx);
	/* A whole request: 8-byte length, then rep0's request id. */
	const uint8_t req[] = {0, 0, 0, 0, 0, 0, 0, 6, 0x80, 0, 0, 1, 'h',
	    'i'};
	assert_int_equal(write(fd, req, sizeof(req)), sizeof(req));
	nng_msg *msg;
	assert_int_equal(nng_recvmsg(fx->sock, &msg, 0), 0);
	nng_pipe pipe = nng_msg_get_pipe(msg);
	guard_pipe_busy(fx->g, pipe);
	guard_pipe_trust(fx->g, pipe);
	guard_reject(fx->g, pipe, "a test's reason");
	/* Served for longer than the timeout: still open. */
	assert_int_equal(wait_closed(&fd, 1, 1, 3 * IDLE_MS), 0);
	guard_pipe_done(fx->g, pipe);
	nng_msg_free(msg);
	assert_int_equal(wait_closed(&fd, 1, 1, 4 * IDLE_MS), 1);
	struct guard_stats st = stats_when(fx, 0);
	assert_int_equal(st.bad_tags, 1);
	close(fd);
}

static void
test_oversize(void **state)
{
	struct fixture *fx = *state;
	struct guard_stats before;
	guard_stats(fx->g, &before);
	int fd = sp_connect(fx);
	/* Declared over the socket's 1,024 bytes: closed at once. */
	const uint8_t hdr[8] = {0, 0, 0, 0, 0, 0x10, 0, 0};
	assert_int_equal(write(fd, hdr, sizeof(hdr)), sizeof(hdr));
	assert_int_equal(wait_closed(&fd, 1, 1, IDLE_MS), 1);
	struct guard_stats st = stats_when(fx, 0);
	assert_int_equal(st.oversize, before.oversize + 1);
	assert_int_equal(st.idle_closed, before.idle_closed);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cap_then_idle),
	    cmocka_unit_test(test_busy_is_spared),
	    cmocka_unit_test(test_oversize),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
