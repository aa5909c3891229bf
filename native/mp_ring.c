/* Single-producer single-consumer rings of fixed-size messages, with eventfd doorbells.
 *
 * A ring lives in an arena block. The producer owns `tail`, the consumer owns `head`; each is
 * published with a release store and read with an acquire load. A consumer about to sleep sets
 * a bit in `consumer_waiting` and re-checks the ring after a full fence; the producer publishes
 * `tail`, fences, and wakes the consumer only when a bit says it may sleep (Dekker's pattern, so
 * no wake-up is ever lost and no syscall is paid while the consumer is busy or spinning).
 * Two ways to sleep: a blocking recv() (a worker) waits on the futex word `wake_seq`, one
 * syscall each way like a pipe; an event loop arms the ring and watches its eventfd.
 */
#include "mp_native.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MP_RING_MAGIC 0x4d5052494e473031ull /* "MPRING01" */
#define MP_WAIT_FUTEX 1u   /* a consumer sleeps in futex_wait on wake_seq */
#define MP_WAIT_EVENTFD 2u /* an event loop watches the eventfd (armed) */
#define MP_PEER_CHECK_S 0.1 /* a sleeping receiver re-checks its peer this often */

typedef struct {
    uint64_t magic;
    uint32_t slot_size;
    uint32_t capacity;
    _Atomic uint32_t closed;
    uint32_t pad0[11];
    _Atomic uint64_t tail; /* producer's line */
    _Atomic uint32_t consumer_waiting; /* MP_WAIT_FUTEX | MP_WAIT_EVENTFD */
    _Atomic uint32_t wake_seq;         /* futex word of a sleeping consumer */
    _Atomic int32_t producer_cpu;      /* where the producer last ran (spinning hint) */
    uint32_t pad1[11];
    _Atomic uint64_t head; /* consumer's line */
    _Atomic uint32_t space_seq;
    _Atomic uint32_t producer_waiting;
    uint32_t pad2[12];
} mp_ring_hdr;
_Static_assert(sizeof(mp_ring_hdr) <= MP_RING_HDR, "ring header size");

typedef struct {
    PyObject_HEAD
    ArenaObject *arena;
    mp_ring_hdr *r;
    char *slots;
    int efd;
    int pidfd;
    int consumer;
    int armed;
    int spin; /* microseconds */
    int misses;    /* adaptive spinning: spins in a row that found nothing */
    int skip;      /* waits that sleep at once after repeated misses */
    int skip_left;
    long peer_pid;
} RingObject;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static PyObject *Ring_format(PyObject *Py_UNUSED(cls), PyObject *args) {
    ArenaObject *arena;
    unsigned long long off;
    unsigned int capacity, slot_size;
    if (!PyArg_ParseTuple(args, "O!KII", &Arena_Type, &arena, &off, &capacity, &slot_size))
        return NULL;
    if (mp_arena_check_alive(arena) != 0) return NULL;
    if (capacity < 2 || (capacity & (capacity - 1)))
        return PyErr_Format(PyExc_ValueError, "ring capacity must be a power of two >= 2, got %u",
                            capacity);
    if (slot_size < 64 || slot_size % 64)
        return PyErr_Format(PyExc_ValueError, "slot_size must be a multiple of 64, got %u",
                            slot_size);
    uint64_t need = MP_RING_HDR + (uint64_t)capacity * slot_size;
    if (off % 64 || off > arena->capacity || need > arena->capacity - off)
        return PyErr_Format(PyExc_ValueError, "ring at offset %llu does not fit the arena", off);
    mp_ring_hdr *r = (mp_ring_hdr *)(arena->base + off);
    memset(r, 0, MP_RING_HDR);
    r->slot_size = slot_size;
    r->capacity = capacity;
    atomic_thread_fence(memory_order_seq_cst);
    r->magic = MP_RING_MAGIC;
    return PyLong_FromUnsignedLongLong(need);
}

