#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "list.h"

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE)

static void add_tree(struct flosse_watch *w, const char *path);

static void remember(struct flosse_watch *w, int wd, const char *path) {
  for (size_t i = 0; i < w->ndirs; i++)
    if (w->dirs[i].wd == wd) return; /* the kernel reuses a wd for the same folder */
  if (w->ndirs == w->cap) {
    size_t ncap = w->cap ? w->cap * 2 : 16;
    struct flosse_watch_dir *d = realloc(w->dirs, ncap * sizeof *d);
    if (!d) return;
    w->dirs = d;
    w->cap = ncap;
  }
  char *copy = strdup(path);
  if (!copy) return;
  w->dirs[w->ndirs++] = (struct flosse_watch_dir){wd, copy};
}

static const char *path_of(struct flosse_watch *w, int wd) {
  for (size_t i = 0; i < w->ndirs; i++)
    if (w->dirs[i].wd == wd) return w->dirs[i].path;
  return NULL;
}

static void forget(struct flosse_watch *w, int wd) {
  for (size_t i = 0; i < w->ndirs; i++) {
    if (w->dirs[i].wd != wd) continue;
    free(w->dirs[i].path);
    w->dirs[i] = w->dirs[--w->ndirs];
    return;
  }
}

/* Hidden folders (.git and the like) are never part of an app. */
static void add_tree(struct flosse_watch *w, const char *path) {
  int wd = inotify_add_watch(w->fd, path, WATCH_MASK | IN_ONLYDIR);
  if (wd < 0) return;
  remember(w, wd, path);
  DIR *d = opendir(path);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char sub[PATH_MAX];
    if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= sizeof sub) continue;
    struct stat st;
    if (e->d_type == DT_DIR || (e->d_type == DT_UNKNOWN && stat(sub, &st) == 0 && S_ISDIR(st.st_mode)))
      add_tree(w, sub);
  }
  closedir(d);
}

static int is_source(const char *name) {
  size_t n = strlen(name);
  return name[0] != '.' && n > 4 && strcmp(name + n - 4, ".lua") == 0;
}

static void on_quiet(struct ev_loop *loop, ev_timer *t, int revents) {
  (void)loop;
  (void)revents;
  struct flosse_watch *w = flosse_container_of(t, struct flosse_watch, quiet);
  w->changed(w);
}

static void on_inotify(struct ev_loop *loop, ev_io *io, int revents) {
  (void)revents;
  struct flosse_watch *w = flosse_container_of(io, struct flosse_watch, io);
  char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
  int relevant = 0;
  for (;;) {
    ssize_t n = read(w->fd, buf, sizeof buf);
    if (n <= 0) break;
    for (char *p = buf; p < buf + n;) {
      struct inotify_event *ev = (struct inotify_event *)p;
      p += sizeof *ev + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        relevant = 1;
        continue;
      }
      if (ev->mask & IN_IGNORED) {
        forget(w, ev->wd);
        continue;
      }
      const char *name = ev->len ? ev->name : "";
      if (ev->mask & IN_ISDIR) {
        if (name[0] == '.') continue;
        if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
          /* A new folder: watch it, and whatever it already holds. */
          const char *parent = path_of(w, ev->wd);
          char sub[PATH_MAX];
          if (parent && (size_t)snprintf(sub, sizeof sub, "%s/%s", parent, name) < sizeof sub)
            add_tree(w, sub);
        }
        relevant = 1;
      } else if (is_source(name)) {
        relevant = 1;
      }
    }
  }
  if (relevant) {
    /* Editors save in bursts; reload once the folder has been quiet. */
    ev_timer_stop(loop, &w->quiet);
    ev_timer_set(&w->quiet, w->quiet_for, 0.);
    ev_timer_start(loop, &w->quiet);
  }
}

void flosse_watch_init(struct flosse_watch *w, struct ev_loop *loop,
                       void (*changed)(struct flosse_watch *w)) {
  memset(w, 0, sizeof *w);
  w->loop = loop;
  w->fd = -1;
  w->quiet_for = 0.2;
  w->changed = changed;
  ev_init(&w->io, on_inotify);
  ev_init(&w->quiet, on_quiet);
}

int flosse_watch_start(struct flosse_watch *w, const char *root, char *err, size_t errlen) {
  struct stat st;
  if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "cannot watch %s: not a folder", root);
    return FLOSSE_ERR;
  }
  flosse_watch_stop(w);
  w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (w->fd < 0) {
    snprintf(err, errlen, "cannot watch %s: inotify: %s", root, strerror(errno));
    return FLOSSE_ERR;
  }
  add_tree(w, root);
  if (w->ndirs == 0) {
    snprintf(err, errlen, "cannot watch %s: %s", root, strerror(errno));
    flosse_watch_stop(w);
    return FLOSSE_ERR;
  }
  ev_io_set(&w->io, w->fd, EV_READ);
  ev_io_start(w->loop, &w->io);
  return FLOSSE_OK;
}

void flosse_watch_stop(struct flosse_watch *w) {
  ev_io_stop(w->loop, &w->io);
  ev_timer_stop(w->loop, &w->quiet);
  if (w->fd >= 0) close(w->fd);
  w->fd = -1;
  for (size_t i = 0; i < w->ndirs; i++) free(w->dirs[i].path);
  free(w->dirs);
  w->dirs = NULL;
  w->ndirs = w->cap = 0;
}
