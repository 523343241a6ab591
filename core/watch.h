/* The app folder's watcher: inotify on the folder and every folder below it,
 * read through the event loop, with changes debounced into one reload. */
#ifndef FLOSSE_WATCH_H
#define FLOSSE_WATCH_H

#include <ev.h>
#include <stddef.h>

struct flosse_watch_dir {
  int wd;
  char *path;
};

struct flosse_watch {
  struct ev_loop *loop;
  int fd;                 /* inotify; -1 when not watching */
  ev_io io;
  ev_timer quiet;         /* restarted by every change; fires the reload */
  double quiet_for;
  struct flosse_watch_dir *dirs;
  size_t ndirs, cap;
  void (*changed)(struct flosse_watch *w);
};

void flosse_watch_init(struct flosse_watch *w, struct ev_loop *loop,
                       void (*changed)(struct flosse_watch *w));
/* Watches root and every folder below it. Returns FLOSSE_OK, or FLOSSE_ERR
 * with err filled in. */
int flosse_watch_start(struct flosse_watch *w, const char *root, char *err, size_t errlen);
void flosse_watch_stop(struct flosse_watch *w);

#endif