static PyObject *Ring_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"arena", "offset", "doorbell", "consumer", "peer_pid", "spin", NULL};
    ArenaObject *arena;
    unsigned long long off;
    int efd, consumer;
    long peer_pid = 0;
    int spin = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!Kip|li", kwlist, &Arena_Type, &arena, &off, &efd,
                                     &consumer, &peer_pid, &spin))
        return NULL;
    if (mp_arena_check_alive(arena) != 0) return NULL;
    if (off % 64 || off > arena->capacity || arena->capacity - off < MP_RING_HDR)
        return PyErr_Format(mp_CorruptMessageError, "no ring at arena offset %llu", off);
    mp_ring_hdr *r = (mp_ring_hdr *)(arena->base + off);
    /* The layout that format() writes, so that no later index or length can leave the ring. */
    if (r->magic != MP_RING_MAGIC || r->capacity < 2 || (r->capacity & (r->capacity - 1)) ||
        r->slot_size < 64 || r->slot_size % 64 ||
        (uint64_t)r->capacity * r->slot_size > arena->capacity - off - MP_RING_HDR)
        return PyErr_Format(mp_CorruptMessageError, "no ring at arena offset %llu", off);
    int pidfd = -1;
    if (peer_pid > 0) {
        pidfd = (int)syscall(SYS_pidfd_open, (pid_t)peer_pid, 0);
#ifdef MP_TEST_HOOKS
        if (mp_no_pidfd && pidfd >= 0) {
            close(pidfd);
            pidfd = -1;
            errno = ENOSYS;
        }
#endif
        if (pidfd < 0) {
            if (errno == ESRCH)
                return PyErr_Format(mp_PeerDiedError, "the ring's peer (pid %ld) is not running",
                                    peer_pid);
            /* No pidfds here (Linux before 5.3, a sandbox that refuses the call): peer_dead
             * asks about the pid instead. */
            if (errno != ENOSYS && errno != EPERM && errno != EACCES)
                return PyErr_SetFromErrno(PyExc_OSError);
        }
    }
    RingObject *self = (RingObject *)type->tp_alloc(type, 0);
    if (!self) {
        if (pidfd >= 0) close(pidfd);
        return NULL;
    }
    Py_INCREF(arena);
    self->arena = arena;
    self->r = r;
    self->slots = (char *)r + MP_RING_HDR;
    self->efd = efd;
    self->pidfd = pidfd;
    self->consumer = consumer;
    self->peer_pid = peer_pid;
    self->spin = spin;
    return (PyObject *)self;
}

static void Ring_dealloc(RingObject *self) {
    if (self->pidfd >= 0) close(self->pidfd);
    Py_XDECREF(self->arena);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int peer_dead(RingObject *self) {
    if (self->pidfd >= 0) {
        struct pollfd p = {self->pidfd, POLLIN, 0};
        return poll(&p, 1, 0) == 1;
    }
    if (self->peer_pid <= 0) return 0;
    /* Without a pidfd: a child of ours that exited is a zombie until reaped, which kill()
     * still finds, so ask waitid first (without reaping it); anyone else is gone once kill()
     * finds no such process. */
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)self->peer_pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0)
        return info.si_pid == (pid_t)self->peer_pid;
    return kill((pid_t)self->peer_pid, 0) != 0 && errno == ESRCH;
}

static inline int ring_empty(mp_ring_hdr *r) {
    return atomic_load_explicit(&r->head, memory_order_relaxed) ==
           atomic_load_explicit(&r->tail, memory_order_acquire);
}

static int role(RingObject *self, int consumer) {
    if (self->arena->closed) {
        PyErr_SetString(mp_TransportError, "the arena is closed");
        return -1;
    }
    if (self->consumer != consumer) {
        PyErr_SetString(PyExc_TypeError, consumer ? "this end of the ring only sends"
                                                  : "this end of the ring only receives");
        return -1;
    }
    return 0;
}

/* Copy one message in; returns 1 if sent, 0 if full. GIL may be released. */
static int push(RingObject *self, const char *data, uint32_t len) {
    mp_ring_hdr *r = self->r;
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    if (t - h >= r->capacity) return 0;
    char *slot = self->slots + (t & (r->capacity - 1)) * (uint64_t)r->slot_size;
    memcpy(slot, &len, 4);
    memcpy(slot + 8, data, len);
    mp_crash_point(8);
    atomic_store_explicit(&r->producer_cpu, sched_getcpu(), memory_order_relaxed);
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst);
    uint32_t waiting = atomic_load_explicit(&r->consumer_waiting, memory_order_relaxed);
    if (waiting & MP_WAIT_FUTEX) {
        atomic_fetch_add(&r->wake_seq, 1);
        mp_futex_wake(&r->wake_seq, 1);
    }
    if (waiting & MP_WAIT_EVENTFD) {
        /* Nothing to report: EAGAIN means the counter is full, so the doorbell already rings;
         * any other failure means the consumer closed its doorbell and watches no more. */
        uint64_t one = 1;
        ssize_t n = write(self->efd, &one, 8);
        (void)n;
    }
    return 1;
}

