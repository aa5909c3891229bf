/* The Arena type: a memfd-backed shared mapping holding the allocator's heap. */
#include "mp_native.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int mp_futex_wait(_Atomic uint32_t *addr, uint32_t expected, double timeout_s) {
    struct timespec ts, *tp = NULL;
    if (timeout_s >= 0) {
        ts.tv_sec = (time_t)timeout_s;
        ts.tv_nsec = (long)((timeout_s - (double)ts.tv_sec) * 1e9);
        tp = &ts;
    }
    return (int)syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT, expected, tp, NULL, 0);
}

int mp_futex_wake(_Atomic uint32_t *addr, int n) {
    return (int)syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, n, NULL, NULL, 0);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define HDR(a) ((mp_arena_hdr *)(a)->base)

int mp_arena_check_alive(ArenaObject *a) {
    if (a->base == NULL || a->closed) {
        PyErr_SetString(mp_TransportError, "the arena is closed");
        return -1;
    }
    return 0;
}

/* Raise the error of a failed mp_lock() (`unlock` 0) or mp_unlock() (`unlock` 1). */
static void set_lock_error(int rc, int unlock) {
    const char *what = unlock ? "unlock" : "lock";
    if (rc == MP_LOCK_CORRUPT)
        PyErr_SetString(mp_TransportError,
                        "the arena's block chain is corrupt and cannot be repaired");
    else if (rc == ENOTRECOVERABLE)
        PyErr_Format(mp_TransportError,
                     "could not %s the arena: its lock is unusable (a process died holding it "
                     "and the lock could not be made consistent again)",
                     what);
    else
        PyErr_Format(mp_TransportError, "could not %s the arena: %s (errno %d)", what,
                     strerror(rc), rc);
}

static int lock_or_raise(ArenaObject *a) {
    int rc = mp_lock(a->base);
    if (rc != 0) {
        set_lock_error(rc, 0);
        return -1;
    }
    return 0;
}

static int unlock_or_raise(ArenaObject *a) {
    int rc = mp_unlock(a->base);
    if (rc != 0) {
        set_lock_error(rc, 1);
        return -1;
    }
    return 0;
}

static int check_slot(int slot) {
    if (slot < 0 || slot >= MP_MAX_SLOTS) {
        PyErr_Format(PyExc_ValueError, "slot must be in 0..%d, got %d", MP_MAX_SLOTS - 1, slot);
        return -1;
    }
    return 0;
}

