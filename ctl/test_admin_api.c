// SPDX-License-Identifier: GPL-2.0-only
/*
 * The admin API of lbd's l4lb role, end to end in one process: the real
 * role (balancer loaded and attached to a veth in a private netns) behind
 * the real Unix-socket server, called through the client lbctl uses.
 * Bad input must get the right status and a message naming the bad value,
 * and change nothing. Needs root (exit 77 otherwise).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lbd.h"
#include "netlink.h"

static struct lbd d;
static char sock[64], conf[64];
static pthread_t server;
static atomic_bool stop;

static const char *conf_text = "role = \"l4lb\"; host = \"lbt\"; interface = \"lbt0\";\n"
			       "pin_dir = \"\";\n"
			       "vips = ( { address = \"192.0.2.10\"; port = 80;\n"
			       "  reals = ( { address = \"10.1.0.2\"; } ); } );\n";

/* lbd's loop, in a thread of its own so the test can call the API. */
static void *serve(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		loop_run_once(&d.loop, 50);
	return NULL;
}

/* Call and return the status; *out gets the reply (caller frees). */
static int api(const char *method, const char *path, const char *body, json_t **out)
{
	json_t *b = body ? json_loads(body, 0, NULL) : NULL;
	int status = 0;

	assert_true(!body || b);
	assert_int_equal(admin_call(sock, method, path, b, &status, out, NULL), 0);
	json_decref(b);
	return status;
}

static const char *error_of(json_t *o)
{
	return json_string_value(json_object_get(o, "error"));
}

static size_t n_reals(void)
{
	json_t *out;
	size_t n;

	assert_int_equal(api("GET", "/v1/vips", NULL, &out), 200);
	n = json_array_size(json_object_get(json_array_get(out, 0), "reals"));
	json_decref(out);
	return n;
}

static void test_list(void **s)
{
	json_t *out, *v;

	(void)s;
	assert_int_equal(api("GET", "/v1/vips", NULL, &out), 200);
	assert_int_equal(json_array_size(out), 1);
	v = json_array_get(out, 0);
	assert_string_equal(json_string_value(json_object_get(v, "address")), "192.0.2.10");
	assert_int_equal(json_integer_value(json_object_get(v, "port")), 80);
	assert_string_equal(json_string_value(json_object_get(v, "proto")), "tcp");
	assert_int_equal(n_reals(), 1);
	json_decref(out);
}

static void test_real_lifecycle(void **s)
{
	const char *add = "{\"vip\":{\"address\":\"192.0.2.10\",\"port\":80,\"proto\":\"tcp\"},"
			  "\"address\":\"10.1.0.3\",\"weight\":3}";
	json_t *out;

	(void)s;
	assert_int_equal(api("POST", "/v1/reals", add, &out), 201);
	json_decref(out);
	assert_int_equal(n_reals(), 2);
	assert_int_equal(api("POST", "/v1/reals", add, &out), 409);
	assert_non_null(strstr(error_of(out), "already has real 10.1.0.3"));
	json_decref(out);
	assert_int_equal(api("PUT", "/v1/reals",
			     "{\"vip\":{\"address\":\"192.0.2.10\",\"port\":80},"
			     "\"address\":\"10.1.0.3\",\"weight\":0}",
			     &out),
			 200);
	json_decref(out);
	assert_int_equal(api("DELETE", "/v1/reals",
			     "{\"vip\":{\"address\":\"192.0.2.10\",\"port\":80},"
			     "\"address\":\"10.1.0.3\"}",
			     &out),
			 200);
	json_decref(out);
	assert_int_equal(n_reals(), 1);
}

