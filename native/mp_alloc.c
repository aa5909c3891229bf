/* The arena allocator: a boundary-walkable heap of blocks under one robust process-shared mutex.
 *
 * Crash-safety argument (details in docs/transport.md):
 *  - The only state that must survive a crash is the chain of block sizes, each block's state,
 *    generation, holders and writer. Free lists, prev_size, class_mask and statistics are derived
 *    and are rebuilt from the chain by mp_repair().
 *  - Every change to the chain is prepared in bytes that the chain does not reach yet and then made
 *    visible by one aligned 8-byte store (a split writes the tail header, then shrinks the block;
 *    a merge grows the left block over its right neighbour; growth writes a header past heap_end,
 *    then moves heap_end). A process killed at any instant leaves a chain that is walkable.
 *  - A process that dies holding the mutex makes the next locker see EOWNERDEAD; it runs
 *    mp_repair() before it proceeds, then marks the mutex consistent. Nobody waits forever.
 */
#include "mp_native.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifdef MP_TEST_HOOKS
int mp_crash_at = -1;
int mp_no_pidfd = 0;

void mp_crash_point(int n) {
    if (mp_crash_at == n) {
        kill(getpid(), SIGKILL);
        for (;;) pause();
    }
}
#endif

static inline mp_arena_hdr *H(char *base) { return (mp_arena_hdr *)base; }
static inline mp_block *B(char *base, uint64_t off) { return (mp_block *)(base + off); }

static inline int size_class(uint64_t size) { return 63 - __builtin_clzll(size); }

static void fl_push(char *base, uint64_t off) {
    mp_arena_hdr *h = H(base);
    mp_block *b = B(base, off);
    int c = size_class(b->size);
    b->prev_free = 0;
    b->next_free = h->free_heads[c];
    if (h->free_heads[c]) B(base, h->free_heads[c])->prev_free = off;
    h->free_heads[c] = off;
    h->class_mask |= (1ull << c);
}

static void fl_remove(char *base, uint64_t off) {
    mp_arena_hdr *h = H(base);
    mp_block *b = B(base, off);
    int c = size_class(b->size);
    if (b->prev_free) B(base, b->prev_free)->next_free = b->next_free;
    else h->free_heads[c] = b->next_free;
    if (b->next_free) B(base, b->next_free)->prev_free = b->prev_free;
    if (!h->free_heads[c]) h->class_mask &= ~(1ull << c);
    b->next_free = b->prev_free = 0;
}

/* Rebuild every derived field from the chain; free orphans (used, no holder). Returns 0 on
 * success, -1 when the chain itself is broken (which the commit ordering rules out). */
int mp_repair(char *base) {
    mp_arena_hdr *h = H(base);
    uint64_t end = atomic_load(&h->heap_end);
    memset(h->free_heads, 0, sizeof h->free_heads);
    h->class_mask = 0;
    h->used_bytes = 0;
    h->used_blocks = 0;
    uint64_t off = h->heap_start, prev = 0, prev_size = 0;
    while (off < end) {
        mp_block *b = B(base, off);
        if (b->magic != MP_BLOCK_MAGIC || b->size < MP_MIN_BLOCK || b->size % MP_ALIGN ||
            b->size > end - off || (b->state != MP_FREE && b->state != MP_USED))
            return -1;
        if (b->state == MP_USED && mp_unheld(b)) b->state = MP_FREE;
        if (b->state == MP_FREE && prev && B(base, prev)->state == MP_FREE) {
            mp_block *p = B(base, prev);
            fl_remove(base, prev);
            p->cold |= b->cold;
            p->size += b->size; /* commit: absorb b */
            fl_push(base, prev);
            off = prev + p->size;
            prev_size = p->size;
            continue;
        }
        b->prev_size = prev_size;
        if (b->state == MP_FREE) fl_push(base, off);
        else {
            h->used_bytes += b->size;
            h->used_blocks += 1;
        }
        prev = off;
        prev_size = b->size;
        off += b->size;
    }
    if (off != end) return -1;
    h->repairs += 1;
    return 0;
}

int mp_lock_init(char *base) {
    pthread_mutexattr_t ma;
    int rc = pthread_mutexattr_init(&ma);
    if (rc != 0) return rc;
    rc = pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    if (rc == 0) rc = pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    if (rc == 0) rc = pthread_mutex_init(&H(base)->lock, &ma);
    int drc = pthread_mutexattr_destroy(&ma);
    return rc != 0 ? rc : drc;
}