static int map_fd(ArenaObject *self, int fd, uint64_t capacity) {
    void *p = mmap(NULL, capacity, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
#ifdef MADV_HUGEPAGE
    madvise(p, capacity, MADV_HUGEPAGE); /* best effort: fewer faults, fewer TLB misses */
#endif
    self->base = p;
    self->capacity = capacity;
    self->fd = fd;
    return 0;
}

static PyObject *Arena_create(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"capacity", "initial", "grow_step", "populate", NULL};
    unsigned long long capacity, initial, grow_step;
    int populate = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "KKK|p", kwlist, &capacity, &initial, &grow_step,
                                     &populate))
        return NULL;
    capacity &= ~(unsigned long long)(MP_ALIGN - 1);
    if (capacity < MP_HDR_BYTES + 4 * MP_MIN_BLOCK)
        return PyErr_Format(PyExc_ValueError, "arena capacity %llu is too small (at least %u)",
                            capacity, MP_HDR_BYTES + 4 * MP_MIN_BLOCK);
    if (initial > capacity) initial = capacity;
    if (initial < MP_HDR_BYTES + MP_MIN_BLOCK) initial = MP_HDR_BYTES + MP_MIN_BLOCK;
    initial &= ~(unsigned long long)(MP_ALIGN - 1);
    if (grow_step < MP_MIN_BLOCK) grow_step = MP_MIN_BLOCK;
    grow_step = (grow_step + MP_ALIGN - 1) & ~(unsigned long long)(MP_ALIGN - 1);

    int fd = (int)syscall(SYS_memfd_create, "mpipe-arena", MFD_CLOEXEC);
    if (fd < 0) return PyErr_SetFromErrno(PyExc_OSError);
    if (ftruncate(fd, (off_t)capacity) != 0) {
        close(fd);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    ArenaObject *self = (ArenaObject *)type->tp_alloc(type, 0);
    if (!self) {
        close(fd);
        return NULL;
    }
    self->fd = -1;
    self->slot = 0;
    if (map_fd(self, fd, capacity) != 0) {
        close(fd);
        Py_DECREF(self);
        return NULL;
    }
    mp_arena_hdr *h = HDR(self);
    if (populate) {
        Py_BEGIN_ALLOW_THREADS
        mp_prefault(self->base, 0, initial);
        Py_END_ALLOW_THREADS
    }
    memset(h, 0, sizeof *h);
    h->version = MP_ARENA_VERSION;
    h->capacity = capacity;
    h->heap_start = MP_HDR_BYTES;
    h->initial = initial;
    h->grow_step = grow_step;
    int rc = mp_lock_init(self->base);
    if (rc != 0) {
        PyErr_Format(PyExc_OSError, "could not make the arena's process-shared robust mutex: %s",
                     strerror(rc));
        Py_DECREF(self); /* unmaps and closes the fd */
        return NULL;
    }
    mp_block *b = (mp_block *)(self->base + MP_HDR_BYTES);
    memset(b, 0, sizeof *b);
    b->magic = MP_BLOCK_MAGIC;
    b->state = MP_FREE;
    b->size = initial - MP_HDR_BYTES;
    atomic_store(&h->heap_end, initial);
    if (mp_repair(self->base) != 0) { /* builds the free lists */
        PyErr_SetString(mp_TransportError, "could not lay out the new arena's heap");
        Py_DECREF(self);
        return NULL;
    }
    h->repairs = 0;
    h->magic = MP_ARENA_MAGIC;
    return (PyObject *)self;
}

static PyObject *Arena_attach(PyTypeObject *type, PyObject *args, PyObject *kw) {
    /* Takes ownership of `fd`: it is closed with the arena, or at once when attaching fails. */
    static char *kwlist[] = {"fd", "slot", NULL};
    int fd, slot;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "ii", kwlist, &fd, &slot)) return NULL;
    if (check_slot(slot) != 0) {
        close(fd);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        close(fd);
        return NULL;
    }
    if ((uint64_t)st.st_size < MP_HDR_BYTES) {
        close(fd);
        return PyErr_Format(mp_TransportError, "fd %d is not an mpipe arena (too small)", fd);
    }
    ArenaObject *self = (ArenaObject *)type->tp_alloc(type, 0);
    if (!self) {
        close(fd);
        return NULL;
    }
    self->fd = -1;
    self->slot = slot;
    if (map_fd(self, fd, (uint64_t)st.st_size) != 0) {
        close(fd);
        Py_DECREF(self);
        return NULL;
    }
    mp_arena_hdr *h = HDR(self);
    if (h->magic != MP_ARENA_MAGIC || h->version != MP_ARENA_VERSION ||
        h->capacity != (uint64_t)st.st_size || h->heap_start != MP_HDR_BYTES ||
        atomic_load(&h->heap_end) > h->capacity) {
        Py_DECREF(self); /* unmaps and closes the fd */
        return PyErr_Format(mp_TransportError, "fd %d is not an mpipe arena (bad header)", fd);
    }
    uint64_t end = atomic_load(&h->heap_end);
    if (end > h->initial) end = h->initial; /* past the floor, pages may have been given back */
    Py_BEGIN_ALLOW_THREADS
    mp_prefault(self->base, 0, end); /* the pages exist already: this maps them up front */
    Py_END_ALLOW_THREADS
    return (PyObject *)self;
}

