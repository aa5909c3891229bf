/* Shared declarations of the mpipe._native extension: arena layout, ring layout, helpers.
 *
 * Everything that lives in shared memory is addressed by byte offsets from the start of the
 * arena mapping, never by pointers, because every process maps the arena at its own address.
 */
#ifndef MP_NATIVE_H
#define MP_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#define MP_ALIGN 64u
#define MP_ARENA_MAGIC 0x4d50495045415245ull /* "MPIPEARE" */
#define MP_ARENA_VERSION 1u
#define MP_HDR_BYTES 4096u                   /* arena header page */
#define MP_BLOCK_MAGIC 0x424c4b31u           /* "BLK1" */
#define MP_BLOCK_HDR 192u
#define MP_MIN_BLOCK 256u
#define MP_NCLASSES 64
#define MP_MAX_SLOTS 64 /* holder counters: slot 0 is the parent, 1..63 workers */
#define MP_RING_HDR 256u /* a ring's header; its slots follow */

enum { MP_FREE = 1, MP_USED = 2 };

/* One block of the heap. The chain of blocks is walked by `size` from heap_start to heap_end;
 * `size` of a block is only ever changed by one aligned 8-byte store (the commit point). */
typedef struct {
    uint64_t size;             /* whole block, header included, multiple of MP_ALIGN */
    uint32_t magic;
    uint32_t state;            /* MP_FREE or MP_USED */
    uint64_t gen;              /* unique per allocation: stale handles are detected */
    uint64_t prev_size;        /* derived (rebuilt by repair) */
    uint64_t next_free;        /* derived: free-list links, valid while MP_FREE */
    uint64_t prev_free;
    uint32_t writer;           /* slot that allocated it, until the parent adopts it */
    uint32_t cold;             /* 1 when some of its pages may be missing (grown into or trimmed,
                                  not written since): the allocator populates them first.
                                  Merges OR it, so it errs towards populating. */
    uint64_t pad2[1];
    _Atomic uint16_t holds[MP_MAX_SLOTS]; /* references held by each slot (messages in flight
                                             to a slot count for that slot) */
} mp_block;
_Static_assert(sizeof(mp_block) == MP_BLOCK_HDR, "block header size");

static inline int mp_unheld(mp_block *b) {
    for (int i = 0; i < MP_MAX_SLOTS; i++)
        if (atomic_load(&b->holds[i])) return 0;
    return 1;
}
static inline void mp_clear_holds(mp_block *b) {
    for (int i = 0; i < MP_MAX_SLOTS; i++) atomic_store(&b->holds[i], 0);
}

typedef struct {
    uint64_t magic;
    uint64_t version;
    uint64_t capacity;          /* size of the memfd and of every mapping */
    uint64_t heap_start;
    _Atomic uint64_t heap_end;  /* committed end of the heap (grows up to capacity) */
    uint64_t initial;           /* prefaulted bytes at creation: never trimmed (the floor) */
    uint64_t grow_step;
    uint64_t gen_counter;
    uint64_t used_bytes;        /* derived: sum of sizes of MP_USED blocks */
    uint64_t used_blocks;
    uint64_t peak_used;
    uint64_t repairs;
    uint64_t reclaimed;
    _Atomic uint64_t rewarmed;  /* bytes of cold blocks populated since the last trim */
    uint64_t class_mask;        /* derived: bit c set when free_heads[c] != 0 */
    uint64_t free_heads[MP_NCLASSES];
    _Atomic uint32_t free_seq;  /* futex word: bumped on every free */
    _Atomic uint32_t waiters;
    _Atomic uint32_t corrupt;
    uint32_t pad;
    pthread_mutex_t lock;       /* robust, process-shared */
} mp_arena_hdr;

typedef struct {
    PyObject_HEAD
    char *base;
    uint64_t capacity;
    int fd;
    int slot;
    int closed;
    Py_ssize_t exports;         /* live buffer exports / leases pinning the mapping */
} ArenaObject;

extern PyTypeObject Arena_Type;
extern PyTypeObject Ring_Type;
extern PyTypeObject Rows_Type;

/* Exception classes; replaced by the Python wrapper's own classes at import. */
extern PyObject *mp_TransportError;
extern PyObject *mp_ArenaFullError;
extern PyObject *mp_PayloadTooLargeError;
extern PyObject *mp_PeerDiedError;
extern PyObject *mp_CorruptMessageError;
extern PyObject *mp_RingClosedError;
extern PyObject *mp_RingFullError;

/* Fault injection for the tests: a process kills itself with SIGKILL at crash point `n`.
 * Compiled only into a test build (MP_TEST_HOOKS, set by setup.py when the environment has
 * MPIPE_NATIVE_TEST_HOOKS=1); in a release build a crash point is no code at all. */
#ifdef MP_TEST_HOOKS
extern int mp_crash_at;
extern int mp_no_pidfd; /* rings behave as on a kernel without pidfds */
void mp_crash_point(int n);
#else
static inline void mp_crash_point(int n) { (void)n; }
#endif

/* mp_arena.c */
int mp_futex_wait(_Atomic uint32_t *addr, uint32_t expected, double timeout_s);
int mp_futex_wake(_Atomic uint32_t *addr, int n);
int mp_arena_check_alive(ArenaObject *a);

/* mp_alloc.c: the allocator. The *_locked functions need the arena's lock held. */

/* Lock the arena, repairing it first when the previous owner died holding the lock.
 * Returns 0 (locked), MP_LOCK_CORRUPT (not locked: the chain is broken beyond repair), or an
 * errno value from pthreads (not locked). */
#define MP_LOCK_CORRUPT (-2)
int mp_lock(char *base);
/* Unlock the arena; returns 0 or an errno value from pthreads (EPERM: the caller did not hold
 * it). */
int mp_unlock(char *base);
/* Make the arena's mutex robust and process-shared; returns 0 or an errno value. */
int mp_lock_init(char *base);
/* Allocate a block; the heap grows by at most max_growth bytes. A block grown into (or whose
 * pages were given back) is marked cold: the caller populates it outside the lock. */
uint64_t mp_alloc_locked(char *base, uint64_t nbytes, int slot, uint64_t max_growth);
int mp_free_locked(char *base, uint64_t off, uint64_t gen);
uint64_t mp_reclaim_locked(char *base, int slot);
int mp_check_locked(char *base, char *why, size_t whylen);
int mp_repair(char *base);
void mp_prefault(char *base, uint64_t from, uint64_t to);
/* Fault pages [from, to) in for writing; 0, or an errno value when the system has no memory. */
int mp_populate(char *base, uint64_t from, uint64_t to);
/* Give the pages of free blocks past offset keep back to the system; the bytes given back. */
uint64_t mp_trim_locked(char *base, uint64_t keep);

#endif
