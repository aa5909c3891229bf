/* Module definition of mpipe._native: types, exception hooks and eventfd doorbells. */
#include "mp_native.h"

#include <sys/eventfd.h>
#include <unistd.h>

PyObject *mp_TransportError, *mp_ArenaFullError, *mp_PayloadTooLargeError, *mp_PeerDiedError,
    *mp_CorruptMessageError, *mp_RingClosedError, *mp_RingFullError;

static PyObject *set_exceptions(PyObject *Py_UNUSED(m), PyObject *args) {
    PyObject *e[7];
    if (!PyArg_ParseTuple(args, "OOOOOOO", &e[0], &e[1], &e[2], &e[3], &e[4], &e[5], &e[6]))
        return NULL;
    PyObject **slots[7] = {&mp_TransportError,      &mp_ArenaFullError,  &mp_PayloadTooLargeError,
                           &mp_PeerDiedError,       &mp_CorruptMessageError, &mp_RingClosedError,
                           &mp_RingFullError};
    for (int i = 0; i < 7; i++) {
        if (!PyExceptionClass_Check(e[i]))
            return PyErr_Format(PyExc_TypeError, "argument %d is not an exception class", i);
        Py_INCREF(e[i]);
        Py_XSETREF(*slots[i], e[i]);
    }
    Py_RETURN_NONE;
}

static PyObject *doorbell(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(args)) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(fd);
}

static PyMethodDef module_methods[] = {
    {"_set_exceptions", set_exceptions, METH_VARARGS, "Install the Python exception classes."},
    {"doorbell", doorbell, METH_NOARGS, "A new non-blocking, close-on-exec eventfd."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "mpipe._native",
    "Shared-memory transport (crash-safe arena allocator, SPSC rings, eventfd doorbells) and "
    "the monitor's row tables.", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *m = PyModule_Create(&native_module);
    if (!m) return NULL;
    PyObject *defaults[] = {PyExc_RuntimeError, PyExc_MemoryError, PyExc_ValueError,
                            PyExc_BrokenPipeError, PyExc_ValueError, PyExc_EOFError,
                            PyExc_TimeoutError};
    PyObject **slots[7] = {&mp_TransportError,      &mp_ArenaFullError,  &mp_PayloadTooLargeError,
                           &mp_PeerDiedError,       &mp_CorruptMessageError, &mp_RingClosedError,
                           &mp_RingFullError};
    for (int i = 0; i < 7; i++) {
        Py_INCREF(defaults[i]);
        *slots[i] = defaults[i];
    }
    if (PyType_Ready(&Arena_Type) < 0 || PyType_Ready(&Ring_Type) < 0 ||
        PyType_Ready(&Rows_Type) < 0)
        return NULL;
    Py_INCREF(&Arena_Type);
    Py_INCREF(&Ring_Type);
    Py_INCREF(&Rows_Type);
    if (PyModule_AddObject(m, "Arena", (PyObject *)&Arena_Type) < 0 ||
        PyModule_AddObject(m, "Ring", (PyObject *)&Ring_Type) < 0 ||
        PyModule_AddObject(m, "Rows", (PyObject *)&Rows_Type) < 0)
        return NULL;
    PyModule_AddIntConstant(m, "BLOCK_HEADER", MP_BLOCK_HDR);
    PyModule_AddIntConstant(m, "ALIGN", MP_ALIGN);
    PyModule_AddIntConstant(m, "MAX_SLOTS", MP_MAX_SLOTS);
    PyModule_AddIntConstant(m, "RING_HEADER", 256);
    return m;
}