static void Arena_dealloc(ArenaObject *self) {
    if (self->base) munmap(self->base, self->capacity);
    if (self->fd >= 0) close(self->fd);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Arena_close(ArenaObject *self, PyObject *Py_UNUSED(ignored)) {
    /* The mapping stays until the object is garbage: views and leases may still point into it. */
    if (self->fd >= 0) close(self->fd);
    self->fd = -1;
    self->closed = 1;
    Py_RETURN_NONE;
}

static PyObject *Arena_alloc(ArenaObject *self, PyObject *args) {
    unsigned long long nbytes, max_growth = ~0ull;
    double timeout = 0.0;
    if (!PyArg_ParseTuple(args, "K|dK", &nbytes, &timeout, &max_growth)) return NULL;
    if (mp_arena_check_alive(self) != 0) return NULL;
    mp_arena_hdr *h = HDR(self);
    uint64_t limit = h->capacity - h->heap_start - MP_BLOCK_HDR;
    if (nbytes > limit)
        return PyErr_Format(mp_PayloadTooLargeError,
                            "a payload of %llu bytes can never fit in this arena: it reserves %llu "
                            "bytes of address space (at most %llu per block)",
                            nbytes, (unsigned long long)h->capacity, (unsigned long long)limit);
    uint64_t off = 0;
    int rc = 0, urc = 0, err = 0;
    double deadline = now_s() + (timeout > 0 ? timeout : 0);
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        rc = mp_lock(self->base);
        if (rc != 0) break;
        off = mp_alloc_locked(self->base, nbytes, self->slot, max_growth);
        uint32_t seq = atomic_load(&h->free_seq);
        double left = off ? 0 : deadline - now_s();
        if (left > 0) atomic_fetch_add(&h->waiters, 1);
        urc = mp_unlock(self->base);
        if (urc != 0 || left <= 0) {
            if (left > 0) atomic_fetch_sub(&h->waiters, 1);
            break;
        }
        mp_futex_wait(&h->free_seq, seq, left); /* woken by any free: backpressure */
        atomic_fetch_sub(&h->waiters, 1);
    }
    if (off && urc == 0 && ((mp_block *)(self->base + off))->cold) {
        /* Grown into or trimmed: fault the block's pages in now, outside the lock, so that a
         * system out of memory is an error here rather than a SIGBUS in the writer. */
        mp_block *b = (mp_block *)(self->base + off);
        err = mp_populate(self->base, off + MP_BLOCK_HDR, off + b->size);
        if (!err) {
            b->cold = 0;
            atomic_fetch_add(&h->rewarmed, b->size);
        } else {
            atomic_store(&b->holds[self->slot], 0);
            /* The block goes back to the free list; if the lock fails now, it stays unheld
             * garbage until the arena is repaired or reclaimed (the error is the payload's). */
            if (mp_lock(self->base) == 0) {
                int freed = mp_free_locked(self->base, off, b->gen);
                if (mp_unlock(self->base) == 0 && freed && atomic_load(&h->waiters))
                    mp_futex_wake(&h->free_seq, 1 << 30);
            }
            off = 0;
        }
    }
    Py_END_ALLOW_THREADS
    if (rc != 0 || urc != 0) {
        /* A block allocated before a failed unlock stays held by this slot until it is
         * reclaimed: freeing it would need the lock that just failed. */
        set_lock_error(rc != 0 ? rc : urc, rc == 0);
        return NULL;
    }
    if (err)
        return PyErr_Format(mp_ArenaFullError,
                            "the system has no memory left for a payload of %llu bytes (%s)",
                            nbytes, strerror(err));
    if (!off)
        return PyErr_Format(mp_ArenaFullError,
                            "the shared-memory arena is full: no room for %llu bytes after "
                            "waiting %lld ms (it holds %llu bytes, %llu of them in use)",
                            nbytes, (long long)(timeout * 1000),
                            (unsigned long long)(atomic_load(&h->heap_end) - h->heap_start),
                            (unsigned long long)h->used_bytes);
    mp_block *b = (mp_block *)(self->base + off);
    return Py_BuildValue("KKK", (unsigned long long)off, (unsigned long long)b->gen,
                         (unsigned long long)(b->size - MP_BLOCK_HDR));
}

