// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests for pulling backend sets: the document parser (good documents
 * and every kind of bad one, each error naming its field), the verdicts on
 * a status and an ETag, the "upstreams" config group, and the HTTP client
 * against small servers on loopback (a thread each) for ETags, 304,
 * chunked and close-delimited bodies, the body cap, garbage, a refused
 * connection, a server that never answers, and a Unix socket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "http_client.h"
#include "upstream_pull.h"

/* --- the document ---------------------------------------------------------- */

static void test_doc_good(void **state)
{
	const char *text =
	    "{\"clusters\": {"
	    " \"web\": {\"version\": 7, \"backends\": [\"10.0.5.2:8080\","
	    "   {\"address\": \"10.0.5.3:8080\", \"weight\": 100, \"drain\": false}]},"
	    " \"api-v2.eu_1\": {\"version\": 9007199254740992, \"backends\": []}}}";
	struct upull_doc d;
	char err[256] = "";

	(void)state;
	assert_int_equal(upull_doc_parse(text, strlen(text), &d, err, sizeof(err)), 0);
	assert_int_equal(d.n, 2);
	assert_string_equal(d.c[0].name, "web");
	assert_int_equal(d.c[0].version, 7);
	assert_int_equal(json_array_size(json_object_get(d.c[0].set, "backends")), 2);
	assert_string_equal(d.c[1].name, "api-v2.eu_1");
	assert_true(d.c[1].version == UPULL_MAX_VERSION);
	upull_doc_free(&d);

	/* No clusters at all is a document too: nothing to manage. */
	assert_int_equal(upull_doc_parse("{\"clusters\": {}}", 16, &d, err, sizeof(err)), 0);
	assert_int_equal(d.n, 0);
	upull_doc_free(&d);
}

struct bad_doc {
	const char *text;
	int rc;
	const char *msg; /* must appear in the error */
};

static void test_doc_bad(void **state)
{
	static const struct bad_doc bad[] = {
	    {"", -EBADMSG, "not JSON"},
	    {"{\"clusters\": {", -EBADMSG, "not JSON"},
	    {"<html>502 Bad Gateway</html>", -EBADMSG, "not JSON"},
	    {"{\"clusters\": {}} trailing", -EBADMSG, "not JSON"},
	    {"[1, 2]", -EINVAL, "expected an object {\"clusters\""},
	    {"\"clusters\"", -EINVAL, "expected an object"},
	    {"{}", -EINVAL, "clusters: required"},
	    {"{\"clusters\": []}", -EINVAL, "clusters: expected an object"},
	    {"{\"clusters\": {}, \"version\": 1}", -EINVAL, "unknown field \"version\""},
	    {"{\"clusters\": {\"web\": []}}", -EINVAL, "clusters.web: expected an object"},
	    {"{\"clusters\": {\"web\": {\"backends\": []}}}", -EINVAL,
	     "clusters.web.version: required"},
	    {"{\"clusters\": {\"web\": {\"version\": \"3\", \"backends\": []}}}", -EINVAL,
	     "clusters.web.version: expected an integer from 1 to 2^53"},
	    {"{\"clusters\": {\"web\": {\"version\": -1, \"backends\": []}}}", -EINVAL,
	     "clusters.web.version: expected an integer"},
	    {"{\"clusters\": {\"web\": {\"version\": 0, \"backends\": []}}}", -EINVAL,
	     "clusters.web.version: expected an integer"},
	    {"{\"clusters\": {\"web\": {\"version\": 1.5, \"backends\": []}}}", -EINVAL,
	     "clusters.web.version: expected an integer"},
	    {"{\"clusters\": {\"web\": {\"version\": 9007199254740993, \"backends\": []}}}",
	     -EINVAL, "clusters.web.version: expected an integer from 1 to 2^53"},
	    {"{\"clusters\": {\"web\": {\"version\": 99999999999999999999999, \"backends\": []}}}",
	     -EBADMSG, "too big"},
	    {"{\"clusters\": {\"web\": {\"version\": 1}}}", -EINVAL,
	     "clusters.web.backends: required"},
	    {"{\"clusters\": {\"web\": {\"version\": 1, \"backends\": {}}}}", -EINVAL,
	     "clusters.web.backends: expected an array"},
	    {"{\"clusters\": {\"web\": {\"version\": 1, \"backends\": \"10.0.0.1:80\"}}}", -EINVAL,
	     "clusters.web.backends: expected an array"},
	    {"{\"clusters\": {\"web\": {\"version\": 1, \"backends\": [\"10.0.0.1:80\", 7]}}}",
	     -EINVAL, "clusters.web.backends[1]: expected an object or \"ADDR:PORT\""},
	    {"{\"clusters\": {\"web\": {\"version\": 1, \"backends\": [null]}}}", -EINVAL,
	     "clusters.web.backends[0]"},
	    {"{\"clusters\": {\"web\": {\"version\": 1, \"backends\": [], \"weight\": 3}}}",
	     -EINVAL, "clusters.web: unknown field \"weight\""},
	    {"{\"clusters\": {\"web\": {\"version\": 1, \"backends\": []},"
	     " \"web\": {\"version\": 2, \"backends\": []}}}",
	     -EINVAL, "duplicate"},
	    {"{\"clusters\": {\"web\": {\"version\": 1, \"version\": 2, \"backends\": []}}}",
	     -EINVAL, "duplicate"},
	    {"{\"clusters\": {\"we b\": {\"version\": 1, \"backends\": []}}}", -EINVAL,
	     "clusters: \"we b\": a cluster name"},
	    {"{\"clusters\": {\"\": {\"version\": 1, \"backends\": []}}}", -EINVAL,
	     "a cluster name"},
	    {"{\"clusters\": {\"a/../b\": {\"version\": 1, \"backends\": []}}}", -EINVAL,
	     "a cluster name"},
	    {"{\"clusters\": {\"0123456789012345678901234567890123456789012345678901234567890123\":"
	     " {\"version\": 1, \"backends\": []}}}",
	     -EINVAL, "a cluster name"},
	};
	struct upull_doc d;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc;

		err[0] = '\0';
		rc = upull_doc_parse(bad[i].text, strlen(bad[i].text), &d, err, sizeof(err));
		if (rc != bad[i].rc || !strstr(err, bad[i].msg))
			fail_msg("%s: got %d \"%s\", want %d naming \"%s\"", bad[i].text, rc, err,
				 bad[i].rc, bad[i].msg);
		assert_null(d.root);
		assert_null(d.c);
	}
}

