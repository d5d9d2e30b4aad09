// SPDX-License-Identifier: GPL-2.0-only
/*
 * fsm.c - RFC 4271 §8.2.2, state by state. Each case names the events
 * the RFC lists for that state; "any other event" falls to the FSM error
 * handling the RFC gives (a NOTIFICATION with the FSM error code, whose
 * subcodes RFC 6608 defines, and Idle).
 */
#include "fsm.h"
#include "msg.h"

#include <string.h>

const char *bgp_state_name(enum bgp_state s)
{
	static const char *const n[] = {"Idle",	    "Connect",	   "Active",
					"OpenSent", "OpenConfirm", "Established"};

	return (unsigned)s < sizeof(n) / sizeof(n[0]) ? n[s] : "?";
}

const char *bgp_event_name(enum bgp_event ev)
{
	static const char *const n[] = {"Start",
					"Stop",
					"StopQuiet",
					"ConnectRetryTimerExpires",
					"HoldTimerExpires",
					"KeepaliveTimerExpires",
					"TcpConnected",
					"TcpFails",
					"OpenMsg",
					"BadMsg",
					"NotifMsg",
					"KeepAliveMsg",
					"UpdateMsg",
					"UpdateMsgErr",
					"RouteRefreshMsg"};

	return (unsigned)ev < sizeof(n) / sizeof(n[0]) ? n[ev] : "?";
}

/* Into Idle: everything off and, unless an operator stopped the session,
 * an automatic restart later. */
static void to_idle(struct bgp_fsm_out *o, bool automatic)
{
	o->next = BGP_IDLE;
	o->actions |= BGP_ACT_CLOSE | BGP_ACT_STOP_CONNECT_RETRY | BGP_ACT_STOP_TIMERS;
	if (automatic)
		o->actions |= BGP_ACT_IDLE_HOLD;
}

static void notify(struct bgp_fsm_out *o, uint8_t code, uint8_t subcode)
{
	o->actions |= BGP_ACT_SEND_NOTIFICATION;
	o->code = code;
	o->subcode = subcode;
}

/* Stops common to every state but Idle. Returns true if ev was one. */
static bool stop_event(enum bgp_state s, enum bgp_event ev, struct bgp_fsm_out *o)
{
	if (ev == BGP_EV_STOP) {
		/* §8.2.2: in OpenSent, OpenConfirm and Established a ManualStop
		 * sends a Cease; in Connect and Active there is no session to
		 * tell. */
		if (s >= BGP_OPENSENT)
			notify(o, BGP_ERR_CEASE, BGP_CEASE_ADMIN_SHUTDOWN);
		to_idle(o, false);
		return true;
	}
	if (ev == BGP_EV_STOP_QUIET) {
		to_idle(o, false);
		return true;
	}
	return false;
}