static PyObject *Arena_trim(ArenaObject *self, PyObject *args) {
    unsigned long long keep;
    if (!PyArg_ParseTuple(args, "K", &keep)) return NULL;
    if (mp_arena_check_alive(self) != 0) return NULL;
    int rc, urc = 0;
    uint64_t punched = 0;
    Py_BEGIN_ALLOW_THREADS
    rc = mp_lock(self->base);
    if (rc == 0) {
        punched = mp_trim_locked(self->base, keep);
        urc = mp_unlock(self->base);
    }
    Py_END_ALLOW_THREADS
    if (rc != 0 || urc != 0) {
        set_lock_error(rc != 0 ? rc : urc, rc == 0);
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(punched);
}

/* Fault the floor in while other processes may already use the arena: only with
 * MADV_POPULATE_WRITE, which never changes what the pages hold (touching each page, the
 * fallback at creation, would race with their writes). Without it, nothing is populated and the
 * pages fault in as they are first written. Raises OSError when memory is short. */
static PyObject *Arena_populate_floor(ArenaObject *self, PyObject *Py_UNUSED(ignored)) {
    if (mp_arena_check_alive(self) != 0) return NULL;
    uint64_t initial = HDR(self)->initial;
    int err;
    Py_BEGIN_ALLOW_THREADS
    err = mp_populate(self->base, 0, initial);
    Py_END_ALLOW_THREADS
    if (err != 0) {
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

/* Find and validate the block at `off` with generation `gen`. Raises CorruptMessageError. */
static mp_block *valid_block(ArenaObject *self, unsigned long long off, unsigned long long gen) {
    mp_arena_hdr *h = HDR(self);
    uint64_t end = atomic_load(&h->heap_end);
    if (off < h->heap_start || off > end || end - off < MP_BLOCK_HDR || off % MP_ALIGN) {
        PyErr_Format(mp_CorruptMessageError, "block offset %llu is outside the arena's heap", off);
        return NULL;
    }
    mp_block *b = (mp_block *)(self->base + off);
    if (b->magic != MP_BLOCK_MAGIC || b->size > end - off) {
        PyErr_Format(mp_CorruptMessageError, "no block starts at arena offset %llu", off);
        return NULL;
    }
    if (b->gen != gen || b->state != MP_USED) {
        PyErr_Format(mp_CorruptMessageError,
                     "stale block handle: offset %llu generation %llu is no longer allocated",
                     off, gen);
        return NULL;
    }
    return b;
}

/* Drop one reference of `slot`; free the block when nobody holds it any more. */
static int release_ref(ArenaObject *self, mp_block *b, uint64_t off, uint64_t gen, int slot,
                       int *freed) {
    *freed = 0;
    uint16_t cur = atomic_load(&b->holds[slot]);
    do {
        if (cur == 0) {
            PyErr_Format(mp_TransportError,
                         "slot %d releases block %llu generation %llu that it does not hold",
                         slot, (unsigned long long)off, (unsigned long long)gen);
            return -1;
        }
    } while (!atomic_compare_exchange_weak(&b->holds[slot], &cur, (uint16_t)(cur - 1)));
    if (cur != 1 || !mp_unheld(b)) return 0;
    mp_arena_hdr *h = HDR(self);
    int rc, urc = 0;
    Py_BEGIN_ALLOW_THREADS
    rc = mp_lock(self->base);
    if (rc == 0) {
        *freed = mp_free_locked(self->base, off, gen);
        urc = mp_unlock(self->base);
        if (*freed && atomic_load(&h->waiters)) mp_futex_wake(&h->free_seq, 1 << 30);
    }
    Py_END_ALLOW_THREADS
    if (rc != 0 || urc != 0) {
        set_lock_error(rc != 0 ? rc : urc, rc == 0);
        return -1;
    }
    return 0;
}

static PyObject *Arena_release(ArenaObject *self, PyObject *args) {
    unsigned long long off, gen;
    int slot = self->slot;
    if (!PyArg_ParseTuple(args, "KK|i", &off, &gen, &slot)) return NULL;
    if (mp_arena_check_alive(self) != 0 || check_slot(slot) != 0) return NULL;
    mp_block *b = valid_block(self, off, gen);
    if (!b) return NULL;
    int freed;
    if (release_ref(self, b, off, gen, slot, &freed) != 0) return NULL;
    return PyBool_FromLong(freed);
}

static PyObject *Arena_share(ArenaObject *self, PyObject *args) {
    unsigned long long off, gen;
    int slot;
    if (!PyArg_ParseTuple(args, "KKi", &off, &gen, &slot)) return NULL;
    if (mp_arena_check_alive(self) != 0 || check_slot(slot) != 0) return NULL;
    mp_block *b = valid_block(self, off, gen);
    if (!b) return NULL;
    /* Only a holder may share: the block cannot be freed concurrently. */
    uint16_t cur = atomic_load(&b->holds[slot]);
    do {
        if (cur == UINT16_MAX)
            return PyErr_Format(mp_TransportError, "too many references to block %llu", off);
    } while (!atomic_compare_exchange_weak(&b->holds[slot], &cur, (uint16_t)(cur + 1)));
    Py_RETURN_NONE;
}

static PyObject *Arena_adopt(ArenaObject *self, PyObject *args) {
    unsigned long long off, gen;
    if (!PyArg_ParseTuple(args, "KK", &off, &gen)) return NULL;
    if (mp_arena_check_alive(self) != 0) return NULL;
    mp_block *b = valid_block(self, off, gen);
    if (!b) return NULL;
    b->writer = 0;
    Py_RETURN_NONE;
}

static PyObject *Arena_block(ArenaObject *self, PyObject *args) {
    unsigned long long off, gen;
    if (!PyArg_ParseTuple(args, "KK", &off, &gen)) return NULL;
    if (mp_arena_check_alive(self) != 0) return NULL;
    mp_block *b = valid_block(self, off, gen);
    if (!b) return NULL;
    return Py_BuildValue("KKI", (unsigned long long)(off + MP_BLOCK_HDR),
                         (unsigned long long)(b->size - MP_BLOCK_HDR), b->writer);
}

static PyObject *Arena_reclaim(ArenaObject *self, PyObject *args) {
    int slot;
    if (!PyArg_ParseTuple(args, "i", &slot)) return NULL;
    if (mp_arena_check_alive(self) != 0 || check_slot(slot) != 0) return NULL;
    if (lock_or_raise(self) != 0) return NULL;
    uint64_t n = mp_reclaim_locked(self->base, slot);
    if (unlock_or_raise(self) != 0) return NULL;
    mp_arena_hdr *h = HDR(self);
    if (n && atomic_load(&h->waiters)) mp_futex_wake(&h->free_seq, 1 << 30);
    return PyLong_FromUnsignedLongLong(n);
}

static PyObject *Arena_check(ArenaObject *self, PyObject *Py_UNUSED(ignored)) {
    if (mp_arena_check_alive(self) != 0) return NULL;
    if (lock_or_raise(self) != 0) return NULL;
    char why[256];
    int rc = mp_check_locked(self->base, why, sizeof why);
    if (unlock_or_raise(self) != 0) return NULL;
    if (rc != 0) return PyErr_Format(mp_TransportError, "arena inconsistent: %s", why);
    Py_RETURN_NONE;
}

static PyObject *Arena_stats(ArenaObject *self, PyObject *Py_UNUSED(ignored)) {
    if (mp_arena_check_alive(self) != 0) return NULL;
    if (lock_or_raise(self) != 0) return NULL;
    mp_arena_hdr *h = HDR(self);
    uint64_t free_bytes = 0, free_blocks = 0, largest = 0, cold = 0;
    for (int c = 0; c < MP_NCLASSES; c++)
        for (uint64_t f = h->free_heads[c]; f; f = ((mp_block *)(self->base + f))->next_free) {
            mp_block *b = (mp_block *)(self->base + f);
            uint64_t s = b->size;
            free_bytes += s;
            free_blocks++;
            if (s > largest) largest = s;
            if (b->cold && f + s > h->initial) /* pages below the floor are never trimmed */
                cold += f + s - (f > h->initial ? f : h->initial);
        }
    PyObject *d = Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:I,s:K,s:K,s:K}", "capacity",
        (unsigned long long)h->capacity, "heap_bytes",
        (unsigned long long)(atomic_load(&h->heap_end) - h->heap_start), "used_bytes",
        (unsigned long long)h->used_bytes, "used_blocks", (unsigned long long)h->used_blocks,
        "peak_used_bytes", (unsigned long long)h->peak_used, "free_bytes",
        (unsigned long long)free_bytes, "free_blocks", (unsigned long long)free_blocks,
        "largest_free_block", (unsigned long long)(largest ? largest - MP_BLOCK_HDR : 0),
        "repairs", (unsigned long long)h->repairs, "reclaimed_blocks",
        (unsigned long long)h->reclaimed, "allocations", (unsigned long long)h->gen_counter, "waiters",
        (unsigned int)atomic_load(&h->waiters), "cold_bytes", (unsigned long long)cold,
        "floor_bytes", (unsigned long long)h->initial, "rewarmed_bytes",
        (unsigned long long)atomic_load(&h->rewarmed));
    if (unlock_or_raise(self) != 0) {
        Py_XDECREF(d);
        return NULL;
    }
    return d;
}

#ifdef MP_TEST_HOOKS
static PyObject *Arena_crash_at(PyObject *Py_UNUSED(cls), PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < INT_MIN || n > INT_MAX)
        return PyErr_Format(PyExc_ValueError, "crash point %ld is out of range", n);
    mp_crash_at = (int)n;
    Py_RETURN_NONE;
}