/* Limits: one over is refused, naming the limit. */
static void test_doc_limits(void **state)
{
	size_t cap = 64 * (UPULL_MAX_BACKENDS + UPULL_MAX_CLUSTERS + 16);
	char *t = malloc(cap), err[256];
	struct upull_doc d;
	size_t n = 0;

	(void)state;
	assert_non_null(t);
	n += (size_t)snprintf(t + n, cap - n,
			      "{\"clusters\": {\"web\": {\"version\": 1, \"backends\": [");
	for (int i = 0; i <= UPULL_MAX_BACKENDS; i++)
		n += (size_t)snprintf(t + n, cap - n, "%s\"10.0.%d.%d:80\"", i ? "," : "", i / 250,
				      i % 250);
	n += (size_t)snprintf(t + n, cap - n, "]}}}");
	assert_int_equal(upull_doc_parse(t, n, &d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "clusters.web.backends: 4097 entries, at most 4096"));

	n = (size_t)snprintf(t, cap, "{\"clusters\": {");
	for (int i = 0; i <= UPULL_MAX_CLUSTERS; i++)
		n += (size_t)snprintf(t + n, cap - n,
				      "%s\"c%d\": {\"version\": 1, \"backends\": []}", i ? "," : "",
				      i);
	n += (size_t)snprintf(t + n, cap - n, "}}");
	assert_int_equal(upull_doc_parse(t, n, &d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "clusters: 1025 clusters, at most 1024"));
	free(t);
}