void bgp_fsm_step(enum bgp_state s, enum bgp_event ev, bool passive, struct bgp_fsm_out *o)
{
	memset(o, 0, sizeof(*o));
	o->next = s;

	if (s == BGP_IDLE) {
		/* Idle: only a start does anything (§8.2.2 "Idle state"). */
		if (ev != BGP_EV_START)
			return;
		o->actions = BGP_ACT_CONNECT_RETRY;
		if (passive) {
			o->next = BGP_ACTIVE;
		} else {
			o->actions |= BGP_ACT_CONNECT;
			o->next = BGP_CONNECT;
		}
		return;
	}
	if (stop_event(s, ev, o))
		return;

	switch (s) {
	case BGP_CONNECT:
		switch (ev) {
		case BGP_EV_START:
			return; /* ignored */
		case BGP_EV_CONNECT_RETRY_EXPIRES:
			/* Drop the attempt, try again (a passive session has
			 * none: it waits in Active). */
			o->actions = BGP_ACT_CLOSE | BGP_ACT_CONNECT_RETRY;
			if (passive)
				o->next = BGP_ACTIVE;
			else
				o->actions |= BGP_ACT_CONNECT;
			return;
		case BGP_EV_TCP_CONNECTED:
			o->actions =
			    BGP_ACT_STOP_CONNECT_RETRY | BGP_ACT_SEND_OPEN | BGP_ACT_HOLD_LARGE;
			o->next = BGP_OPENSENT;
			return;
		case BGP_EV_TCP_FAILS:
			/* Wait in Active for the peer or the retry timer. */
			o->actions = BGP_ACT_CLOSE | BGP_ACT_CONNECT_RETRY;
			o->next = BGP_ACTIVE;
			return;
		default:
			to_idle(o, true);
			return;
		}
	case BGP_ACTIVE:
		switch (ev) {
		case BGP_EV_START:
			return;
		case BGP_EV_CONNECT_RETRY_EXPIRES:
			if (passive) {
				o->actions = BGP_ACT_CONNECT_RETRY;
				return;
			}
			o->actions = BGP_ACT_CONNECT_RETRY | BGP_ACT_CONNECT;
			o->next = BGP_CONNECT;
			return;
		case BGP_EV_TCP_CONNECTED:
			o->actions =
			    BGP_ACT_STOP_CONNECT_RETRY | BGP_ACT_SEND_OPEN | BGP_ACT_HOLD_LARGE;
			o->next = BGP_OPENSENT;
			return;
		default:
			to_idle(o, true);
			return;
		}
	case BGP_OPENSENT:
		switch (ev) {
		case BGP_EV_START:
			return;
		case BGP_EV_HOLD_EXPIRES:
			notify(o, BGP_ERR_HOLD_TIMER, 0);
			to_idle(o, true);
			return;
		case BGP_EV_TCP_FAILS:
			/* §8.2.2: close, restart the retry timer, listen. */
			o->actions = BGP_ACT_CLOSE | BGP_ACT_STOP_TIMERS | BGP_ACT_CONNECT_RETRY;
			o->next = BGP_ACTIVE;
			return;
		case BGP_EV_OPEN:
			o->actions = BGP_ACT_SEND_KEEPALIVE | BGP_ACT_HOLD_NEGOTIATED |
				     BGP_ACT_STOP_CONNECT_RETRY;
			o->next = BGP_OPENCONFIRM;
			return;
		case BGP_EV_BAD_MSG:
			o->actions = BGP_ACT_SEND_NOTIFICATION; /* the message's error */
			to_idle(o, true);
			return;
		case BGP_EV_NOTIFICATION:
			to_idle(o, true);
			return;
		default:
			notify(o, BGP_ERR_FSM, BGP_FSM_UNEXPECTED_IN_OPENSENT);
			to_idle(o, true);
			return;
		}
	case BGP_OPENCONFIRM:
		switch (ev) {
		case BGP_EV_START:
			return;
		case BGP_EV_HOLD_EXPIRES:
			notify(o, BGP_ERR_HOLD_TIMER, 0);
			to_idle(o, true);
			return;
		case BGP_EV_KEEPALIVE_EXPIRES:
			o->actions = BGP_ACT_SEND_KEEPALIVE | BGP_ACT_RESTART_KEEPALIVE;
			return;
		case BGP_EV_KEEPALIVE:
			o->actions = BGP_ACT_RESTART_HOLD | BGP_ACT_ESTABLISHED;
			o->next = BGP_ESTABLISHED;
			return;
		case BGP_EV_TCP_FAILS:
		case BGP_EV_NOTIFICATION:
			to_idle(o, true);
			return;
		case BGP_EV_BAD_MSG:
			o->actions = BGP_ACT_SEND_NOTIFICATION;
			to_idle(o, true);
			return;
		default:
			notify(o, BGP_ERR_FSM, BGP_FSM_UNEXPECTED_IN_OPENCONFIRM);
			to_idle(o, true);
			return;
		}
	case BGP_ESTABLISHED:
		switch (ev) {
		case BGP_EV_START:
			return;
		case BGP_EV_HOLD_EXPIRES:
			notify(o, BGP_ERR_HOLD_TIMER, 0);
			to_idle(o, true);
			return;
		case BGP_EV_KEEPALIVE_EXPIRES:
			o->actions = BGP_ACT_SEND_KEEPALIVE | BGP_ACT_RESTART_KEEPALIVE;
			return;
		case BGP_EV_KEEPALIVE:
		case BGP_EV_UPDATE:
			o->actions = BGP_ACT_RESTART_HOLD;
			return;
		case BGP_EV_ROUTE_REFRESH:
			o->actions = BGP_ACT_RESTART_HOLD | BGP_ACT_REFRESH;
			return;
		case BGP_EV_TCP_FAILS:
		case BGP_EV_NOTIFICATION:
			to_idle(o, true);
			return;
		case BGP_EV_BAD_MSG:
		case BGP_EV_BAD_UPDATE:
			o->actions = BGP_ACT_SEND_NOTIFICATION;
			to_idle(o, true);
			return;
		default:
			/* An OPEN, or a ConnectRetryTimer that should not run. */
			notify(o, BGP_ERR_FSM, BGP_FSM_UNEXPECTED_IN_ESTABLISHED);
			to_idle(o, true);
			return;
		}
	default:
		to_idle(o, true);
		return;
	}
}
