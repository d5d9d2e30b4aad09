// SPDX-License-Identifier: GPL-2.0-only
/*
 * The BGP FSM table against RFC 4271 §8.2.2 (and RFC 6608's FSM error
 * subcodes): the transitions a session lives on, then invariants over
 * every (state, event) pair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fsm.h"
#include "msg.h"

static struct bgp_fsm_out step(enum bgp_state s, enum bgp_event ev, bool passive)
{
	struct bgp_fsm_out o;

	bgp_fsm_step(s, ev, passive, &o);
	return o;
}

#define HAS(o, a) (((o).actions & (a)) == (a))

static void test_idle(void **st)
{
	struct bgp_fsm_out o;

	(void)st;
	o = step(BGP_IDLE, BGP_EV_START, false);
	assert_int_equal(o.next, BGP_CONNECT);
	assert_true(HAS(o, BGP_ACT_CONNECT | BGP_ACT_CONNECT_RETRY));
	/* Passive: wait in Active, never connect. */
	o = step(BGP_IDLE, BGP_EV_START, true);
	assert_int_equal(o.next, BGP_ACTIVE);
	assert_false(o.actions & BGP_ACT_CONNECT);
	/* Everything else is ignored in Idle. */
	for (int ev = 0; ev < BGP_EV_COUNT; ev++) {
		if (ev == BGP_EV_START)
			continue;
		o = step(BGP_IDLE, ev, false);
		assert_int_equal(o.next, BGP_IDLE);
		assert_int_equal(o.actions, 0);
	}
}

static void test_connect_and_active(void **st)
{
	struct bgp_fsm_out o;

	(void)st;
	o = step(BGP_CONNECT, BGP_EV_TCP_CONNECTED, false);
	assert_int_equal(o.next, BGP_OPENSENT);
	assert_true(HAS(o, BGP_ACT_SEND_OPEN | BGP_ACT_HOLD_LARGE | BGP_ACT_STOP_CONNECT_RETRY));
	o = step(BGP_CONNECT, BGP_EV_TCP_FAILS, false);
	assert_int_equal(o.next, BGP_ACTIVE);
	assert_true(HAS(o, BGP_ACT_CLOSE | BGP_ACT_CONNECT_RETRY));
	o = step(BGP_CONNECT, BGP_EV_CONNECT_RETRY_EXPIRES, false);
	assert_int_equal(o.next, BGP_CONNECT);
	assert_true(HAS(o, BGP_ACT_CLOSE | BGP_ACT_CONNECT | BGP_ACT_CONNECT_RETRY));
	/* Active: the retry timer connects again, unless passive. */
	o = step(BGP_ACTIVE, BGP_EV_CONNECT_RETRY_EXPIRES, false);
	assert_int_equal(o.next, BGP_CONNECT);
	assert_true(HAS(o, BGP_ACT_CONNECT));
	o = step(BGP_ACTIVE, BGP_EV_CONNECT_RETRY_EXPIRES, true);
	assert_int_equal(o.next, BGP_ACTIVE);
	assert_false(o.actions & BGP_ACT_CONNECT);
	o = step(BGP_ACTIVE, BGP_EV_TCP_CONNECTED, true);
	assert_int_equal(o.next, BGP_OPENSENT);
	assert_true(HAS(o, BGP_ACT_SEND_OPEN));
	/* §8.2.2 Active: TcpConnectionFails -> Idle (and we restart later). */
	o = step(BGP_ACTIVE, BGP_EV_TCP_FAILS, false);
	assert_int_equal(o.next, BGP_IDLE);
	assert_true(HAS(o, BGP_ACT_IDLE_HOLD));
	/* No session yet: a stop tells nobody. */
	o = step(BGP_CONNECT, BGP_EV_STOP, false);
	assert_int_equal(o.next, BGP_IDLE);
	assert_false(o.actions & (BGP_ACT_SEND_NOTIFICATION | BGP_ACT_IDLE_HOLD));
}

