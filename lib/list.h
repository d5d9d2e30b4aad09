/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * list.h - an intrusive doubly-linked circular list (the Linux kernel's
 * shape): embed a struct dlist in the object, keep a struct dlist as the
 * head, get the object back with container_of. Insert and remove are O(1)
 * and need no special case for the ends.
 */
#ifndef PORTICO_LIST_H
#define PORTICO_LIST_H

#include <stdbool.h>
#include <stddef.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct dlist {
	struct dlist *prev, *next;
};

/* An empty list (a head), or a node that is in no list. */
static inline void dlist_init(struct dlist *l)
{
	l->prev = l->next = l;
}

static inline bool dlist_empty(const struct dlist *head)
{
	return head->next == head;
}

/* Whether a node initialised with dlist_init is in a list. */
static inline bool dlist_linked(const struct dlist *n)
{
	return n->next != n && n->next != NULL;
}

/* Add n first (after head). */
static inline void dlist_push(struct dlist *head, struct dlist *n)
{
	n->prev = head;
	n->next = head->next;
	head->next->prev = n;
	head->next = n;
}

/* Take n out of its list (a no-op if it is in none); n is left empty. */
static inline void dlist_del(struct dlist *n)
{
	if (!dlist_linked(n))
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	dlist_init(n);
}

/* The first node, or NULL for an empty list. */
static inline struct dlist *dlist_first(const struct dlist *head)
{
	return dlist_empty(head) ? NULL : head->next;
}

/* Visit each node; the body may dlist_del (only) the current one. */
#define dlist_each(pos, tmp, head)                                                                 \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                           \
	     (pos) = (tmp), (tmp) = (pos)->next)

#endif