static PyObject *Arena_no_pidfd(PyObject *Py_UNUSED(cls), PyObject *arg) {
    int flag = PyObject_IsTrue(arg);
    if (flag < 0) return NULL;
    mp_no_pidfd = flag;
    Py_RETURN_NONE;
}

static PyObject *Arena_corrupt_for_tests(ArenaObject *self, PyObject *args) {
    unsigned long long off, value;
    if (!PyArg_ParseTuple(args, "KK", &off, &value)) return NULL;
    if (mp_arena_check_alive(self) != 0) return NULL;
    if (off > self->capacity - 8)
        return PyErr_Format(PyExc_ValueError, "offset %llu is out of range", off);
    memcpy(self->base + off, &value, 8);
    Py_RETURN_NONE;
}
#endif

static int Arena_getbuffer(ArenaObject *self, Py_buffer *view, int flags) {
    if (self->base == NULL) {
        PyErr_SetString(mp_TransportError, "the arena is not mapped");
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)self, self->base, (Py_ssize_t)self->capacity, 0,
                          flags) != 0)
        return -1;
    self->exports++;
    return 0;
}

static void Arena_releasebuffer(ArenaObject *self, Py_buffer *Py_UNUSED(view)) {
    self->exports--;
}

static PyBufferProcs Arena_as_buffer = {(getbufferproc)Arena_getbuffer,
                                        (releasebufferproc)Arena_releasebuffer};