int mp_lock(char *base) {
    mp_arena_hdr *h = H(base);
    int rc = pthread_mutex_lock(&h->lock);
    if (rc == EOWNERDEAD) {
        /* We own the lock; its previous owner died inside a critical section. */
        if (mp_repair(base) != 0) atomic_store(&h->corrupt, 1);
        rc = pthread_mutex_consistent(&h->lock);
        if (rc != 0) {
            /* Not expected of a robust mutex we own. Releasing it unmarked leaves it
             * ENOTRECOVERABLE, which every later locker reports; this error is the one to tell. */
            (void)pthread_mutex_unlock(&h->lock);
            return rc;
        }
    }
    if (rc != 0) return rc;
    if (atomic_load(&h->corrupt)) {
        rc = pthread_mutex_unlock(&h->lock);
        return rc != 0 ? rc : MP_LOCK_CORRUPT;
    }
    return 0;
}

int mp_unlock(char *base) { return pthread_mutex_unlock(&H(base)->lock); }

static void prefault(char *addr, uint64_t len) {
    if (!len) return;
#ifdef MADV_POPULATE_WRITE
    if (madvise(addr, len, MADV_POPULATE_WRITE) == 0) return;
#endif
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) page = 4096; /* touching more often than needed is still correct */
    for (uint64_t i = 0; i < len; i += (uint64_t)page) ((volatile char *)addr)[i] = ((volatile char *)addr)[i];
}

void mp_prefault(char *base, uint64_t from, uint64_t to) { prefault(base + from, to - from); }

/* Fault in [from, to) for writing, rounded out to whole pages. Returns 0, or the errno of a
 * failure that writing would have met as SIGBUS or the OOM killer (ENOMEM, EFAULT). A kernel
 * without MADV_POPULATE_WRITE (before 5.14) populates nothing: the writer faults the pages in. */
int mp_populate(char *base, uint64_t from, uint64_t to) {
#ifdef MADV_POPULATE_WRITE
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    from = from / page * page;
    to = (to + page - 1) / page * page;
    if (to > from && madvise(base + from, to - from, MADV_POPULATE_WRITE) != 0 && errno != EINVAL)
        return errno;
#else
    (void)base, (void)from, (void)to;
#endif
    return 0;
}

/* Give the pages of every free block back to the system (MADV_REMOVE punches them out of the
 * memfd, in every process at once), except below `keep` and the page holding each block's
 * header. Lock held. Returns the bytes punched (pages that were holes already count too). */
uint64_t mp_trim_locked(char *base, uint64_t keep) {
    mp_arena_hdr *h = H(base);
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), punched = 0;
    for (int c = 0; c < MP_NCLASSES; c++)
        for (uint64_t f = h->free_heads[c]; f; f = B(base, f)->next_free) {
            mp_block *b = B(base, f);
            uint64_t from = f + MP_BLOCK_HDR, to = f + b->size;
            if (from < keep) from = keep;
            from = (from + page - 1) / page * page;
            to = to / page * page;
            if (to <= from) continue;
            b->cold = 1; /* before the punch: a crash in between only costs a populate */
            if (madvise(base + from, to - from, MADV_REMOVE) == 0) punched += to - from;
        }
    atomic_store(&h->rewarmed, 0);
    return punched;
}

/* Insert a free block into the heap and merge it with free neighbours. Lock held. */
static void free_and_merge(char *base, uint64_t off) {
    mp_arena_hdr *h = H(base);
    uint64_t end = atomic_load(&h->heap_end);
    mp_block *b = B(base, off);
    b->state = MP_FREE;
    mp_crash_point(5);
    uint64_t next = off + b->size;
    if (next < end && B(base, next)->state == MP_FREE) {
        fl_remove(base, next);
        b->cold |= B(base, next)->cold;
        b->size += B(base, next)->size; /* commit: absorb right neighbour */
        mp_crash_point(6);
    }
    if (b->prev_size && off - b->prev_size >= h->heap_start) {
        uint64_t prev = off - b->prev_size;
        mp_block *p = B(base, prev);
        if (p->state == MP_FREE) {
            fl_remove(base, prev);
            p->cold |= b->cold;
            p->size += b->size; /* commit: left neighbour absorbs b */
            off = prev;
            b = p;
        }
    }
    next = off + b->size;
    if (next < end) B(base, next)->prev_size = b->size;
    fl_push(base, off);
}