static void test_opensent(void **st)
{
	struct bgp_fsm_out o;

	(void)st;
	o = step(BGP_OPENSENT, BGP_EV_OPEN, false);
	assert_int_equal(o.next, BGP_OPENCONFIRM);
	assert_true(HAS(o, BGP_ACT_SEND_KEEPALIVE | BGP_ACT_HOLD_NEGOTIATED));
	o = step(BGP_OPENSENT, BGP_EV_HOLD_EXPIRES, false);
	assert_int_equal(o.next, BGP_IDLE);
	assert_true(HAS(o, BGP_ACT_SEND_NOTIFICATION | BGP_ACT_CLOSE));
	assert_int_equal(o.code, BGP_ERR_HOLD_TIMER);
	o = step(BGP_OPENSENT, BGP_EV_TCP_FAILS, false);
	assert_int_equal(o.next, BGP_ACTIVE);
	assert_true(HAS(o, BGP_ACT_CLOSE | BGP_ACT_CONNECT_RETRY));
	/* A bad OPEN or header: the message's own NOTIFICATION (code 0). */
	o = step(BGP_OPENSENT, BGP_EV_BAD_MSG, false);
	assert_int_equal(o.next, BGP_IDLE);
	assert_true(HAS(o, BGP_ACT_SEND_NOTIFICATION));
	assert_int_equal(o.code, 0);
	/* A KEEPALIVE before the OPEN: FSM error, RFC 6608 subcode 1. */
	o = step(BGP_OPENSENT, BGP_EV_KEEPALIVE, false);
	assert_int_equal(o.next, BGP_IDLE);
	assert_int_equal(o.code, BGP_ERR_FSM);
	assert_int_equal(o.subcode, BGP_FSM_UNEXPECTED_IN_OPENSENT);
	o = step(BGP_OPENSENT, BGP_EV_NOTIFICATION, false);
	assert_int_equal(o.next, BGP_IDLE);
	assert_false(o.actions & BGP_ACT_SEND_NOTIFICATION); /* §6.4: never answer one */
	o = step(BGP_OPENSENT, BGP_EV_STOP, false);
	assert_int_equal(o.code, BGP_ERR_CEASE);
	assert_int_equal(o.subcode, BGP_CEASE_ADMIN_SHUTDOWN);
}

static void test_openconfirm(void **st)
{
	struct bgp_fsm_out o;

	(void)st;
	o = step(BGP_OPENCONFIRM, BGP_EV_KEEPALIVE, false);
	assert_int_equal(o.next, BGP_ESTABLISHED);
	assert_true(HAS(o, BGP_ACT_ESTABLISHED | BGP_ACT_RESTART_HOLD));
	o = step(BGP_OPENCONFIRM, BGP_EV_KEEPALIVE_EXPIRES, false);
	assert_int_equal(o.next, BGP_OPENCONFIRM);
	assert_true(HAS(o, BGP_ACT_SEND_KEEPALIVE | BGP_ACT_RESTART_KEEPALIVE));
	o = step(BGP_OPENCONFIRM, BGP_EV_UPDATE, false);
	assert_int_equal(o.next, BGP_IDLE);
	assert_int_equal(o.code, BGP_ERR_FSM);
	assert_int_equal(o.subcode, BGP_FSM_UNEXPECTED_IN_OPENCONFIRM);
	o = step(BGP_OPENCONFIRM, BGP_EV_HOLD_EXPIRES, false);
	assert_int_equal(o.code, BGP_ERR_HOLD_TIMER);
}