static PyObject *Arena_get_fd(ArenaObject *self, void *Py_UNUSED(c)) { return PyLong_FromLong(self->fd); }
static PyObject *Arena_get_slot(ArenaObject *self, void *Py_UNUSED(c)) { return PyLong_FromLong(self->slot); }
static PyObject *Arena_get_closed(ArenaObject *self, void *Py_UNUSED(c)) { return PyBool_FromLong(self->closed); }
static PyObject *Arena_get_address(ArenaObject *self, void *Py_UNUSED(c)) {
    return PyLong_FromVoidPtr(self->base);
}
static PyObject *Arena_get_capacity(ArenaObject *self, void *Py_UNUSED(c)) {
    return PyLong_FromUnsignedLongLong(self->capacity);
}
static PyObject *Arena_get_heap_end(ArenaObject *self, void *Py_UNUSED(c)) {
    if (!self->base) return PyLong_FromLong(0);
    return PyLong_FromUnsignedLongLong(atomic_load(&HDR(self)->heap_end));
}
static PyObject *Arena_get_rewarmed(ArenaObject *self, void *Py_UNUSED(c)) {
    if (!self->base) return PyLong_FromLong(0);
    return PyLong_FromUnsignedLongLong(atomic_load(&HDR(self)->rewarmed));
}

