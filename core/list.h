/* Intrusive doubly linked lists: a node lives in the struct it links, so
 * that unlinking a closing connection from every queue is O(1). */
#ifndef FLOSSE_LIST_H
#define FLOSSE_LIST_H

#include <stddef.h>

struct flosse_list { struct flosse_list *prev, *next; };

#define flosse_container_of(ptr, type, member) \
  ((type *)((char *)(ptr) - offsetof(type, member)))

static inline void flosse_list_init(struct flosse_list *l) { l->prev = l->next = l; }
static inline int flosse_list_empty(const struct flosse_list *l) { return l->next == l; }
/* A node that is in no list points at itself. */
static inline int flosse_list_linked(const struct flosse_list *n) { return n->next != n; }

static inline void flosse_list_unlink(struct flosse_list *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = n;
}

static inline void flosse_list_push(struct flosse_list *head, struct flosse_list *n) {
  n->prev = head->prev;
  n->next = head;
  head->prev->next = n;
  head->prev = n;
}

/* Moves every node of from to the (empty) list to. */
static inline void flosse_list_take(struct flosse_list *to, struct flosse_list *from) {
  flosse_list_init(to);
  if (flosse_list_empty(from)) return;
  to->next = from->next;
  to->prev = from->prev;
  to->next->prev = to;
  to->prev->next = to;
  flosse_list_init(from);
}

#endif