static void test_status_and_etag(void **state)
{
	(void)state;
	assert_int_equal(upull_status_reason(200, false), UPULL_OK);
	assert_int_equal(upull_status_reason(200, true), UPULL_OK);
	assert_int_equal(upull_status_reason(304, true), UPULL_NOT_MODIFIED);
	/* A 304 to a request that was not conditional answers nothing. */
	assert_int_equal(upull_status_reason(304, false), UPULL_E_STATUS);
	assert_int_equal(upull_status_reason(301, true), UPULL_E_REDIRECT);
	assert_int_equal(upull_status_reason(302, false), UPULL_E_REDIRECT);
	assert_int_equal(upull_status_reason(307, false), UPULL_E_REDIRECT);
	assert_int_equal(upull_status_reason(308, false), UPULL_E_REDIRECT);
	assert_int_equal(upull_status_reason(204, false), UPULL_E_STATUS);
	assert_int_equal(upull_status_reason(404, false), UPULL_E_STATUS);
	assert_int_equal(upull_status_reason(503, true), UPULL_E_STATUS);

	assert_true(upull_etag_usable("\"v7\""));
	assert_true(upull_etag_usable("W/\"5f2a-9c\""));
	assert_true(upull_etag_usable("\"\""));
	assert_false(upull_etag_usable(""));
	assert_false(upull_etag_usable("v7"));	     /* not quoted */
	assert_false(upull_etag_usable("W/v7"));     /* not quoted */
	assert_false(upull_etag_usable("\"v7"));     /* unterminated */
	assert_false(upull_etag_usable("\""));	     /* one quote */
	assert_false(upull_etag_usable("\"a b\""));  /* a space */
	assert_false(upull_etag_usable("\"a\"b\"")); /* a quote inside */
	assert_false(upull_etag_usable("\"a\x7f\""));
	assert_false(upull_etag_usable("\"a\tb\""));
	{
		char longtag[HTTPC_ETAG_MAX + 2];

		memset(longtag, 'x', sizeof(longtag));
		longtag[0] = '"';
		longtag[sizeof(longtag) - 2] = '"';
		longtag[sizeof(longtag) - 1] = '\0';
		assert_false(upull_etag_usable(longtag));
		longtag[HTTPC_ETAG_MAX - 2] = '"';
		longtag[HTTPC_ETAG_MAX - 1] = '\0';
		assert_true(upull_etag_usable(longtag));
	}

	/* Every reason has its own name for the API. */
	for (int a = 0; a < UPULL_REASON_MAX; a++)
		for (int b = a + 1; b < UPULL_REASON_MAX; b++)
			assert_string_not_equal(upull_reason_name(a), upull_reason_name(b));
	assert_string_equal(upull_reason_name(UPULL_E_TIMEOUT), "timeout");
	assert_string_equal(upull_reason_name(UPULL_REASON_MAX), "?");
}

/* --- the config group ---------------------------------------------------------- */

static int parse_l7(const char *group, struct lbd_config *c, char **err)
{
	char text[2048];

	snprintf(text, sizeof(text), "role = \"l7\";\ninterface = \"eth0\";\n%s\n", group);
	return lbd_config_parse(text, "l7.conf", c, err);
}

static void test_config_good(void **state)
{
	struct lbd_config c;
	char *err = NULL;

	(void)state;
	assert_int_equal(
	    parse_l7("upstreams = { url = \"http://10.0.5.2:9000/upstreams.json\"; };", &c, &err),
	    0);
	assert_true(c.upstreams.enabled);
	assert_false(c.upstreams.https);
	assert_string_equal(c.upstreams.host, "10.0.5.2");
	assert_int_equal(c.upstreams.port, 9000);
	assert_string_equal(c.upstreams.target, "/upstreams.json");
	assert_int_equal(c.upstreams.interval_ms, 5000);
	assert_int_equal(c.upstreams.timeout_ms, 2000);
	assert_string_equal(c.upstreams.proxy_socket, "/run/portico/l7proxy.sock");
	assert_string_equal(c.upstreams.ca_file, "");
	lbd_config_free(&c);

	assert_int_equal(
	    parse_l7("upstreams = { url = \"https://[2001:db8::5]/v1/sets?pop=fra1#x\";\n"
		     "  interval_ms = 1000; timeout_ms = 1000;\n"
		     "  proxy_socket = \"/tmp/p.sock\"; ca_file = \"/etc/ca.pem\"; };",
		     &c, &err),
	    0);
	assert_true(c.upstreams.https);
	assert_string_equal(c.upstreams.host, "2001:db8::5");
	assert_int_equal(c.upstreams.port, 443);
	assert_string_equal(c.upstreams.target, "/v1/sets?pop=fra1");
	assert_int_equal(c.upstreams.interval_ms, 1000);
	assert_string_equal(c.upstreams.ca_file, "/etc/ca.pem");
	lbd_config_free(&c);

	assert_int_equal(parse_l7("upstreams = { url = \"http://ums.example\"; };", &c, &err), 0);
	assert_string_equal(c.upstreams.host, "ums.example");
	assert_int_equal(c.upstreams.port, 80);
	assert_string_equal(c.upstreams.target, "/");
	lbd_config_free(&c);

	/* Absent: not pulling. */
	assert_int_equal(parse_l7("", &c, &err), 0);
	assert_false(c.upstreams.enabled);
	lbd_config_free(&c);
}