static void test_bad_input_changes_nothing(void **s)
{
	static const struct {
		const char *method, *path, *body;
		int status;
		const char *want;
	} cases[] = {
	    {"POST", "/v1/reals",
	     "{\"vip\":{\"address\":\"192.0.2.10\",\"port\":80},\"address\":\"10.1.0.300\"}", 400,
	     "real address \"10.1.0.300\""},
	    {"POST", "/v1/reals",
	     "{\"vip\":{\"address\":\"192.0.2.1O\",\"port\":80},\"address\":\"10.1.0.3\"}", 400,
	     "vip address \"192.0.2.1O\""},
	    {"POST", "/v1/reals",
	     "{\"vip\":{\"address\":\"192.0.2.10\",\"port\":80},\"address\":\"fd00::3\"}", 400,
	     "this LB has no IPv6 address on"},
	    {"POST", "/v1/reals",
	     "{\"vip\":{\"address\":\"192.0.2.10\",\"port\":80},\"address\":\"10.1.0.3\","
	     "\"weight\":-4}",
	     400, "\"weight\" must be"},
	    {"DELETE", "/v1/reals",
	     "{\"vip\":{\"address\":\"192.0.2.10\",\"port\":80},\"address\":\"10.1.0.9\"}", 404,
	     "no vip 192.0.2.10:80/tcp with real 10.1.0.9"},
	    {"POST", "/v1/vips", "{\"address\":\"192.0.2.10\",\"port\":80}", 409, "already exists"},
	    {"POST", "/v1/vips", "{\"address\":\"192.0.2.10\",\"port\":0}", 400, "vip port"},
	    {"POST", "/v1/vips", "{\"address\":\"192.0.2.10\",\"port\":80,\"proto\":\"icmp\"}", 400,
	     "vip proto"},
	    {"DELETE", "/v1/vips", "{\"address\":\"192.0.2.99\",\"port\":80}", 404,
	     "no vip 192.0.2.99:80/tcp"},
	    {"GET", "/v1/nope", NULL, 404, "no such path"},
	    {"PATCH", "/v1/vips", NULL, 405, "method not allowed"},
	};
	json_t *out;

	(void)s;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int st = api(cases[i].method, cases[i].path, cases[i].body, &out);

		if (st != cases[i].status || !error_of(out) ||
		    !strstr(error_of(out), cases[i].want))
			fail_msg("case %zu: %d \"%s\", want %d \"%s\"", i, st,
				 error_of(out) ? error_of(out) : "", cases[i].status,
				 cases[i].want);
		json_decref(out);
	}
	assert_int_equal(n_reals(), 1);
}