static PyGetSetDef Arena_getset[] = {
    {"fd", (getter)Arena_get_fd, NULL, "The memfd (-1 once closed).", NULL},
    {"slot", (getter)Arena_get_slot, NULL, "This process's holder slot.", NULL},
    {"closed", (getter)Arena_get_closed, NULL, "Whether close() was called.", NULL},
    {"address", (getter)Arena_get_address, NULL, "Address of the mapping in this process.", NULL},
    {"capacity", (getter)Arena_get_capacity, NULL, "Size of the mapping in bytes.", NULL},
    {"heap_end", (getter)Arena_get_heap_end, NULL, "Current end of the heap.", NULL},
    {"rewarmed", (getter)Arena_get_rewarmed, NULL,
     "Bytes populated past the floor since the last trim.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Arena_methods[] = {
    {"create", (PyCFunction)(void (*)(void))Arena_create, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "create(capacity, initial, grow_step): a new arena over a fresh memfd."},
    {"attach", (PyCFunction)(void (*)(void))Arena_attach, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "attach(fd, slot): map an existing arena; takes ownership of the fd."},
    {"close", (PyCFunction)Arena_close, METH_NOARGS, "Close the fd; unmap when garbage."},
    {"alloc", (PyCFunction)Arena_alloc, METH_VARARGS,
     "alloc(nbytes, timeout=0, max_growth=any) -> (block, gen, room): the heap grows by at "
     "most max_growth bytes."},
    {"populate_floor", (PyCFunction)Arena_populate_floor, METH_NOARGS,
     "Fault the floor in (only where that leaves the pages as they are)."},
    {"trim", (PyCFunction)Arena_trim, METH_VARARGS,
     "trim(keep) -> bytes: give free blocks' pages past offset keep back to the system."},
    {"release", (PyCFunction)Arena_release, METH_VARARGS,
     "release(block, gen[, slot]) -> freed: drop one reference of a slot."},
    {"share", (PyCFunction)Arena_share, METH_VARARGS, "share(block, gen, slot): add a reference for a slot (the caller must hold one)."},
    {"adopt", (PyCFunction)Arena_adopt, METH_VARARGS, "adopt(block, gen): the parent owns it."},
    {"block", (PyCFunction)Arena_block, METH_VARARGS,
     "block(block, gen) -> (data_offset, room, writer); validates the handle."},
    {"reclaim", (PyCFunction)Arena_reclaim, METH_VARARGS,
     "reclaim(slot) -> blocks freed: forget a dead slot."},
    {"check", (PyCFunction)Arena_check, METH_NOARGS, "Verify every invariant of the heap."},
    {"stats", (PyCFunction)Arena_stats, METH_NOARGS, "Allocator statistics."},
#ifdef MP_TEST_HOOKS
    {"_crash_at", (PyCFunction)Arena_crash_at, METH_O | METH_CLASS,
     "Tests only: SIGKILL this process at crash point n (-1: never)."},
    {"_no_pidfd", (PyCFunction)Arena_no_pidfd, METH_O | METH_CLASS,
     "Tests only: rings opened from now on watch their peer as without pidfds."},
    {"_poke", (PyCFunction)Arena_corrupt_for_tests, METH_VARARGS,
     "Tests only: write 8 bytes at an offset."},
#endif
    {NULL, NULL, 0, NULL},
};

PyTypeObject Arena_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mpipe._native.Arena",
    .tp_basicsize = sizeof(ArenaObject),
    .tp_dealloc = (destructor)Arena_dealloc,
    .tp_as_buffer = &Arena_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A shared-memory arena (memfd) with a crash-safe block allocator.",
    .tp_methods = Arena_methods,
    .tp_getset = Arena_getset,
};