static void test_config_bad(void **state)
{
	static const struct {
		const char *group, *msg;
	} bad[] = {
	    {"upstreams = { };", "l7.conf:3: missing setting \"url\""},
	    {"upstreams = \"http://x/\";", "l7.conf:3: \"upstreams\" must be a group"},
	    {"upstreams = { url = \"ftp://x/a\"; };",
	     "l7.conf:3: upstreams: url \"ftp://x/a\": the "
	     "scheme must be http or https"},
	    {"upstreams = { url = \"x/a\"; };", "l7.conf:3: upstreams: url \"x/a\": expected"},
	    {"upstreams = { url = \"http://u:p@x/a\"; };", "credentials in the URL"},
	    {"upstreams = { url = \"http://x:0/a\"; };", "port 0"},
	    {"upstreams = { url = \"http://x/a b\"; };", "expected http://"},
	    {"upstreams = { url = \"http://x/\";\n interval_ms = 50; };",
	     "l7.conf:4: \"interval_ms\" = 50 is out of range"},
	    {"upstreams = { url = \"http://x/\";\n interval_ms = 99999999; };", "l7.conf:4:"},
	    {"upstreams = { url = \"http://x/\";\n timeout_ms = 10; };",
	     "l7.conf:4: \"timeout_ms\" = 10 is out of range"},
	    {"upstreams = { url = \"http://x/\"; interval_ms = 1000;\n timeout_ms = 2000; };",
	     "l7.conf:4: upstreams: timeout_ms 2000 is longer than interval_ms 1000"},
	    {"upstreams = { url = \"http://x/\";\n ca_file = \"/ca.pem\"; };",
	     "l7.conf:4: upstreams: ca_file is for an https url"},
	    {"upstreams = { url = \"http://x/\";\n proxy_socket = \"\"; };",
	     "l7.conf:4: upstreams: proxy_socket must not be empty"},
	    {"upstreams = { url = \"http://x/\";\n interval = 5000; };", "l7.conf:4:"},
	};
	struct lbd_config c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *err = NULL;

		if (parse_l7(bad[i].group, &c, &err) != -EINVAL || !err || !strstr(err, bad[i].msg))
			fail_msg("%s: got \"%s\", want \"%s\"", bad[i].group, err ? err : "(none)",
				 bad[i].msg);
		free(err);
	}
	{
		char *err = NULL;

		assert_int_equal(lbd_config_parse("role = \"l4lb\"; interface = \"eth0\";\n"
						  "upstreams = { url = \"http://x/\"; };\n",
						  "l4.conf", &c, &err),
				 -EINVAL);
		assert_non_null(strstr(err, "l4.conf:2: \"upstreams\" is for role \"l7\""));
		free(err);
	}
}

/* --- the HTTP client against a scripted server ------------------------------ */

enum srv_mode { SRV_REPLY, SRV_HANG };

struct srv {
	int lfd;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	enum srv_mode mode;
	const char *reply; /* sent whole once the request head is in, then close */
	char req[4096];	   /* the request head as received */
	pthread_t th;
};

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	size_t n = 0;
	int fd = accept(s->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	while (n < sizeof(s->req) - 1 && !strstr(s->req, "\r\n\r\n")) {
		ssize_t r = recv(fd, s->req + n, sizeof(s->req) - 1 - n, 0);

		if (r <= 0)
			break;
		n += (size_t)r;
		s->req[n] = '\0';
	}
	if (s->mode == SRV_REPLY) {
		size_t len = strlen(s->reply), off = 0;

		while (off < len) {
			ssize_t w = send(fd, s->reply + off, len - off, MSG_NOSIGNAL);

			if (w <= 0)
				break;
			off += (size_t)w;
		}
	} else {
		char b[256];

		while (recv(fd, b, sizeof(b), 0) > 0) /* until the client gives up */
			;
	}
	close(fd);
	return NULL;
}

static void srv_start_tcp(struct srv *s, enum srv_mode mode, const char *reply)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&s->addr;
	int one = 1;

	memset(s, 0, sizeof(*s));
	s->mode = mode;
	s->reply = reply;
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->addr_len = sizeof(*in);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)in, s->addr_len), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)in, &s->addr_len), 0);
	assert_int_equal(listen(s->lfd, 4), 0);
	assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void srv_stop(struct srv *s)
{
	pthread_join(s->th, NULL);
	close(s->lfd);
}