/* Send raw bytes to the admin socket; returns the reply text (static). */
static const char *raw(const char *req)
{
	static char buf[4096];
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	ssize_t n, got = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(sun.sun_path, sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while ((n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += n;
	buf[got] = '\0';
	close(fd);
	return buf;
}

static void test_malformed_requests(void **s)
{
	const char *r;

	(void)s;
	r = raw("POST /v1/vips HTTP/1.1\r\nContent-Length: 5\r\n\r\n{bad}");
	assert_non_null(strstr(r, "HTTP/1.1 400"));
	assert_non_null(strstr(r, "invalid JSON body"));
	r = raw("BLAH\x01 / HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 400"));
	assert_non_null(strstr(r, "malformed HTTP request"));
	assert_int_equal(n_reals(), 1);
}

static void test_stats_and_reload(void **s)
{
	FILE *f;
	json_t *out;

	(void)s;
	assert_int_equal(api("GET", "/v1/stats", NULL, &out), 200);
	assert_non_null(json_object_get(json_object_get(out, "global"), "rx"));
	assert_int_equal(json_array_size(json_object_get(out, "vips")), 1);
	json_decref(out);

	/* A bad file on reload: 400 naming file and line, config kept. */
	f = fopen(conf, "w");
	fputs("role = \"l4lb\"; interface = \"lbt0\"; pin_dir = \"\";\n"
	      "vips = ( { address = \"192.0.2.10\"; port = 80;\n"
	      "  reals = ( { address = \"10.1.0.256\"; } ); } );\n",
	      f);
	fclose(f);
	assert_int_equal(api("POST", "/v1/reload", NULL, &out), 400);
	assert_non_null(strstr(error_of(out), ":3: real address \"10.1.0.256\""));
	assert_non_null(strstr(error_of(out), "running config unchanged"));
	json_decref(out);
	assert_int_equal(n_reals(), 1);

	/* A good file: the diff is applied (one real more). */
	f = fopen(conf, "w");
	fputs("role = \"l4lb\"; interface = \"lbt0\"; pin_dir = \"\";\n"
	      "vips = ( { address = \"192.0.2.10\"; port = 80;\n"
	      "  reals = ( { address = \"10.1.0.2\"; }, { address = \"10.1.0.4\"; } ); } );\n",
	      f);
	fclose(f);
	assert_int_equal(api("POST", "/v1/reload", NULL, &out), 200);
	json_decref(out);
	assert_int_equal(n_reals(), 2);
}

/* --- GET /metrics ------------------------------------------------------------ */

/* The page, checked for the shape a scraper needs (caller frees). */
static char *metrics(void)
{
	char *text = NULL, *line, *save = NULL, *copy, family[128] = "";
	char *seen[128];
	size_t len, n_seen = 0;
	int status;

	assert_int_equal(admin_get_text(sock, "/metrics", &status, &text, &len, NULL), 0);
	assert_int_equal(status, 200);
	assert_int_equal(strlen(text), len);
	assert_true(len > 0 && text[len - 1] == '\n');
	/* Every family is announced once, before its samples, and its
	 * samples follow it without another family in between. */
	copy = strdup(text);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128];

		if (sscanf(line, "# TYPE %127s", name) == 1) {
			for (size_t i = 0; i < n_seen; i++)
				if (strcmp(seen[i], name) == 0)
					fail_msg("family %s twice", name);
			assert_true(n_seen < 128);
			seen[n_seen++] = strdup(name);
			snprintf(family, sizeof(family), "%s", name);
			continue;
		}
		if (line[0] == '#')
			continue;
		snprintf(name, sizeof(name), "%s", line);
		name[strcspn(name, "{ ")] = '\0';
		if (strcmp(name, family))
			fail_msg("sample %s outside its family (after %s)", line, family);
	}
	for (size_t i = 0; i < n_seen; i++)
		free(seen[i]);
	free(copy);
	return text;
}

/* The value of one series (the exact text before the value), or -1. */
static long long value_of(const char *page, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = page; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
	return -1;
}

/* Run n TCP SYNs to the VIP through the XDP program, as if they came in
 * on lbt0. */
static void send_to_vip(int n)
{
	struct {
		struct ethhdr eth;
		struct iphdr ip;
		struct tcphdr tcp;
	} __attribute__((packed)) pkt = {0};
	unsigned char out[256];
	struct l4lb *lb;
	struct health *hc;
	struct bgp_speaker *bgp;
	uint32_t sum = 0;
	const uint8_t *ip = (const uint8_t *)&pkt + sizeof(pkt.eth);

	pkt.eth.h_proto = htons(ETH_P_IP);
	memcpy(pkt.eth.h_source, "\x02\0\0\0\0\x01", 6);
	memcpy(pkt.eth.h_dest, "\x02\0\0\0\0\x02", 6);
	pkt.ip = (struct iphdr){.version = 4,
				.ihl = 5,
				.tot_len = htons(sizeof(pkt.ip) + sizeof(pkt.tcp)),
				.ttl = 64,
				.protocol = IPPROTO_TCP};
	inet_pton(AF_INET, "198.51.100.7", &pkt.ip.saddr);
	inet_pton(AF_INET, "192.0.2.10", &pkt.ip.daddr);
	for (size_t i = 0; i < sizeof(pkt.ip); i += 2) /* RFC 1071 */
		sum += (uint32_t)ip[i] << 8 | ip[i + 1];
	sum = (sum & 0xffff) + (sum >> 16);
	pkt.ip.check = htons((uint16_t) ~((sum & 0xffff) + (sum >> 16)));
	pkt.tcp = (struct tcphdr){
	    .source = htons(40000), .dest = htons(80), .doff = 5, .syn = 1, .window = htons(1024)};
	lbd_l4_parts(&d, &lb, &hc, &bgp);
	for (int i = 0; i < n; i++) {
		struct xdp_md ctx = {.data_end = sizeof(pkt), .ingress_ifindex = d.ifindex};
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = &pkt, .data_size_in = sizeof(pkt),
			    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
			    .ctx_size_in = sizeof(ctx), .repeat = 1);

		pkt.tcp.source = htons((uint16_t)(40000 + i)); /* a new flow each */
		assert_int_equal(bpf_prog_test_run_opts(l4lb_prog_fd(lb), &opts), 0);
	}
}

