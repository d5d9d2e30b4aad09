/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * fsm.h - the BGP finite state machine of RFC 4271 §8, as a pure function:
 * (state, event) -> (next state, actions). The session code (speaker.c)
 * turns events of sockets and timers into calls and carries the actions
 * out; keeping the table apart lets the tests walk every transition.
 *
 * Simplifications, all allowed by §8.1's optional session attributes: no
 * DelayOpen, no peer oscillation damping inside the FSM (the session backs
 * off its automatic restarts instead), AllowAutomaticStart on (a session
 * that falls to Idle restarts after the session's idle hold time).
 * Collisions (§6.8) are resolved by the session before it feeds an OPEN.
 */
#ifndef PORTICO_BGP_FSM_H
#define PORTICO_BGP_FSM_H

#include <stdbool.h>
#include <stdint.h>

/* NOTIFICATION subcodes the session sends (RFC 4486 for Cease, RFC 6608
 * for the FSM error). */
enum {
	BGP_CEASE_ADMIN_SHUTDOWN = 2,
	BGP_CEASE_PEER_DECONFIGURED = 3,
	BGP_CEASE_ADMIN_RESET = 4,
	BGP_CEASE_CONNECTION_REJECTED = 5,
	BGP_CEASE_OTHER_CONFIG_CHANGE = 6,
	BGP_CEASE_COLLISION = 7,
	BGP_CEASE_OUT_OF_RESOURCES = 8,
	BGP_FSM_UNEXPECTED_IN_OPENSENT = 1,
	BGP_FSM_UNEXPECTED_IN_OPENCONFIRM = 2,
	BGP_FSM_UNEXPECTED_IN_ESTABLISHED = 3,
	BGP_OPEN_BAD_PEER_AS = 2,
	BGP_OPEN_BAD_BGP_ID = 3,
	BGP_OPEN_UNACCEPTABLE_HOLD_TIME = 6,
	BGP_OPEN_UNSUPPORTED_CAPABILITY = 7,
};

enum bgp_state {
	BGP_IDLE = 0,
	BGP_CONNECT,
	BGP_ACTIVE,
	BGP_OPENSENT,
	BGP_OPENCONFIRM,
	BGP_ESTABLISHED,
};

enum bgp_event {
	BGP_EV_START,		      /* ManualStart / AutomaticStart (events 1, 3) */
	BGP_EV_STOP,		      /* ManualStop (event 2): Cease to the peer */
	BGP_EV_STOP_QUIET,	      /* close without a NOTIFICATION (graceful restart) */
	BGP_EV_CONNECT_RETRY_EXPIRES, /* event 9 */
	BGP_EV_HOLD_EXPIRES,	      /* event 10 */
	BGP_EV_KEEPALIVE_EXPIRES,     /* event 11 */
	BGP_EV_TCP_CONNECTED,	      /* events 16/17: our connect done, or one accepted */
	BGP_EV_TCP_FAILS,	      /* event 18: refused, reset or closed */
	BGP_EV_OPEN,		      /* event 19: a valid OPEN */
	BGP_EV_BAD_MSG,		      /* events 21/22: bad header or bad OPEN */
	BGP_EV_NOTIFICATION,	      /* events 24/25 */
	BGP_EV_KEEPALIVE,	      /* event 26 */
	BGP_EV_UPDATE,		      /* event 27: a valid UPDATE */
	BGP_EV_BAD_UPDATE,	      /* event 28 */
	BGP_EV_ROUTE_REFRESH,	      /* RFC 2918: treated like an UPDATE for timers */
	BGP_EV_COUNT,
};

/* What to do, in this order, before entering the next state. */
enum bgp_action {
	BGP_ACT_CLOSE = 1u << 0,   /* drop the TCP connection */
	BGP_ACT_CONNECT = 1u << 1, /* start an outgoing connection */
	BGP_ACT_SEND_OPEN = 1u << 2,
	BGP_ACT_SEND_KEEPALIVE = 1u << 3,
	BGP_ACT_SEND_NOTIFICATION = 1u << 4, /* code/subcode in the output (0: the
					      * error that came with the event) */
	BGP_ACT_CONNECT_RETRY = 1u << 5,     /* (re)start the ConnectRetryTimer */
	BGP_ACT_STOP_CONNECT_RETRY = 1u << 6,
	BGP_ACT_HOLD_LARGE = 1u << 7,	   /* HoldTimer to a large value (4 min, §8) */
	BGP_ACT_HOLD_NEGOTIATED = 1u << 8, /* HoldTimer (and KeepaliveTimer) from the
					     * negotiated hold time */
	BGP_ACT_RESTART_HOLD = 1u << 9,	   /* a message came: restart the HoldTimer */
	BGP_ACT_RESTART_KEEPALIVE = 1u << 10,
	BGP_ACT_ESTABLISHED = 1u << 11, /* announce the routes, End-of-RIB */
	BGP_ACT_REFRESH = 1u << 12,	/* the peer asked for our routes again */
	BGP_ACT_IDLE_HOLD = 1u << 13,	/* fell to Idle on its own: restart later */
	BGP_ACT_STOP_TIMERS = 1u << 14, /* hold and keepalive timers off */
};

struct bgp_fsm_out {
	enum bgp_state next;
	uint32_t actions;
	uint8_t code, subcode; /* of a NOTIFICATION the FSM itself decides */
};

/*
 * One transition. passive: the neighbour is only ever accepted, never
 * connected to (§8.1.1 PassiveTcpEstablishment). Always fills *out.
 */
void bgp_fsm_step(enum bgp_state s, enum bgp_event ev, bool passive, struct bgp_fsm_out *out);

const char *bgp_state_name(enum bgp_state s);
const char *bgp_event_name(enum bgp_event ev);

#endif
