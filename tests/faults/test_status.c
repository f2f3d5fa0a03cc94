/*
 * `dynamoctl status` (the real binary) on 3 nodes:
 *   - all up: healthy, exit 0, a row per member;
 *   - n2 killed by PID and puts driven through the others: degraded,
 *     exit 4, naming n2 down, its row unreachable, and the hints held for
 *     it growing from one status to the next (puts in between);
 *   - n2 restarted: polled with a deadline until the hints are handed
 *     off and the cluster is healthy again (exit 0); --json says so too.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "harness.h"

static struct harness h;
static char out[16384];

static int
status(int node)
{
	static const char *const args[] = {"status", NULL};
	return harness_ctl(&h, node, out, sizeof(out), args);
}

/* The number after "for n2: " in the summary's hint reason; 0 without. */
static unsigned long
hints_for_n2(void)
{
	const char *p = strstr(out, "hints pending (for ");
	p = p ? strstr(p, "n2: ") : NULL;
	return p ? strtoul(p + 4, NULL, 10) : 0;
}

/* The row of member name (the line starting with it). */
static const char *
row(const char *name)
{
	static char line[512];
	size_t n = strlen(name);
	for (const char *p = out; p && *p; p = strchr(p, '\n')) {
		p += *p == '\n';
		if (strncmp(p, name, n) == 0 && p[n] == ' ') {
			size_t len = strcspn(p, "\n");
			snprintf(line, sizeof(line), "%.*s", (int)len, p);
			return line;
		}
	}
	return NULL;
}

static void
put_keys(struct dyn_client *c, int from, int to)
{
	char key[32];
	for (int i = from; i < to; i++) {
		snprintf(key, sizeof(key), "status/%d", i);
		harness_put(c, key, key);
	}
}

int
main(void)
{
	long long t0 = harness_now_ms();
	harness_init(&h);
	harness_start_cluster(&h, 3);

	/* Healthy once the founding transfers are over. */
	int ex;
	while ((ex = status(0)) != 0 && harness_now_ms() - t0 < 20000)
		harness_pause_ms(200);
	printf("all up:\n%s", out);
	CHECK(ex == 0 && strstr(out, "\nhealthy\n"));
	CHECK(row("n0") && row("n1") && row("n2"));

	harness_stop(&h, 2, SIGKILL);
	struct dyn_client *c = harness_client(&h, 5000, 0, 1, -1);
	put_keys(c, 0, 100);
	ex = status(0);
	unsigned long first = hints_for_n2();
	printf("n2 killed, 100 puts:\n%s", out);
	CHECK(ex == 4);
	CHECK(strstr(out, "\ndegraded: ") && strstr(out, "down: n2"));
	const char *r2 = row("n2");
	CHECK(r2 && strstr(r2, " no "));
	CHECK(first > 0);

	put_keys(c, 100, 200);
	ex = status(1);
	unsigned long second = hints_for_n2();
	printf("100 more puts, asked n1: hints for n2 %lu -> %lu\n", first,
	    second);
	CHECK(ex == 4 && strstr(out, "down: n2"));
	CHECK(second > first);
	/* The machine form exits 4 too, for scripts. */
	static const char *const degraded_json[] = {"status", "--json", NULL};
	ex = harness_ctl(&h, 0, out, sizeof(out), degraded_json);
	CHECK(ex == 4 && strstr(out, "\"health\": {\"healthy\": false"));
	printf("status --json with n2 down: exit 4\n");

	long long t1 = harness_now_ms();
	harness_start(&h, 2, (const char *const[]){"--gossip-interval", "250",
	                          "--ae-interval", "100", NULL});
	while ((ex = status(0)) != 0 && harness_now_ms() - t1 < 20000)
		harness_pause_ms(200);
	printf("n2 restarted; healthy after %lld ms:\n%s",
	    harness_now_ms() - t1, out);
	CHECK(ex == 0 && strstr(out, "\nhealthy\n"));
	r2 = row("n2");
	CHECK(r2 && strstr(r2, " yes "));
	CHECK(hints_for_n2() == 0);

	/* The machine form from n2's side says the same (polled too: n2's
	 * own view may take a gossip round to settle). */
	static const char *const json[] = {"status", "--json", NULL};
	const char *healthy = "\"health\": {\"healthy\": true, \"reasons\": []";
	long long t2 = harness_now_ms();
	while (((ex = harness_ctl(&h, 2, out, sizeof(out), json)) != 0 ||
	           !strstr(out, healthy)) &&
	    harness_now_ms() - t2 < 10000) {
		const char *why = strstr(out, "\"reasons\": ");
		printf("not yet: %.200s\n", why ? why : out);
		harness_pause_ms(200);
	}
	CHECK(ex == 0 && strstr(out, healthy));
	printf("status --json on n2: healthy (%lld ms in all)\n",
	    harness_now_ms() - t0);
	dyn_client_free(c);
	return 0;
}