static PyObject *Ring_send(RingObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"message", "timeout", NULL};
    Py_buffer buf;
    double timeout = -1;
    PyObject *t = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|O", kwlist, &buf, &t)) return NULL;
    if (t != Py_None) {
        timeout = PyFloat_AsDouble(t);
        if (timeout == -1 && PyErr_Occurred()) {
            PyBuffer_Release(&buf);
            return NULL;
        }
    }
    if (role(self, 0) != 0) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    mp_ring_hdr *r = self->r;
    if ((uint64_t)buf.len > r->slot_size - 8) {
        PyErr_Format(PyExc_ValueError, "a ring message holds at most %u bytes, got %zd",
                     r->slot_size - 8, buf.len);
        PyBuffer_Release(&buf);
        return NULL;
    }
    if (atomic_load(&r->closed)) {
        PyBuffer_Release(&buf);
        PyErr_SetString(mp_RingClosedError, "the ring is closed");
        return NULL;
    }
    if (push(self, buf.buf, (uint32_t)buf.len)) {
        PyBuffer_Release(&buf);
        Py_RETURN_NONE;
    }
    int outcome = 0; /* 1 sent, 2 timeout, 3 peer died, 4 closed */
    double deadline = timeout >= 0 ? now_s() + timeout : 0;
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        uint32_t seq = atomic_load(&r->space_seq);
        atomic_store(&r->producer_waiting, 1);
        atomic_thread_fence(memory_order_seq_cst);
        if (push(self, buf.buf, (uint32_t)buf.len)) {
            outcome = 1;
            break;
        }
        if (atomic_load(&r->closed)) { outcome = 4; break; }
        if (peer_dead(self)) { outcome = 3; break; }
        double wait = 0.05; /* bounded so that a dead consumer is noticed */
        if (timeout >= 0) {
            double left = deadline - now_s();
            if (left <= 0) { outcome = 2; break; }
            if (left < wait) wait = left;
        }
        mp_futex_wait(&r->space_seq, seq, wait);
    }
    atomic_store(&r->producer_waiting, 0);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    switch (outcome) {
    case 1: Py_RETURN_NONE;
    case 2: return PyErr_Format(mp_RingFullError, "the ring stayed full for %lld ms", (long long)(timeout * 1000));
    case 3:
        return PyErr_Format(mp_PeerDiedError, "the ring's consumer (pid %ld) died",
                            self->peer_pid);
    default: return PyErr_Format(mp_RingClosedError, "the ring is closed");
    }
}

static PyObject *Ring_try_send(RingObject *self, PyObject *arg) {
    Py_buffer buf;
    if (PyObject_GetBuffer(arg, &buf, PyBUF_SIMPLE) != 0) return NULL;
    if (role(self, 0) != 0) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    if ((uint64_t)buf.len > self->r->slot_size - 8) {
        PyErr_Format(PyExc_ValueError, "a ring message holds at most %u bytes, got %zd",
                     self->r->slot_size - 8, buf.len);
        PyBuffer_Release(&buf);
        return NULL;
    }
    if (atomic_load(&self->r->closed)) {
        PyBuffer_Release(&buf);
        PyErr_SetString(mp_RingClosedError, "the ring is closed");
        return NULL;
    }
    int ok = push(self, buf.buf, (uint32_t)buf.len);
    PyBuffer_Release(&buf);
    return PyBool_FromLong(ok);
}

/* Pop one message into a new bytes object; NULL with no error set when empty. */
static PyObject *pop(RingObject *self) {
    mp_ring_hdr *r = self->r;
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (h == t) return NULL;
    char *slot = self->slots + (h & (r->capacity - 1)) * (uint64_t)r->slot_size;
    uint32_t len;
    memcpy(&len, slot, 4);
    PyObject *out;
    if (len > r->slot_size - 8)
        out = PyErr_Format(mp_CorruptMessageError,
                           "corrupt ring message: length %u exceeds the slot size %u", len,
                           r->slot_size - 8);
    else
        out = PyBytes_FromStringAndSize(slot + 8, len);
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&r->producer_waiting, memory_order_relaxed)) {
        atomic_fetch_add(&r->space_seq, 1);
        mp_futex_wake(&r->space_seq, 1);
    }
    return out;
}

