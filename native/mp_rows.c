/* Rows: an append-only table of (text, integer, float, float, text) rows in C arrays.
 *
 * The scheduler appends one row per firing of a monitored run (processor id, index, start,
 * end, worker) with one call and no new Python object; the monitor reads the columns later
 * (as lists, or floats as bytes for numpy). The text fields hold strings (or None for the
 * last), which cannot form reference cycles, so the type is not tracked by the GC.
 */
#include "mp_native.h"

#include <structmember.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    Py_ssize_t n, cap, limit;
    PyObject **a;   /* str */
    long long *i;
    double *s, *e;
    PyObject **w;   /* str or None */
} RowsObject;

/* The most rows a table may hold: every column's byte size fits in a Py_ssize_t. */
#define ROWS_MAX (PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(long long) / 2)

static int rows_grow(RowsObject *self, Py_ssize_t extra) {
    if (extra > ROWS_MAX - self->n) {
        PyErr_Format(PyExc_OverflowError, "a row table holds at most %zd rows", ROWS_MAX);
        return -1;
    }
    Py_ssize_t need = self->n + extra;
    if (need <= self->cap) return 0;
    Py_ssize_t cap = self->cap ? self->cap : 64;
    while (cap < need) cap = cap > ROWS_MAX / 2 ? ROWS_MAX : cap * 2;
    PyObject **a = PyMem_Realloc(self->a, cap * sizeof(PyObject *));
    if (a) self->a = a;
    long long *i = PyMem_Realloc(self->i, cap * sizeof(long long));
    if (i) self->i = i;
    double *s = PyMem_Realloc(self->s, cap * sizeof(double));
    if (s) self->s = s;
    double *e = PyMem_Realloc(self->e, cap * sizeof(double));
    if (e) self->e = e;
    PyObject **w = PyMem_Realloc(self->w, cap * sizeof(PyObject *));
    if (w) self->w = w;
    if (!a || !i || !s || !e || !w) {
        PyErr_NoMemory();
        return -1;
    }
    self->cap = cap;
    return 0;
}

static void rows_drop(RowsObject *self, Py_ssize_t keep) {
    for (Py_ssize_t k = keep; k < self->n; k++) {
        Py_DECREF(self->a[k]);
        Py_DECREF(self->w[k]);
    }
    if (keep < self->n) self->n = keep;
}

static PyObject *Rows_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"limit", NULL};
    Py_ssize_t limit = PY_SSIZE_T_MAX;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n", kwlist, &limit)) return NULL;
    RowsObject *self = (RowsObject *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    self->limit = limit;
    return (PyObject *)self;
}

static void Rows_dealloc(RowsObject *self) {
    rows_drop(self, 0);
    PyMem_Free(self->a);
    PyMem_Free(self->i);
    PyMem_Free(self->s);
    PyMem_Free(self->e);
    PyMem_Free(self->w);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Parse (a, i, s, e, w) of a row; 0 on success. */
static int parse_row(PyObject *const *args, long long *i, double *s, double *e) {
    /* Exact str (no subclass that could carry references into a cycle: the table is not
     * tracked by the garbage collector). */
    if (!PyUnicode_CheckExact(args[0])) {
        PyErr_Format(PyExc_TypeError, "row id must be a str, not %.100s",
                     Py_TYPE(args[0])->tp_name);
        return -1;
    }
    if (args[4] != Py_None && !PyUnicode_CheckExact(args[4])) {
        PyErr_Format(PyExc_TypeError, "row worker must be a str or None, not %.100s",
                     Py_TYPE(args[4])->tp_name);
        return -1;
    }
    *i = PyLong_AsLongLong(args[1]);
    if (*i == -1 && PyErr_Occurred()) return -1;
    *s = PyFloat_AsDouble(args[2]);
    if (*s == -1.0 && PyErr_Occurred()) return -1;
    *e = PyFloat_AsDouble(args[3]);
    if (*e == -1.0 && PyErr_Occurred()) return -1;
    return 0;
}

/* Append ``count`` rows of ``args`` (id, first integer, start, end, worker): integers first,
 * first + 1, ...; answer whether the table now holds ``limit`` rows or more. */
static PyObject *rows_append(RowsObject *self, PyObject *const *args, Py_ssize_t count) {
    long long i;
    double s, e;
    if (parse_row(args, &i, &s, &e) < 0) return NULL;
    if (count < 0) return PyErr_Format(PyExc_ValueError, "count must be >= 0, got %zd", count);
    if (rows_grow(self, count) < 0) return NULL;
    for (Py_ssize_t j = 0; j < count; j++) {
        Py_ssize_t k = self->n++;
        Py_INCREF(args[0]);
        self->a[k] = args[0];
        self->i[k] = i + j;
        self->s[k] = s;
        self->e[k] = e;
        Py_INCREF(args[4]);
        self->w[k] = args[4];
    }
    if (self->n >= self->limit) Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

static PyObject *Rows_add(RowsObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5)
        return PyErr_Format(PyExc_TypeError, "add() takes 5 arguments (%zd given)", nargs);
    return rows_append(self, args, 1);
}

static PyObject *Rows_add_run(RowsObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6)
        return PyErr_Format(PyExc_TypeError, "add_run() takes 6 arguments (%zd given)", nargs);
    Py_ssize_t count = PyLong_AsSsize_t(args[5]);
    if (count == -1 && PyErr_Occurred()) return NULL;
    return rows_append(self, args, count);
}