struct outcome {
	bool done;
	struct httpc_result r;
	char body[1024];
};

static void on_done(void *ctx, const struct httpc_result *r)
{
	struct outcome *o = ctx;

	o->done = true;
	o->r = *r;
	snprintf(o->body, sizeof(o->body), "%.*s", (int)r->body_len, r->body);
	o->r.body = NULL;
}

/* One exchange to s with head, run in a fresh loop until it reports. */
static void exchange(const struct sockaddr *addr, socklen_t len, const char *head, size_t max_body,
		     uint32_t timeout_ms, struct outcome *o)
{
	struct httpc_req req = {.addr = addr,
				.addr_len = len,
				.head = head,
				.max_body = max_body,
				.timeout_ms = timeout_ms};
	struct loop l;
	uint64_t t0;

	memset(o, 0, sizeof(*o));
	assert_int_equal(loop_init(&l), 0);
	t0 = loop_clock_ms();
	assert_non_null(httpc_start(&l, &req, on_done, o));
	assert_false(o->done); /* never reported from inside httpc_start */
	while (!o->done && loop_clock_ms() - t0 < 5000)
		loop_run_once(&l, 100);
	loop_run_once(&l, 0); /* the deferred frees */
	loop_fini(&l);
	assert_true(o->done);
}

static const char *GET = "GET /u.json HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"v1\"\r\n"
			 "Connection: close\r\n\r\n";

static void run(enum srv_mode mode, const char *reply, size_t max_body, uint32_t timeout_ms,
		struct outcome *o, struct srv *s)
{
	srv_start_tcp(s, mode, reply);
	exchange((struct sockaddr *)&s->addr, s->addr_len, GET, max_body, timeout_ms, o);
	srv_stop(s);
}

static void test_client_ok(void **state)
{
	struct outcome o;
	struct srv s;

	(void)state;
	run(SRV_REPLY,
	    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nEtag: \"v2\"\r\n"
	    "Content-Length: 14\r\n\r\n{\"clusters\":1}",
	    4096, 2000, &o, &s);
	assert_int_equal(o.r.err, 0);
	assert_int_equal(o.r.status, 200);
	assert_true(o.r.etag_seen);
	assert_string_equal(o.r.etag, "\"v2\"");
	assert_string_equal(o.body, "{\"clusters\":1}");
	assert_non_null(strstr(s.req, "If-None-Match: \"v1\"\r\n"));

	run(SRV_REPLY, "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n", 4096, 2000, &o, &s);
	assert_int_equal(o.r.err, 0);
	assert_int_equal(o.r.status, 304);
	assert_int_equal(o.r.body_len, 0);

	/* Chunked, an interim 100 first, and no ETag. */
	run(SRV_REPLY,
	    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
	    4096, 2000, &o, &s);
	assert_int_equal(o.r.err, 0);
	assert_int_equal(o.r.status, 200);
	assert_false(o.r.etag_seen);
	assert_string_equal(o.body, "hello world");

	/* A body that runs to the close. */
	run(SRV_REPLY, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", 4096, 2000, &o,
	    &s);
	assert_int_equal(o.r.err, 0);
	assert_string_equal(o.body, "until the end");

	/* Redirects are answers like any other: not followed. */
	run(SRV_REPLY,
	    "HTTP/1.1 302 Found\r\nLocation: http://elsewhere/\r\nContent-Length: 0\r\n\r\n", 4096,
	    2000, &o, &s);
	assert_int_equal(o.r.err, 0);
	assert_int_equal(o.r.status, 302);
}

static void test_client_etag_too_long(void **state)
{
	char reply[1024];
	struct outcome o;
	struct srv s;

	(void)state;
	snprintf(reply, sizeof(reply),
		 "HTTP/1.1 200 OK\r\nETag: \"%0300d\"\r\nContent-Length: 2\r\n\r\n{}", 0);
	run(SRV_REPLY, reply, 4096, 2000, &o, &s);
	assert_int_equal(o.r.err, 0);
	assert_false(o.r.etag_seen); /* not kept, not truncated */
}

