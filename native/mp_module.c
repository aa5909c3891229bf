/* Module definition of mpipe._native: types, exception hooks and eventfd doorbells. */
#include "mp_native.h"

#include <sys/eventfd.h>
#include <unistd.h>

#ifdef MP_TEST_HOOKS
#define MP_HAVE_TEST_HOOKS 1
#else
#define MP_HAVE_TEST_HOOKS 0
#endif

#define MP_NEXCEPTIONS 7

PyObject *mp_TransportError, *mp_ArenaFullError, *mp_PayloadTooLargeError, *mp_PeerDiedError,
    *mp_CorruptMessageError, *mp_RingClosedError, *mp_RingFullError;

/* In the order of _set_exceptions' arguments. */
static PyObject **const exception_slots[MP_NEXCEPTIONS] = {
    &mp_TransportError,      &mp_ArenaFullError,  &mp_PayloadTooLargeError, &mp_PeerDiedError,
    &mp_CorruptMessageError, &mp_RingClosedError, &mp_RingFullError,
};

static PyObject *set_exceptions(PyObject *Py_UNUSED(m), PyObject *args) {
    PyObject *e[MP_NEXCEPTIONS];
    if (!PyArg_ParseTuple(args, "OOOOOOO", &e[0], &e[1], &e[2], &e[3], &e[4], &e[5], &e[6]))
        return NULL;
    for (int i = 0; i < MP_NEXCEPTIONS; i++)
        if (!PyExceptionClass_Check(e[i]))
            return PyErr_Format(PyExc_TypeError, "argument %d is not an exception class", i);
    for (int i = 0; i < MP_NEXCEPTIONS; i++) Py_XSETREF(*exception_slots[i], Py_NewRef(e[i]));
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
    PyModuleDef_HEAD_INIT,
    .m_name = "mpipe._native",
    .m_doc = "Shared-memory transport (crash-safe arena allocator, SPSC rings, eventfd "
             "doorbells) and the monitor's row tables.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&Arena_Type) < 0 || PyType_Ready(&Ring_Type) < 0 ||
        PyType_Ready(&Rows_Type) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&native_module);
    if (!m) return NULL;
    /* Until the Python wrapper installs its own classes. */
    PyObject *defaults[MP_NEXCEPTIONS] = {
        PyExc_RuntimeError, PyExc_MemoryError, PyExc_ValueError,   PyExc_BrokenPipeError,
        PyExc_ValueError,   PyExc_EOFError,    PyExc_TimeoutError,
    };
    for (int i = 0; i < MP_NEXCEPTIONS; i++)
        Py_XSETREF(*exception_slots[i], Py_NewRef(defaults[i]));
    if (PyModule_AddType(m, &Arena_Type) < 0 || PyModule_AddType(m, &Ring_Type) < 0 ||
        PyModule_AddType(m, &Rows_Type) < 0 ||
        PyModule_AddIntConstant(m, "BLOCK_HEADER", MP_BLOCK_HDR) < 0 ||
        PyModule_AddIntConstant(m, "ALIGN", MP_ALIGN) < 0 ||
        PyModule_AddIntConstant(m, "MAX_SLOTS", MP_MAX_SLOTS) < 0 ||
        PyModule_AddIntConstant(m, "RING_HEADER", MP_RING_HDR) < 0 ||
        PyModule_AddObjectRef(m, "TEST_HOOKS", MP_HAVE_TEST_HOOKS ? Py_True : Py_False) < 0) {
        for (int i = 0; i < MP_NEXCEPTIONS; i++) Py_CLEAR(*exception_slots[i]);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