/* Clamp [start, stop) to [0, n]. */
static int parse_range(RowsObject *self, PyObject *args, Py_ssize_t *start, Py_ssize_t *stop) {
    *start = 0;
    *stop = self->n;
    if (!PyArg_ParseTuple(args, "|nn", start, stop)) return -1;
    if (*stop > self->n) *stop = self->n;
    if (*start < 0) *start = 0;
    if (*start > *stop) *start = *stop;
    return 0;
}

static PyObject *Rows_rows(RowsObject *self, PyObject *args) {
    Py_ssize_t start, stop;
    if (parse_range(self, args, &start, &stop) < 0) return NULL;
    PyObject *out = PyList_New(stop - start);
    if (!out) return NULL;
    for (Py_ssize_t k = start; k < stop; k++) {
        PyObject *row = Py_BuildValue("(OLddO)", self->a[k], self->i[k], self->s[k], self->e[k],
                                      self->w[k]);
        if (!row) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, k - start, row);
    }
    return out;
}

static PyObject *Rows_ids(RowsObject *self, PyObject *args) {
    Py_ssize_t start, stop;
    if (parse_range(self, args, &start, &stop) < 0) return NULL;
    PyObject *out = PyList_New(stop - start);
    if (!out) return NULL;
    for (Py_ssize_t k = start; k < stop; k++) {
        Py_INCREF(self->a[k]);
        PyList_SET_ITEM(out, k - start, self->a[k]);
    }
    return out;
}

static PyObject *Rows_ints(RowsObject *self, PyObject *args) {
    Py_ssize_t start, stop;
    if (parse_range(self, args, &start, &stop) < 0) return NULL;
    return PyBytes_FromStringAndSize((const char *)(self->i + start),
                                     (stop - start) * (Py_ssize_t)sizeof(long long));
}

static PyObject *floats_of(double *col, RowsObject *self, PyObject *args) {
    Py_ssize_t start, stop;
    if (parse_range(self, args, &start, &stop) < 0) return NULL;
    return PyBytes_FromStringAndSize((const char *)(col + start),
                                     (stop - start) * (Py_ssize_t)sizeof(double));
}

static PyObject *Rows_starts(RowsObject *self, PyObject *args) {
    return floats_of(self->s, self, args);
}

static PyObject *Rows_ends(RowsObject *self, PyObject *args) {
    return floats_of(self->e, self, args);
}

static PyObject *Rows_cut(RowsObject *self, PyObject *arg) {
    Py_ssize_t keep = PyLong_AsSsize_t(arg);
    if (keep == -1 && PyErr_Occurred()) return NULL;
    if (keep < 0) return PyErr_Format(PyExc_ValueError, "keep must be >= 0, got %zd", keep);
    Py_ssize_t dropped = self->n > keep ? self->n - keep : 0;
    rows_drop(self, keep);
    return PyLong_FromSsize_t(dropped);
}

static Py_ssize_t Rows_len(RowsObject *self) { return self->n; }

static PySequenceMethods Rows_as_sequence = {.sq_length = (lenfunc)Rows_len};

static PyMethodDef Rows_methods[] = {
    {"add", (PyCFunction)(void (*)(void))Rows_add, METH_FASTCALL,
     "add(id, integer, start, end, worker) -> bool: append a row; True when the table now "
     "holds ``limit`` rows or more."},
    {"add_run", (PyCFunction)(void (*)(void))Rows_add_run, METH_FASTCALL,
     "add_run(id, first, start, end, worker, count) -> bool: append ``count`` rows whose "
     "integers are first, first + 1, ...; True when the table holds ``limit`` rows or more."},
    {"rows", (PyCFunction)Rows_rows, METH_VARARGS,
     "rows([start[, stop]]) -> list of (id, integer, start, end, worker) tuples."},
    {"ids", (PyCFunction)Rows_ids, METH_VARARGS, "ids([start[, stop]]) -> list of the ids."},
    {"ints", (PyCFunction)Rows_ints, METH_VARARGS,
     "ints([start[, stop]]) -> bytes: the integers as native int64."},
    {"starts", (PyCFunction)Rows_starts, METH_VARARGS,
     "starts([start[, stop]]) -> bytes: the first floats as native float64."},
    {"ends", (PyCFunction)Rows_ends, METH_VARARGS,
     "ends([start[, stop]]) -> bytes: the second floats as native float64."},
    {"cut", (PyCFunction)Rows_cut, METH_O,
     "cut(keep) -> int: drop the rows past the first ``keep``; return how many."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Rows_members[] = {
    {"limit", T_PYSSIZET, offsetof(RowsObject, limit), 0,
     "add() and add_run() answer True once the table holds this many rows."},
    {NULL, 0, 0, 0, NULL},
};

PyTypeObject Rows_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mpipe._native.Rows",
    .tp_basicsize = sizeof(RowsObject),
    .tp_dealloc = (destructor)Rows_dealloc,
    .tp_as_sequence = &Rows_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Rows(limit=...): an append-only table of (str, int, float, float, str or None) "
              "rows kept in C arrays.",
    .tp_methods = Rows_methods,
    .tp_members = Rows_members,
    .tp_new = Rows_new,
};