static void test_established(void **st)
{
	struct bgp_fsm_out o;

	(void)st;
	o = step(BGP_ESTABLISHED, BGP_EV_UPDATE, false);
	assert_int_equal(o.next, BGP_ESTABLISHED);
	assert_int_equal(o.actions, BGP_ACT_RESTART_HOLD);
	o = step(BGP_ESTABLISHED, BGP_EV_KEEPALIVE, false);
	assert_int_equal(o.actions, BGP_ACT_RESTART_HOLD);
	o = step(BGP_ESTABLISHED, BGP_EV_ROUTE_REFRESH, false);
	assert_true(HAS(o, BGP_ACT_REFRESH | BGP_ACT_RESTART_HOLD));
	o = step(BGP_ESTABLISHED, BGP_EV_KEEPALIVE_EXPIRES, false);
	assert_true(HAS(o, BGP_ACT_SEND_KEEPALIVE | BGP_ACT_RESTART_KEEPALIVE));
	o = step(BGP_ESTABLISHED, BGP_EV_OPEN, false);
	assert_int_equal(o.next, BGP_IDLE);
	assert_int_equal(o.code, BGP_ERR_FSM);
	assert_int_equal(o.subcode, BGP_FSM_UNEXPECTED_IN_ESTABLISHED);
	o = step(BGP_ESTABLISHED, BGP_EV_BAD_UPDATE, false);
	assert_int_equal(o.next, BGP_IDLE);
	assert_true(HAS(o, BGP_ACT_SEND_NOTIFICATION | BGP_ACT_IDLE_HOLD));
	assert_int_equal(o.code, 0);
	/* Shutdown: Cease, and no automatic restart. */
	o = step(BGP_ESTABLISHED, BGP_EV_STOP, false);
	assert_int_equal(o.next, BGP_IDLE);
	assert_int_equal(o.code, BGP_ERR_CEASE);
	assert_false(o.actions & BGP_ACT_IDLE_HOLD);
	/* Restart: close without a word (graceful restart keeps routes). */
	o = step(BGP_ESTABLISHED, BGP_EV_STOP_QUIET, false);
	assert_int_equal(o.next, BGP_IDLE);
	assert_true(HAS(o, BGP_ACT_CLOSE));
	assert_false(o.actions & (BGP_ACT_SEND_NOTIFICATION | BGP_ACT_IDLE_HOLD));
	o = step(BGP_ESTABLISHED, BGP_EV_TCP_FAILS, false);
	assert_int_equal(o.next, BGP_IDLE);
	assert_true(HAS(o, BGP_ACT_IDLE_HOLD));
}

/* Over every pair: what must always hold. */
static void test_invariants(void **st)
{
	(void)st;
	for (int s = BGP_IDLE; s <= BGP_ESTABLISHED; s++)
		for (int ev = 0; ev < BGP_EV_COUNT; ev++)
			for (int passive = 0; passive < 2; passive++) {
				struct bgp_fsm_out o = step(s, ev, passive);

				assert_true(o.next >= BGP_IDLE && o.next <= BGP_ESTABLISHED);
				/* Only a session that sent its OPEN tells the peer. */
				if (s < BGP_OPENSENT)
					assert_false(o.actions & BGP_ACT_SEND_NOTIFICATION);
				/* Falling to Idle always drops the connection. */
				if (s != BGP_IDLE && o.next == BGP_IDLE)
					assert_true(o.actions & BGP_ACT_CLOSE);
				/* A NOTIFICATION is never answered (§6.4). */
				if (ev == BGP_EV_NOTIFICATION)
					assert_false(o.actions & BGP_ACT_SEND_NOTIFICATION);
				/* Established only from OpenConfirm on a KEEPALIVE. */
				if (o.next == BGP_ESTABLISHED && s != BGP_ESTABLISHED)
					assert_true(s == BGP_OPENCONFIRM && ev == BGP_EV_KEEPALIVE);
				/* Passive sessions never connect. */
				if (passive)
					assert_false(o.actions & BGP_ACT_CONNECT);
				/* The stops never schedule a restart. */
				if (ev == BGP_EV_STOP || ev == BGP_EV_STOP_QUIET)
					assert_false(o.actions & BGP_ACT_IDLE_HOLD);
			}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_idle),	cmocka_unit_test(test_connect_and_active),
	    cmocka_unit_test(test_opensent),	cmocka_unit_test(test_openconfirm),
	    cmocka_unit_test(test_established), cmocka_unit_test(test_invariants),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