/* Extend the heap so that a free block of at least `need` bytes ends it, adding at most
 * `max_add` bytes. The new part is not populated here (the lock is held): it is marked cold and
 * the process that allocates from it populates its own block, outside the lock. Lock held.
 * Returns 0, or -1 when the heap cannot grow that far. */
static int grow(char *base, uint64_t need, uint64_t max_add) {
    mp_arena_hdr *h = H(base);
    uint64_t end = atomic_load(&h->heap_end);
    uint64_t last = 0;
    for (uint64_t off = h->heap_start; off < end; off += B(base, off)->size) last = off;
    /* A free block that ends the heap merges with the new part: only the rest is added. */
    uint64_t have = last && B(base, last)->state == MP_FREE ? B(base, last)->size : 0;
    uint64_t short_by = need > have ? need - have : MP_MIN_BLOCK;
    if (short_by < MP_MIN_BLOCK) short_by = MP_MIN_BLOCK;
    uint64_t room = h->capacity - end;
    if (room > max_add) room = max_add;
    room &= ~(uint64_t)(MP_ALIGN - 1);
    uint64_t add = short_by > h->grow_step ? short_by : h->grow_step;
    if (add > room) add = room;
    if (add < short_by) return -1;
    /* The new block lies past heap_end: invisible to every walker until the commit below. */
    mp_block *b = B(base, end);
    memset(b, 0, sizeof *b);
    b->magic = MP_BLOCK_MAGIC;
    b->state = MP_FREE;
    b->cold = 1;
    b->size = add;
    mp_crash_point(7);
    atomic_store(&h->heap_end, end + add); /* commit */
    b->prev_size = last ? end - last : 0;
    free_and_merge(base, end);
    return 0;
}

/* Allocate a block with room for `nbytes` of payload, growing the heap by at most `max_growth`
 * bytes. Lock held. Returns the block offset, 0 when nothing fits right now. A block marked
 * cold must be populated by the caller before use (mp_populate). */
uint64_t mp_alloc_locked(char *base, uint64_t nbytes, int slot, uint64_t max_growth) {
    mp_arena_hdr *h = H(base);
    uint64_t need = (nbytes + MP_BLOCK_HDR + MP_ALIGN - 1) & ~(uint64_t)(MP_ALIGN - 1);
    if (need < MP_MIN_BLOCK) need = MP_MIN_BLOCK;
    mp_crash_point(1);
    for (int attempt = 0; attempt < 2; attempt++) {
        int c = size_class(need);
        uint64_t found = 0;
        for (uint64_t off = h->free_heads[c]; off; off = B(base, off)->next_free)
            if (B(base, off)->size >= need) {
                found = off;
                break;
            }
        if (!found) {
            uint64_t higher = c + 1 < 64 ? h->class_mask & ~((2ull << c) - 1) : 0;
            if (higher) found = h->free_heads[__builtin_ctzll(higher)];
        }
        if (found) {
            mp_block *b = B(base, found);
            fl_remove(base, found);
            uint64_t rest = b->size - need;
            if (rest >= MP_MIN_BLOCK) {
                mp_block *t = B(base, found + need);
                memset(t, 0, sizeof *t);
                t->magic = MP_BLOCK_MAGIC;
                t->state = MP_FREE;
                t->cold = b->cold;
                t->size = rest;
                t->prev_size = need;
                mp_crash_point(2);
                b->size = need; /* commit: split */
                uint64_t after = found + b->size + rest;
                if (after < atomic_load(&h->heap_end)) B(base, after)->prev_size = rest;
                fl_push(base, found + need);
            }
            mp_crash_point(3);
            b->gen = ++h->gen_counter;
            b->writer = (uint32_t)slot;
            mp_clear_holds(b);
            atomic_store(&b->holds[slot], 1);
            b->state = MP_USED;
            h->used_bytes += b->size;
            h->used_blocks += 1;
            if (h->used_bytes > h->peak_used) h->peak_used = h->used_bytes;
            return found;
        }
        if (attempt == 0 && grow(base, need, max_growth) != 0) break;
    }
    return 0;
}