static PyObject *Ring_try_recv(RingObject *self, PyObject *Py_UNUSED(ignored)) {
    if (role(self, 1) != 0) return NULL;
    PyObject *m = pop(self);
    if (m || PyErr_Occurred()) return m;
    Py_RETURN_NONE;
}

/* Spin briefly when spinning has paid lately: when both ends run on different cores the
 * message usually arrives within microseconds; when they share a core, spinning only delays
 * the peer. So: no spin when the producer last ran on this core; and after four misses in a row
 * the receiver sleeps at once for the next 1, 2, 4 ... 1024 waits, then tries a spin again. An
 * isolated miss (a preemption) changes nothing. */
static void adaptive_spin(RingObject *self) {
    mp_ring_hdr *r = self->r;
    if (self->spin <= 0) return;
    /* the producer ran on this very core: it cannot make progress while we spin */
    if (atomic_load_explicit(&r->producer_cpu, memory_order_relaxed) == sched_getcpu()) return;
    if (self->skip_left > 0) {
        self->skip_left--;
        return;
    }
    double until = now_s() + self->spin * 1e-6;
    while (ring_empty(r) && now_s() < until)
        for (int i = 0; i < 32; i++) cpu_relax();
    if (!ring_empty(r)) {
        self->misses = 0;
        self->skip = 0;
    } else if (++self->misses >= 4) {
        self->skip = self->skip ? (self->skip < 1024 ? self->skip * 2 : 1024) : 1;
        self->skip_left = self->skip;
    }
}

static PyObject *Ring_recv(RingObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"timeout", NULL};
    double timeout = -1;
    PyObject *t = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &t)) return NULL;
    if (t != Py_None) {
        timeout = PyFloat_AsDouble(t);
        if (timeout == -1 && PyErr_Occurred()) return NULL;
    }
    if (role(self, 1) != 0) return NULL;
    mp_ring_hdr *r = self->r;
    PyObject *m = pop(self);
    if (m || PyErr_Occurred()) return m;
    int outcome = 0; /* 1 ready, 2 timeout, 3 peer died, 4 closed, 6 signal */
    double deadline = timeout >= 0 ? now_s() + timeout : 0;
    Py_BEGIN_ALLOW_THREADS
    adaptive_spin(self);
    for (;;) {
        if (!ring_empty(r)) { outcome = 1; break; }
        uint32_t seen = atomic_load(&r->wake_seq);
        atomic_fetch_or(&r->consumer_waiting, MP_WAIT_FUTEX);
        atomic_thread_fence(memory_order_seq_cst);
        if (!ring_empty(r)) { outcome = 1; break; }
        if (atomic_load(&r->closed)) { outcome = 4; break; }
        double wait = MP_PEER_CHECK_S;
        if (timeout >= 0) {
            double left = deadline - now_s();
            if (left <= 0) { outcome = 2; break; }
            if (left < wait) wait = left;
        }
        int rc = mp_futex_wait(&r->wake_seq, seen, wait);
        if (rc != 0 && errno == ETIMEDOUT && ring_empty(r) && peer_dead(self)) {
            outcome = 3;
            break;
        }
        if (rc != 0 && errno == EINTR) { outcome = 6; break; }
    }
    atomic_fetch_and(&r->consumer_waiting, ~MP_WAIT_FUTEX);
    Py_END_ALLOW_THREADS
    switch (outcome) {
    case 1: {
        m = pop(self);
        if (m || PyErr_Occurred()) return m;
        Py_RETURN_NONE;
    }
    case 2: Py_RETURN_NONE;
    case 3:
        return PyErr_Format(mp_PeerDiedError, "the ring's producer (pid %ld) died",
                            self->peer_pid);
    case 4: return PyErr_Format(mp_RingClosedError, "the ring is closed and drained");
    default:
        if (PyErr_CheckSignals() != 0) return NULL;
        Py_RETURN_NONE;
    }
}

static PyObject *Ring_arm(RingObject *self, PyObject *Py_UNUSED(ignored)) {
    if (role(self, 1) != 0) return NULL;
    self->armed = 1;
    atomic_fetch_or(&self->r->consumer_waiting, MP_WAIT_EVENTFD);
    atomic_thread_fence(memory_order_seq_cst);
    return PyBool_FromLong(!ring_empty(self->r));
}