static void test_client_limits(void **state)
{
	struct outcome o;
	struct srv s;

	(void)state;
	/* Declared too long: refused before reading it. */
	run(SRV_REPLY, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", 10, 2000, &o,
	    &s);
	assert_int_equal(o.r.err, -EMSGSIZE);
	/* Not declared: cut at the cap. */
	run(SRV_REPLY,
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
	    "chunked\r\n\r\n8\r\n01234567\r\n8\r\n01234567\r\n"
	    "0\r\n\r\n",
	    10, 2000, &o, &s);
	assert_int_equal(o.r.err, -EMSGSIZE);
	assert_non_null(strstr(o.r.msg, "over 10 bytes"));

	run(SRV_REPLY, "SSH-2.0-OpenSSH_9.2\r\n\r\n", 4096, 2000, &o, &s);
	assert_int_equal(o.r.err, -EBADMSG);
	assert_int_equal(o.r.phase, HTTPC_TALK);

	/* Closed before the whole body. */
	run(SRV_REPLY, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", 4096, 2000, &o, &s);
	assert_int_equal(o.r.err, -ECONNRESET);
}

static void test_client_timeout(void **state)
{
	struct outcome o;
	struct srv s;
	uint64_t t0 = loop_clock_ms(), took;

	(void)state;
	run(SRV_HANG, NULL, 4096, 300, &o, &s);
	took = loop_clock_ms() - t0;
	assert_int_equal(o.r.err, -ETIMEDOUT);
	assert_int_equal(o.r.phase, HTTPC_TALK);
	assert_non_null(strstr(o.r.msg, "timeout after 300 ms waiting for the response"));
	assert_true(took >= 290 && took < 2000);
}

static void test_client_refused(void **state)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	socklen_t len = sizeof(in);
	struct outcome o;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	/* A port that was just free: nobody listens there. */
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&in, &len), 0);
	close(fd);
	exchange((struct sockaddr *)&in, sizeof(in), GET, 4096, 2000, &o);
	assert_int_equal(o.r.err, -ECONNREFUSED);
	assert_int_equal(o.r.phase, HTTPC_CONNECT);
	assert_non_null(strstr(o.r.msg, "connect: "));
}

static void test_client_unix(void **state)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct outcome o;
	struct srv s;
	char dir[] = "/tmp/upull-test.XXXXXX";

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/s.sock", dir);
	memset(&s, 0, sizeof(s));
	s.mode = SRV_REPLY;
	s.reply =
	    "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: 19\r\n"
	    "\r\n{\"error\": \"stale\"}\n";
	s.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(s.lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(s.lfd, 4), 0);
	assert_int_equal(pthread_create(&s.th, NULL, srv_main, &s), 0);
	exchange((struct sockaddr *)&sun, sizeof(sun),
		 "PUT /v1/clusters/web/backends HTTP/1.1\r\n\r\n", 4096, 2000, &o);
	srv_stop(&s);
	unlink(sun.sun_path);
	rmdir(dir);
	assert_int_equal(o.r.err, 0);
	assert_int_equal(o.r.status, 409);
	assert_string_equal(o.body, "{\"error\": \"stale\"}\n");
}

static void never(void *ctx, const struct httpc_result *r)
{
	(void)ctx;
	(void)r;
	fail_msg("a cancelled exchange reported");
}

static void test_client_cancel(void **state)
{
	struct httpc_req req = {.head = GET, .max_body = 4096, .timeout_ms = 200};
	struct loop l;
	struct httpc *c;
	struct srv s;

	(void)state;
	srv_start_tcp(&s, SRV_HANG, NULL);
	req.addr = (struct sockaddr *)&s.addr;
	req.addr_len = s.addr_len;
	assert_int_equal(loop_init(&l), 0);
	c = httpc_start(&l, &req, never, NULL);
	assert_non_null(c);
	loop_run_once(&l, 50);
	httpc_cancel(c); /* closes the socket: the server thread ends */
	for (int i = 0; i < 4; i++)
		loop_run_once(&l, 100); /* past the deadline: nothing fires */
	loop_fini(&l);
	srv_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_doc_good),	   cmocka_unit_test(test_doc_bad),
	    cmocka_unit_test(test_doc_limits),	   cmocka_unit_test(test_status_and_etag),
	    cmocka_unit_test(test_config_good),	   cmocka_unit_test(test_config_bad),
	    cmocka_unit_test(test_client_ok),	   cmocka_unit_test(test_client_etag_too_long),
	    cmocka_unit_test(test_client_limits),  cmocka_unit_test(test_client_timeout),
	    cmocka_unit_test(test_client_refused), cmocka_unit_test(test_client_unix),
	    cmocka_unit_test(test_client_cancel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