/* Free a used block whose holders are all gone. Lock held. Returns 1 if freed. */
int mp_free_locked(char *base, uint64_t off, uint64_t gen) {
    mp_arena_hdr *h = H(base);
    mp_block *b = B(base, off);
    if (b->state != MP_USED || b->gen != gen || !mp_unheld(b)) return 0;
    h->used_bytes -= b->size;
    h->used_blocks -= 1;
    mp_crash_point(4);
    free_and_merge(base, off);
    atomic_fetch_add(&h->free_seq, 1);
    return 1;
}

/* Drop every reference of a dead slot; free blocks it wrote that were never adopted. Lock held. */
uint64_t mp_reclaim_locked(char *base, int slot) {
    mp_arena_hdr *h = H(base);
    uint64_t end = atomic_load(&h->heap_end), freed = 0;
    uint64_t off = h->heap_start;
    while (off < end) {
        mp_block *b = B(base, off);
        uint64_t size = b->size;
        if (b->state == MP_USED) {
            if (b->writer == (uint32_t)slot && slot != 0) mp_clear_holds(b);
            else atomic_store(&b->holds[slot], 0);
            if (mp_unheld(b)) {
                uint64_t prev = b->prev_size ? off - b->prev_size : 0;
                int merged_left = prev && B(base, prev)->state == MP_FREE;
                mp_free_locked(base, off, b->gen);
                freed++;
                if (merged_left) {
                    off = prev + B(base, prev)->size;
                    continue;
                }
                off += b->size;
                continue;
            }
        }
        off += size;
    }
    h->reclaimed += freed;
    return freed;
}

/* Verify the whole heap; on failure write a reason into `why`. Lock held. */
int mp_check_locked(char *base, char *why, size_t whylen) {
    mp_arena_hdr *h = H(base);
    uint64_t end = atomic_load(&h->heap_end), used = 0, nused = 0, nfree_chain = 0, prev_size = 0;
    int prev_free = 0;
    uint64_t off = h->heap_start;
    while (off < end) {
        mp_block *b = B(base, off);
        if (b->magic != MP_BLOCK_MAGIC || b->size < MP_MIN_BLOCK || b->size % MP_ALIGN ||
            b->size > end - off) {
            snprintf(why, whylen, "broken block chain at offset %llu", (unsigned long long)off);
            return -1;
        }
        if (b->prev_size != prev_size) {
            snprintf(why, whylen, "stale prev_size at offset %llu", (unsigned long long)off);
            return -1;
        }
        if (b->state == MP_FREE) {
            if (prev_free) {
                snprintf(why, whylen, "two adjacent free blocks at %llu", (unsigned long long)off);
                return -1;
            }
            nfree_chain++;
        } else if (b->state == MP_USED) {
            used += b->size;
            nused++;
        } else {
            snprintf(why, whylen, "bad block state at %llu", (unsigned long long)off);
            return -1;
        }
        prev_free = b->state == MP_FREE;
        prev_size = b->size;
        off += b->size;
    }
    if (off != end) {
        snprintf(why, whylen, "block chain overruns the heap end");
        return -1;
    }
    uint64_t nfree_lists = 0;
    for (int c = 0; c < MP_NCLASSES; c++) {
        if (!!h->free_heads[c] != !!(h->class_mask & (1ull << c))) {
            snprintf(why, whylen, "class mask disagrees with free list %d", c);
            return -1;
        }
        for (uint64_t f = h->free_heads[c]; f; f = B(base, f)->next_free) {
            mp_block *b = B(base, f);
            if (f < h->heap_start || f >= end || b->state != MP_FREE || size_class(b->size) != c) {
                snprintf(why, whylen, "free list %d holds a bad block", c);
                return -1;
            }
            if (++nfree_lists > nfree_chain) {
                snprintf(why, whylen, "free list %d has a cycle or a stray block", c);
                return -1;
            }
        }
    }
    if (nfree_lists != nfree_chain) {
        snprintf(why, whylen, "%llu free blocks in the chain, %llu in the free lists",
                 (unsigned long long)nfree_chain, (unsigned long long)nfree_lists);
        return -1;
    }
    if (used != h->used_bytes || nused != h->used_blocks) {
        snprintf(why, whylen, "statistics say %llu bytes in %llu blocks, the heap %llu in %llu",
                 (unsigned long long)h->used_bytes, (unsigned long long)h->used_blocks,
                 (unsigned long long)used, (unsigned long long)nused);
        return -1;
    }
    return 0;
}