static void test_metrics(void **s)
{
	static const char *const vip = "portico_lbd_vip_packets_total{vip=\"192.0.2.10:80/tcp\"}";
	static const char *const rx = "portico_lbd_xdp_rx_packets_total";
	const char *r;
	char *page;
	long long v0, rx0;

	(void)s;
	page = metrics();
	assert_non_null(strstr(page, "# TYPE portico_lbd_vip_packets_total counter\n"));
	assert_non_null(strstr(page, "# HELP portico_lbd_vip_packets_total "));
	assert_non_null(strstr(page,
			       "\nportico_build_info{daemon=\"lbd\",version=\"" PORTICO_VERSION
			       "\",role=\"l4lb\"} 1\n"));
	assert_non_null(strstr(page, "\nportico_lbd_real_weight{vip=\"192.0.2.10:80/tcp\",real="
				     "\"10.1.0.2\"} 1\n"));
	assert_non_null(strstr(page, "\nportico_lbd_xdp_dropped_packets_total{reason=\"fib\"} "));
	assert_true(value_of(page, "portico_lbd_start_time_seconds") > 1600000000);
	/* No bgp group: no BGP families. */
	assert_null(strstr(page, "portico_lbd_bgp_"));
	v0 = value_of(page, vip);
	rx0 = value_of(page, rx);
	assert_true(v0 >= 0 && rx0 >= 0);
	free(page);

	send_to_vip(3);
	page = metrics();
	assert_int_equal(value_of(page, vip), v0 + 3);
	assert_true(value_of(page, rx) >= rx0 + 3);
	free(page);

	/* The reply's type is the exposition format's. */
	r = raw("GET /metrics HTTP/1.1\r\n\r\n");
	assert_non_null(strstr(r, "HTTP/1.1 200"));
	assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
}

static int setup(void **s)
{
	char *err = NULL;
	FILE *f;

	(void)s;
	if (unshare(CLONE_NEWNET) ||
	    system("ip link add lbt0 type veth peer name lbt1 && ip link set lbt0 up && "
		   "ip link set lbt1 up && ip addr add 10.1.0.1/24 dev lbt0"))
		return -1;
	snprintf(sock, sizeof(sock), "/tmp/lbd-test-%d.sock", getpid());
	snprintf(conf, sizeof(conf), "/tmp/lbd-test-%d.conf", getpid());
	f = fopen(conf, "w");
	fputs(conf_text, f);
	fclose(f);
	d.config_path = conf;
	if (lbd_config_load(conf, &d.cfg, &err)) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	d.role = &lbd_l4_role;
	d.ifindex = lb_nl_ifindex("lbt0");
	if (loop_init(&d.loop) || d.ifindex < 0 || d.role->start(&d))
		return -1;
	d.admin = admin_server_new(&d.loop, sock, d.role->routes, &d);
	if (!d.admin)
		return -1;
	return pthread_create(&server, NULL, serve, NULL);
}

static int teardown(void **s)
{
	(void)s;
	atomic_store(&stop, true);
	pthread_join(server, NULL);
	admin_server_free(d.admin);
	unlink(conf);
	d.role->stop(&d, true);
	loop_fini(&d.loop);
	lbd_config_free(&d.cfg);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_list),
	    cmocka_unit_test(test_real_lifecycle),
	    cmocka_unit_test(test_bad_input_changes_nothing),
	    cmocka_unit_test(test_malformed_requests),
	    cmocka_unit_test(test_stats_and_reload),
	    cmocka_unit_test(test_metrics),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "skipped: loading XDP and a private netns need root\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