static PyObject *Ring_clear_doorbell(RingObject *self, PyObject *Py_UNUSED(ignored)) {
    uint64_t v = 0;
    ssize_t k = read(self->efd, &v, 8);
    if (k < 0 && errno != EAGAIN) return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromUnsignedLongLong(k == 8 ? v : 0);
}

static PyObject *Ring_close(RingObject *self, PyObject *Py_UNUSED(ignored)) {
    if (self->arena->closed) Py_RETURN_NONE;
    atomic_store(&self->r->closed, 1);
    atomic_thread_fence(memory_order_seq_cst);
    atomic_fetch_add(&self->r->wake_seq, 1);
    mp_futex_wake(&self->r->wake_seq, 1 << 30);
    uint64_t one = 1;
    ssize_t n = write(self->efd, &one, 8); /* as in push(): a failure leaves nobody unwoken */
    (void)n;
    atomic_fetch_add(&self->r->space_seq, 1);
    mp_futex_wake(&self->r->space_seq, 1 << 30);
    Py_RETURN_NONE;
}

static PyObject *Ring_peer_alive(RingObject *self, PyObject *Py_UNUSED(ignored)) {
    return PyBool_FromLong(!peer_dead(self));
}

static Py_ssize_t Ring_len(RingObject *self) {
    if (self->arena->closed) return 0;
    return (Py_ssize_t)(atomic_load(&self->r->tail) - atomic_load(&self->r->head));
}

static PyObject *Ring_get_closed(RingObject *self, void *Py_UNUSED(c)) {
    if (self->arena->closed) Py_RETURN_TRUE;
    return PyBool_FromLong(atomic_load(&self->r->closed));
}
static PyObject *Ring_get_max_message(RingObject *self, void *Py_UNUSED(c)) {
    return PyLong_FromLong((long)self->r->slot_size - 8);
}
static PyObject *Ring_get_capacity(RingObject *self, void *Py_UNUSED(c)) {
    return PyLong_FromLong((long)self->r->capacity);
}

static PyGetSetDef Ring_getset[] = {
    {"closed", (getter)Ring_get_closed, NULL, "Whether the ring was closed.", NULL},
    {"max_message", (getter)Ring_get_max_message, NULL, "Largest message in bytes.", NULL},
    {"capacity", (getter)Ring_get_capacity, NULL, "Messages the ring holds.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Ring_methods[] = {
    {"format", (PyCFunction)Ring_format, METH_VARARGS | METH_STATIC,
     "format(arena, offset, capacity, slot_size) -> bytes used: lay out an empty ring."},
    {"send", (PyCFunction)(void (*)(void))Ring_send, METH_VARARGS | METH_KEYWORDS, "send(msg, timeout=None): block while full (None: no limit)."},
    {"try_send", (PyCFunction)Ring_try_send, METH_O, "try_send(msg) -> False when full."},
    {"recv", (PyCFunction)(void (*)(void))Ring_recv, METH_VARARGS | METH_KEYWORDS,
     "recv(timeout=None) -> msg, or None on timeout; spins, then sleeps (None: no limit)."},
    {"try_recv", (PyCFunction)Ring_try_recv, METH_NOARGS, "try_recv() -> msg or None."},
    {"arm", (PyCFunction)Ring_arm, METH_NOARGS,
     "Ask for a doorbell on every message from now on; returns whether messages wait."},
    {"clear_doorbell", (PyCFunction)Ring_clear_doorbell, METH_NOARGS, "Reset the eventfd."},
    {"close", (PyCFunction)Ring_close, METH_NOARGS, "Mark the ring closed and wake both ends."},
    {"peer_alive", (PyCFunction)Ring_peer_alive, METH_NOARGS, "Whether the peer still runs."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Ring_as_sequence = {.sq_length = (lenfunc)Ring_len};

PyTypeObject Ring_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mpipe._native.Ring",
    .tp_basicsize = sizeof(RingObject),
    .tp_dealloc = (destructor)Ring_dealloc,
    .tp_as_sequence = &Ring_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One end of a single-producer single-consumer ring in an arena.",
    .tp_methods = Ring_methods,
    .tp_getset = Ring_getset,
    .tp_new = Ring_new,
};
