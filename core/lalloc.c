#include "lalloc.h"

#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRAIN 16
#define NCLASS (FLOSSE_LALLOC_MAX / GRAIN)
#define SLAB (64 * 1024) /* also the slabs' alignment: a block's slab is found by masking */

struct flosse_lalloc {
  lua_Alloc old;            /* for big blocks and blocks from before */
  void *old_ud;
  int pooled;               /* see pool_new */
  int enforce;
  size_t used, limit;
  void *free[NCLASS];       /* class k holds blocks of (k + 1) * GRAIN bytes */
  char *bump, *bump_end;    /* the unused tail of the newest slab */
  uintptr_t *set;           /* open addressing: every slab's address */
  size_t set_cap, nslabs;
};

static void *old_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
}

static size_t slot(uintptr_t base, size_t cap) {
  return (size_t)((base / SLAB) * 0x9E3779B97F4A7C15ULL) & (cap - 1);
}

static int ours(const struct flosse_lalloc *a, const void *p) {
  if (!a->set_cap) return 0;
  uintptr_t base = (uintptr_t)p & ~(uintptr_t)(SLAB - 1);
  for (size_t i = slot(base, a->set_cap);; i = (i + 1) & (a->set_cap - 1)) {
    if (a->set[i] == base) return 1;
    if (a->set[i] == 0) return 0;
  }
}

static void set_add(uintptr_t *set, size_t cap, uintptr_t base) {
  size_t i = slot(base, cap);
  while (set[i]) i = (i + 1) & (cap - 1);
  set[i] = base;
}

static int new_slab(struct flosse_lalloc *a) {
  if ((a->nslabs + 1) * 2 > a->set_cap) {
    size_t ncap = a->set_cap ? a->set_cap * 2 : 64;
    uintptr_t *nset = calloc(ncap, sizeof *nset);
    if (!nset) return 0;
    for (size_t i = 0; i < a->set_cap; i++)
      if (a->set[i]) set_add(nset, ncap, a->set[i]);
    free(a->set);
    a->set = nset;
    a->set_cap = ncap;
  }
  void *slab;
  if (posix_memalign(&slab, SLAB, SLAB) != 0) return 0;
  set_add(a->set, a->set_cap, (uintptr_t)slab);
  a->nslabs++;
  /* What is left of the previous slab goes to the free lists. */
  while (a->bump_end - a->bump >= GRAIN) {
    size_t k = (size_t)(a->bump_end - a->bump) / GRAIN - 1;
    if (k >= NCLASS) k = NCLASS - 1;
    *(void **)a->bump = a->free[k];
    a->free[k] = a->bump;
    a->bump += (k + 1) * GRAIN;
  }
  a->bump = slab;
  a->bump_end = a->bump + SLAB;
  return 1;
}

static void *small_alloc(struct flosse_lalloc *a, size_t k) {
  void *p = a->free[k];
  if (p) {
    a->free[k] = *(void **)p;
    return p;
  }
  size_t size = (k + 1) * GRAIN;
  if ((size_t)(a->bump_end - a->bump) < size && !new_slab(a)) return NULL;
  p = a->bump;
  a->bump += size;
  return p;
}

static size_t class_of(size_t n) { return (n + GRAIN - 1) / GRAIN - 1; }

static void small_free(struct flosse_lalloc *a, void *p, size_t size) {
  size_t k = class_of(size);
  *(void **)p = a->free[k];
  a->free[k] = p;
}

static void *pool_alloc(struct flosse_lalloc *a, void *ptr, size_t osize, size_t nsize) {
  if (!ptr) {
    if (nsize == 0) return NULL;
    if (nsize <= FLOSSE_LALLOC_MAX) return small_alloc(a, class_of(nsize));
    return a->old(a->old_ud, NULL, osize, nsize);
  }
  int mine = ours(a, ptr);
  if (nsize == 0) {
    if (mine) small_free(a, ptr, osize);
    else a->old(a->old_ud, ptr, osize, 0);
    return NULL;
  }
  if (mine && nsize <= osize) return ptr; /* a shrink never fails (Lua relies on it) */
  if (mine && class_of(nsize) == class_of(osize)) return ptr;
  if (!mine && nsize > FLOSSE_LALLOC_MAX) return a->old(a->old_ud, ptr, osize, nsize);
  if (!mine && nsize <= osize) return a->old(a->old_ud, ptr, osize, nsize);
  void *n = nsize <= FLOSSE_LALLOC_MAX ? small_alloc(a, class_of(nsize))
                                       : a->old(a->old_ud, NULL, LUA_TNONE, nsize);
  if (!n) return NULL;
  memcpy(n, ptr, osize < nsize ? osize : nsize);
  if (mine) small_free(a, ptr, osize);
  else a->old(a->old_ud, ptr, osize, 0);
  return n;
}

static void *lalloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  struct flosse_lalloc *a = ud;
  size_t old = ptr ? osize : 0; /* without ptr, osize is a type tag */
  if (nsize > old && a->enforce && a->limit && a->used - old + nsize > a->limit) return NULL;
  void *p = a->pooled ? pool_alloc(a, ptr, osize, nsize) : a->old(a->old_ud, ptr, osize, nsize);
  if (p || nsize == 0) a->used = a->used - old + nsize;
  return p;
}

static struct flosse_lalloc *pool_new(lua_Alloc old, void *old_ud) {
  struct flosse_lalloc *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  a->old = old;
  a->old_ud = old_ud;
  /* FLOSSE_LUA_POOL=0 or 1 decides; by default it is off under
   * AddressSanitizer, which must see every Lua block to check the core. */
  const char *env = getenv("FLOSSE_LUA_POOL");
#if defined(__SANITIZE_ADDRESS__)
  a->pooled = env && strcmp(env, "1") == 0;
#else
  a->pooled = !(env && strcmp(env, "0") == 0);
#endif
  return a;
}

static void pool_free(struct flosse_lalloc *a) {
  for (size_t i = 0; i < a->set_cap; i++) free((void *)a->set[i]);
  free(a->set);
  free(a);
}

static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "flosse: PANIC: unprotected error in call to Lua API (%s)\n",
          msg ? msg : "error object is not a string");
  return 0; /* then Lua aborts */
}

lua_State *flosse_lalloc_newstate(void) {
  struct flosse_lalloc *a = pool_new(old_alloc, NULL);
  if (!a) return NULL;
  lua_State *L = lua_newstate(lalloc, a);
  if (!L) {
    pool_free(a);
    return NULL;
  }
  lua_atpanic(L, panic);
  return L;
}

void flosse_lalloc_close_state(lua_State *L) {
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  lua_close(L);
  if (f == lalloc) pool_free(ud);
}

/* The interpreter's state gets a pool that is never freed: the state is
 * closed at exit, after everything else. */
static struct flosse_lalloc *main_pools[8];

struct flosse_lalloc *flosse_lalloc_of(lua_State *L) {
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  if (f == lalloc) return ud;
  struct flosse_lalloc *a = pool_new(f, ud);
  if (!a) return NULL;
  a->used = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
  for (size_t i = 0; i < sizeof main_pools / sizeof *main_pools; i++)
    if (!main_pools[i]) {
      main_pools[i] = a;
      break;
    }
  lua_setallocf(L, lalloc, a);
  return a;
}

void flosse_lalloc_limit(struct flosse_lalloc *a, size_t limit) { a->limit = limit; }
void flosse_lalloc_enforce(struct flosse_lalloc *a, int on) { a->enforce = on; }
size_t flosse_lalloc_used(const struct flosse_lalloc *a) { return a->used; }
