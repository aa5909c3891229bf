"""The payload codec: any Python object to a small ring message (+ an arena block) and back.

Message layout (little endian): a 48-byte header ``magic "MP", version, kind, meta length,
block offset, block generation, data start, data length, flags`` followed by ``meta`` bytes.

=============  =======================================================================
kind           payload
=============  =======================================================================
INLINE         ``meta`` is a pickle (protocol 5) of a small value; no block
ARROW          Arrow IPC stream in the block; ``meta[0]`` says table, batch, array or
               chunked array; read back zero-copy
NUMPY          the array's bytes (C order) in the block; ``meta``: dtype and shape
PICKLE         pickle 5 stream and its out-of-band buffers in the block (index first);
               a buffer already in another block is referenced there, not copied
CALLABLE       a pickle of a function or processor (by reference when it is importable,
               else dill bytes: by value), inline or in the block, cached by the receiver
               under a key
CALLABLE_REF   only the key: the receiver has it cached
PICKLE_REFS    like PICKLE, but index and pickle travel inline and every out-of-band
               buffer is a reference into blocks that exist already: nothing is copied
=============  =======================================================================

A message that names a block carries one reference to it for the receiving slot: the encoder
gives the receiver that reference before returning, the decoder takes it over
(:meth:`Arena.lease`). An object that is itself a decoded view of a block (or a numpy view
inside one) is sent on by reference to the same block: no copy.

numpy, pyarrow and dill load only when a payload needs them: an object cannot be an ndarray or
an Arrow table unless numpy or pyarrow is imported already (the encoder looks in
``sys.modules``), decoding an array or table payload imports them, and dill serves only what
plain pickle cannot send (lambdas, closures, functions and classes of ``__main__``). A worker
process that serves plain values therefore imports none of them.
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
import threading
import types
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._arena import Arena, Block
from ._errors import CorruptMessageError, SerializationError
from ._raw import ARROW as _RAW_ARROW
from ._raw import NUMPY as _RAW_NUMPY
from ._raw import ndarray_type, raw_kind

__all__ = ["Codec"]

_HEADER = struct.Struct("<2sBBIQQQQQ")
HEADER_BYTES = _HEADER.size
_MAGIC = b"MP"
_VERSION = 1
INLINE, ARROW, NUMPY, PICKLE, CALLABLE, CALLABLE_REF, PICKLE_REFS = range(7)
_KIND_NAMES = ("inline", "arrow", "numpy", "pickle", "callable", "callable-ref", "pickle-refs")
_TABLE, _BATCH, _ARRAY, _CHUNKED = range(4)
_FLAG_BLOCK = 1
#: Values that pickle small, whole and without buffers: encoded without the checks for
#: arena data, Arrow and numpy. (``int`` subclasses such as ``bool`` are listed apart.)
_SCALARS = frozenset({int, float, bool, type(None), str, bytes, complex})
_PICKLE_INDEX = struct.Struct("<QQQ")  # buffer count, pickle start, pickle length
_PICKLE_ENTRY = struct.Struct("<QQQQ")  # other block (0: this one), its gen, start, length
_ALIGN = 64
#: How a CALLABLE payload was pickled (the byte after its key).
_BY_REFERENCE, _BY_VALUE = 0, 1

if TYPE_CHECKING:
    import numpy as np


#: The header of an inline value, by pickle length: an inline message is that header and the
#: pickle, so encoding is one concatenation and decoding one prefix comparison.
_INLINE_HEADERS: dict[int, bytes] = {}


def _inline_header(meta_len: int) -> bytes:
    header = _INLINE_HEADERS.get(meta_len)
    if header is None:
        header = _INLINE_HEADERS[meta_len] = _HEADER.pack(
            _MAGIC, _VERSION, INLINE, meta_len, 0, 0, 0, 0, 0
        )
    return header


def _unpicklable(exc: Exception) -> SerializationError:
    return SerializationError(f"cannot unpickle the payload: {exc!r}")


def _align(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def _address(view: memoryview) -> int:
    """Address of a contiguous buffer's first byte."""
    if not view.readonly and "numpy" not in sys.modules:
        import ctypes  # a writable buffer needs no numpy to show its address

        return ctypes.addressof(ctypes.c_char.from_buffer(view))
    import numpy as np

    return int(np.frombuffer(view, dtype=np.uint8).__array_interface__["data"][0])


class _Hold:
    """The base of a numpy view of a block's bytes: it keeps the block (and so the arena's
    mapping) alive for as long as the view, or any view made from it, lives. The view is
    read-only: a received block may be shared with other processes."""

    def __init__(self, block: Block, start: int, nbytes: int) -> None:
        self.block = block
        self.__array_interface__ = {
            "version": 3,
            "shape": (nbytes,),
            "typestr": "|u1",
            "data": (block.address + start, True),
        }


def _hold(block: Block, start: int, nbytes: int) -> Any:
    """A read-only ``uint8`` numpy array over ``nbytes`` of ``block`` from ``start`` that keeps
    the block alive (numpy, not pyarrow: a worker that receives arrays needs no pyarrow)."""
    import numpy as np

    return np.asarray(_Hold(block, start, nbytes))


class _NotImportable(Exception):
    """A function or class that the receiver could not import by name."""


class _ReferencePickler(pickle.Pickler):
    """A pickler that refuses functions and classes a worker cannot import by name: those of
    ``__main__`` (the worker's ``__main__`` is not the parent's), lambdas and local ones."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, (types.FunctionType, type)) and (
            getattr(obj, "__module__", None) in ("__main__", None)
            or "<" in getattr(obj, "__qualname__", "<")
        ):
            raise _NotImportable(obj)
        return NotImplemented


def _pickle_by_reference(fn: Any) -> bytes | None:
    """``fn`` pickled by reference (its functions and classes by name), or None when some part
    of it must travel by value (dill)."""
    out = io.BytesIO()
    try:
        _ReferencePickler(out, protocol=5).dump(fn)
    except Exception:
        return None
    return out.getvalue()


def _dumps_error(obj: Any) -> BaseException | None:
    """Why ``obj`` cannot be serialized by pickle nor by dill (None when one of them can)."""
    try:
        pickle.dumps(obj, protocol=5, buffer_callback=lambda b: None)
        return None
    except Exception:
        pass
    import dill

    try:
        dill.dumps(obj, protocol=5, buffer_callback=lambda b: None, recurse=True)
        return None
    except Exception as exc:
        return exc


def _culprit(obj: Any, path: str = "value", depth: int = 0) -> tuple[str, Any, BaseException]:
    """Find the innermost part of ``obj`` that fails to serialize, for the error message."""
    error = _dumps_error(obj) or TypeError("cannot serialize")
    if depth < 8:
        children: list[tuple[str, Any]] = []
        if isinstance(obj, dict):
            children = [(f"{path}[{k!r}]", v) for k, v in obj.items()]
        elif isinstance(obj, (list, tuple, set, frozenset)):
            children = [(f"{path}[{i}]", v) for i, v in enumerate(obj)]
        elif hasattr(obj, "__dict__") and isinstance(vars(obj), dict):
            children = [(f"{path}.{k}", v) for k, v in vars(obj).items()]
        for child_path, child in children:
            if _dumps_error(child) is not None:
                return _culprit(child, child_path, depth + 1)
    return path, obj, error


class Codec:
    """Encode objects into ring messages and arena blocks, and decode them back.

    One codec per process and arena. It also keeps the callables it has sent to each peer (so
    each is sent once) and the callables it has received (so each is unpickled once).

    Args:
        arena: The arena mapped in this process.
        max_message: Largest ring message; smaller values travel inline.
        wait: Seconds an encode waits for arena space (default: the arena's ``wait``).
    """

    def __init__(self, arena: Arena, max_message: int = 440, wait: float | None = None) -> None:
        if max_message < HEADER_BYTES + 8:
            raise ValueError(f"max_message must be at least {HEADER_BYTES + 8} bytes")
        self.arena = arena
        self.max_message = max_message
        self.wait = wait
        self._lock = threading.Lock()
        # id(decoded object) -> (weak ref to it, its block, its message); for sending on
        self._origins: dict[int, tuple[weakref.ref[Any], Block, bytes]] = {}
        self._sent: dict[int, set[str]] = {}  # peer slot -> callable keys it has
        self._keys: dict[int, tuple[Any, str]] = {}  # id(callable) -> (callable, key)
        # (id(callable), peer) -> the reference message, once the peer has the callable
        self._refs: dict[tuple[int, int], bytes] = {}
        self._received: dict[str, Any] = {}
        # key -> why the callable sent under it could not be loaded (its refs fail the same way)
        self._unloadable: dict[str, SerializationError] = {}

    # -- encoding ---------------------------------------------------------------------------

    def encode(self, obj: Any, peer: int) -> bytes:
        """The message that carries ``obj`` to the process holding slot ``peer``.

        Raises:
            SerializationError: ``obj`` (or the part of it named) cannot be serialized.
            PayloadTooLargeError, ArenaFullError: No arena room for the payload.
        """
        if type(obj) in _SCALARS:
            data = pickle.dumps(obj, protocol=5)  # no out-of-band buffers for these
            if HEADER_BYTES + len(data) <= self.max_message:
                return _inline_header(len(data)) + data
            return self._encode_pickle(obj, peer)  # too big to travel inline
        again = self._resend(obj, peer)
        if again is not None:
            return again
        kind = raw_kind(obj)
        if kind is _RAW_ARROW:
            return self._encode_arrow(obj, peer)
        if kind is _RAW_NUMPY:
            return self._encode_numpy(obj, peer)
        return self._encode_pickle(obj, peer)

    def _message(
        self, kind: int, meta: bytes, block: Block | None, start: int, nbytes: int, peer: int
    ) -> bytes:
        if block is None:
            if kind == INLINE:
                return _inline_header(len(meta)) + meta
            return _HEADER.pack(_MAGIC, _VERSION, kind, len(meta), 0, 0, 0, 0, 0) + meta
        block.share(peer)  # the message carries the receiver's reference
        return (
            _HEADER.pack(
                _MAGIC,
                _VERSION,
                kind,
                len(meta),
                block.offset,
                block.gen,
                start,
                nbytes,
                _FLAG_BLOCK,
            )
            + meta
        )

    def _alloc(self, nbytes: int) -> Block:
        return self.arena.alloc(nbytes, self.wait)

    def _resend(self, obj: Any, peer: int) -> bytes | None:
        """A decoded object (or a numpy view into a block) goes on by reference."""
        origin = self._origins.get(id(obj))
        if origin is not None and origin[0]() is obj:
            _, block, message = origin
            block.share(peer)
            return message
        ndarray = ndarray_type()
        if ndarray is None or not isinstance(obj, ndarray):
            return None
        if not obj.dtype.hasobject and obj.flags.c_contiguous:
            address = obj.__array_interface__["data"][0]
            home = self.arena.find(address, obj.nbytes)
            if home is not None:
                meta = self._numpy_meta(obj)
                if meta is not None and HEADER_BYTES + len(meta) <= self.max_message:
                    start = address - home.address
                    return self._message(NUMPY, meta, home, start, obj.nbytes, peer)
        return None

    def _encode_arrow(self, obj: Any, peer: int) -> bytes:
        import pyarrow as pa

        if isinstance(obj, pa.Table):
            sub, table = _TABLE, obj
        elif isinstance(obj, pa.RecordBatch):
            sub, table = _BATCH, obj
        elif isinstance(obj, pa.ChunkedArray):
            sub, table = _CHUNKED, pa.table({"_": obj})
        else:
            sub, table = _ARRAY, pa.record_batch([obj], names=["_"])
        try:
            mock = pa.MockOutputStream()
            self._write_ipc(mock, table)
            nbytes = mock.size()
        except (pa.ArrowException, TypeError) as exc:
            raise SerializationError(
                f"cannot write {type(obj).__name__} as Arrow IPC: {exc}"
            ) from exc
        block = self._alloc(nbytes)
        sink = pa.FixedSizeBufferWriter(pa.py_buffer(block.writable(0, nbytes)))
        self._write_ipc(sink, table)
        sink.close()
        return self._message(ARROW, bytes([sub]), block, 0, nbytes, peer)

    @staticmethod
    def _write_ipc(sink: Any, table: Any) -> None:
        import pyarrow as pa

        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write(table)

    @staticmethod
    def _numpy_meta(arr: np.ndarray) -> bytes | None:
        if arr.dtype.fields is not None or arr.dtype.subdtype is not None:
            return None
        dt = arr.dtype.str.encode()
        return struct.pack(f"<B{len(dt)}sB{arr.ndim}Q", len(dt), dt, arr.ndim, *arr.shape)

    def _encode_numpy(self, arr: np.ndarray, peer: int) -> bytes:
        import numpy as np

        meta = self._numpy_meta(arr)
        if meta is None or HEADER_BYTES + len(meta) > self.max_message:
            return self._encode_pickle(arr, peer)
        if arr.nbytes + HEADER_BYTES + len(meta) <= self.max_message // 2:
            return self._encode_pickle(arr, peer)  # tiny: inline
        block = self._alloc(arr.nbytes)
        dest = np.frombuffer(block.writable(0, arr.nbytes), dtype=arr.dtype).reshape(arr.shape)
        np.copyto(dest, arr, casting="no")
        del dest
        return self._message(NUMPY, meta, block, 0, arr.nbytes, peer)

    def _encode_pickle(self, obj: Any, peer: int) -> bytes:
        buffers: list[pickle.PickleBuffer] = []
        try:
            data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
        except Exception:
            # Instances of local classes, lambdas inside values: dill pickles them by value,
            # and its output loads with plain pickle wherever dill is installed.
            buffers.clear()
            import dill

            try:
                data = dill.dumps(obj, protocol=5, buffer_callback=buffers.append, recurse=True)
            except Exception as exc:
                path, part, error = _culprit(obj)
                raise SerializationError(
                    f"cannot serialize {path} (a {type(part).__name__}): {error}",
                    path=path,
                    type=type(part).__name__,
                ) from exc
        if not buffers and HEADER_BYTES + len(data) <= self.max_message:
            return self._message(INLINE, data, None, 0, 0, peer)
        views = [b.raw() for b in buffers]
        index = _PICKLE_INDEX.size + _PICKLE_ENTRY.size * len(views)
        pos = _align(index + len(data))
        entries: list[tuple[int, int, int, int]] = []
        copies: list[tuple[int, memoryview]] = []
        shared: list[Block] = []
        for view in views:
            home = self.arena.find(_address(view), view.nbytes) if view.nbytes else None
            if home is not None:  # already in the arena: send a reference, not a copy
                shared.append(home)
                entries.append((home.offset, home.gen, _address(view) - home.address, view.nbytes))
                continue
            entries.append((0, 0, pos, view.nbytes))
            copies.append((pos, view))
            pos = _align(pos + view.nbytes)
        if not copies and HEADER_BYTES + index + len(data) <= self.max_message:
            meta = bytearray(index + len(data))
            _PICKLE_INDEX.pack_into(meta, 0, len(views), index, len(data))
            for i, entry in enumerate(entries):
                _PICKLE_ENTRY.pack_into(meta, _PICKLE_INDEX.size + i * _PICKLE_ENTRY.size, *entry)
            meta[index:] = data
            for home in shared:
                home.share(peer)
            return self._message(PICKLE_REFS, bytes(meta), None, 0, 0, peer)
        block = self._alloc(pos)
        out = block.writable(0, pos)
        _PICKLE_INDEX.pack_into(out, 0, len(views), index, len(data))
        for i, entry in enumerate(entries):
            _PICKLE_ENTRY.pack_into(out, _PICKLE_INDEX.size + i * _PICKLE_ENTRY.size, *entry)
        out[index : index + len(data)] = data
        for start, view in copies:
            out[start : start + view.nbytes] = view
        del out
        for home in shared:
            home.share(peer)  # one reference per entry: the receiver leases each
        return self._message(PICKLE, b"", block, 0, pos, peer)

    def encode_callable(self, fn: Any, peer: int, key: str | None = None) -> bytes:
        """The message that gives ``peer`` the callable ``fn``: its pickle the first time,
        afterwards only its key (the peer caches it). An importable function (or an object of
        importable classes) is pickled by reference, which the peer loads without dill; what
        is not (a lambda, a closure, anything of ``__main__``) is pickled by value with dill.

        Raises:
            SerializationError: ``fn`` cannot be serialized with dill.
        """
        ref = self._refs.get((id(fn), peer))
        if ref is not None:  # sent before: the peer has it (the message is the same bytes)
            return ref
        with self._lock:
            known = self._keys.get(id(fn))
            if known is None:
                known = (fn, key if key is not None else f"c{len(self._keys)}:{id(fn)}")
                self._keys[id(fn)] = known  # holds fn: its id is never reused meanwhile
            key = known[1]
            sent = self._sent.setdefault(peer, set())
            if key in sent:
                ref = self._message(CALLABLE_REF, key.encode(), None, 0, 0, peer)
                self._refs[(id(fn), peer)] = ref
                return ref
        how, data = _BY_REFERENCE, _pickle_by_reference(fn)
        if data is None:
            import dill

            try:
                how, data = _BY_VALUE, dill.dumps(fn, protocol=5, recurse=True)
            except Exception as exc:
                raise SerializationError(
                    f"cannot serialize callable {fn!r} with dill: {exc}", key=key
                ) from exc
        keyb = key.encode()
        meta = struct.pack("<H", len(keyb)) + keyb + bytes([how])
        if HEADER_BYTES + len(meta) + len(data) <= self.max_message:
            message = self._message(CALLABLE, meta + data, None, 0, 0, peer)
        else:
            block = self._alloc(len(data))
            block.writable(0, len(data))[:] = data
            message = self._message(CALLABLE, meta, block, 0, len(data), peer)
        with self._lock:
            self._sent.setdefault(peer, set()).add(key)
        return message

    @staticmethod
    def is_callable_ref(message: bytes) -> bool:
        """Whether ``message`` names a callable the receiver already has (the same bytes mean
        the same callable for as long as the sender lives, so a receiver may cache it)."""
        return len(message) >= HEADER_BYTES and message[3] == CALLABLE_REF

    def forget_peer(self, peer: int) -> None:
        """Forget which callables ``peer`` has (it was replaced by a fresh worker)."""
        with self._lock:
            self._sent.pop(peer, None)
            self._refs = {k: v for k, v in self._refs.items() if k[1] != peer}

    # -- decoding ---------------------------------------------------------------------------

    def _open(self, message: bytes) -> tuple[int, bytes, Block | None, int, int]:
        """Validate a message; take over the reference it carries to its block, if any."""
        if len(message) < HEADER_BYTES:
            raise CorruptMessageError(
                f"corrupt message: {len(message)} bytes, shorter than the {HEADER_BYTES}-byte "
                f"header"
            )
        magic, version, kind, meta_len, offset, gen, start, nbytes, flags = _HEADER.unpack_from(
            message
        )
        if magic != _MAGIC or version != _VERSION:
            raise CorruptMessageError(f"corrupt message: bad magic {magic!r} or version {version}")
        if kind >= len(_KIND_NAMES) or HEADER_BYTES + meta_len != len(message):
            raise CorruptMessageError(
                f"corrupt message: kind {kind}, meta length {meta_len}, size {len(message)}"
            )
        meta = message[HEADER_BYTES:]
        block = None
        if flags & _FLAG_BLOCK:
            block = self.arena.lease(offset, gen)
            if start + nbytes > block.size:
                raise CorruptMessageError(
                    f"corrupt message: range {start}+{nbytes} overruns a {block.size}-byte block"
                )
        elif flags or offset or gen:
            raise CorruptMessageError(f"corrupt message: flags {flags} with offset {offset}")
        return kind, meta, block, start, nbytes

    def forward(self, message: bytes, peers: Sequence[int]) -> bytes:
        """Pass a received message on to other processes without decoding it.

        Every block the message names (its own and, for pickles, the blocks its buffers live
        in) gets one reference for each of ``peers``; this process's references are dropped.
        Send the returned message (the same bytes) to each peer.

        Raises:
            CorruptMessageError: The message is malformed or names no live block.
        """
        kind, meta, block, start, nbytes = self._open(message)
        blocks = [] if block is None else [block]
        index: Any = None
        if kind == PICKLE and block is not None:
            index = block.writable(start, start + nbytes).toreadonly()
        elif kind == PICKLE_REFS:
            index = memoryview(meta)
        if index is not None:
            (count, _, _) = _PICKLE_INDEX.unpack_from(index, 0)
            if count > len(index) // _PICKLE_ENTRY.size:
                raise CorruptMessageError("corrupt pickle payload index")
            for i in range(count):
                other, gen, _, _ = _PICKLE_ENTRY.unpack_from(
                    index, _PICKLE_INDEX.size + i * _PICKLE_ENTRY.size
                )
                if other:
                    blocks.append(self.arena.lease(other, gen))
            index.release()
        for held in blocks:
            for peer in peers:
                held.share(peer)
        return message

    def decode(self, message: bytes) -> Any:
        """The object a message carries; Arrow and numpy payloads are zero-copy views.

        Raises:
            CorruptMessageError: The message is malformed or names no live block.
            SerializationError: The payload cannot be unpickled.
        """
        header = _INLINE_HEADERS.get(len(message) - HEADER_BYTES)
        if header is not None and message.startswith(header):
            # The common small value, its whole header checked at once: no block. (pickle.loads
            # right here: this is every small answer's path.)
            try:
                return pickle.loads(message[HEADER_BYTES:])
            except Exception as exc:
                raise _unpicklable(exc) from exc
        kind, meta, block, start, nbytes = self._open(message)
        if kind == INLINE:
            _inline_header(len(meta))  # the next value of this size takes the path above
            return self._unpickle(meta)
        try:
            obj = self._decode(kind, meta, block, start, nbytes)
        except (CorruptMessageError, SerializationError):
            raise
        except (struct.error, ValueError, IndexError) as exc:  # pyarrow.ArrowInvalid included
            raise CorruptMessageError(f"corrupt {_KIND_NAMES[kind]} payload: {exc}") from exc
        if block is not None and kind in (ARROW, NUMPY):
            self._remember(obj, block, message)
        return obj

    def _decode(self, kind: int, meta: bytes, block: Block | None, start: int, nbytes: int) -> Any:
        if kind == CALLABLE_REF:
            key = meta.decode()
            try:
                return self._received[key]
            except KeyError:
                failed = self._unloadable.get(key)
                if failed is not None:  # its pickle came and could not be loaded
                    raise SerializationError(failed.message, **failed.details) from failed.__cause__
                raise CorruptMessageError(
                    f"callable {key!r} was never sent to this process"
                ) from None
        if kind == CALLABLE:
            return self._decode_callable(meta, block, start, nbytes)
        if kind == PICKLE_REFS:
            return self._decode_pickle(memoryview(meta), None, 0, len(meta))
        if block is None:
            raise CorruptMessageError(f"a {_KIND_NAMES[kind]} message names no block")
        if kind == ARROW:
            if len(meta) != 1 or meta[0] > _CHUNKED:
                raise CorruptMessageError("corrupt arrow message: bad subtype")
            import pyarrow as pa

            reader = pa.ipc.open_stream(block.buffer(start, nbytes))
            if meta[0] == _BATCH or meta[0] == _ARRAY:
                batch = reader.read_next_batch()
                return batch if meta[0] == _BATCH else batch.column(0)
            table = reader.read_all()
            return table if meta[0] == _TABLE else table.column(0)
        if kind == NUMPY:
            import numpy as np

            n = meta[0]
            dtype = np.dtype(meta[1 : 1 + n].decode())
            ndim = meta[1 + n]
            shape = struct.unpack_from(f"<{ndim}Q", meta, 2 + n)
            count = int(np.prod(shape, dtype=np.int64))
            if count * dtype.itemsize != nbytes:
                raise CorruptMessageError(
                    f"corrupt numpy message: shape {shape} of {dtype} is not {nbytes} bytes"
                )
            buf = _hold(block, start, nbytes)
            return np.frombuffer(buf, dtype=dtype, count=count).reshape(shape)
        # The index and the pickle are read while ``block`` is held here; only out-of-band
        # buffers outlive this call, each holding its block.
        view = block.writable(start, start + nbytes).toreadonly()
        return self._decode_pickle(view, block, start, nbytes)

    def _decode_pickle(self, view: memoryview, block: Block | None, base: int, nbytes: int) -> Any:
        """Unpickle a PICKLE payload (``view``: its bytes, from ``base`` in ``block``) or a
        PICKLE_REFS one (``block`` None: every buffer lives in another block)."""
        count, at, length = _PICKLE_INDEX.unpack_from(view, 0)
        if count > nbytes // _PICKLE_ENTRY.size or at + length > nbytes:
            raise CorruptMessageError("corrupt pickle payload index")
        buffers = []
        for i in range(count):
            other, gen, b_start, b_len = _PICKLE_ENTRY.unpack_from(
                view, _PICKLE_INDEX.size + i * _PICKLE_ENTRY.size
            )
            if other:
                home = self.arena.lease(other, gen)
                if b_start + b_len > home.size:
                    raise CorruptMessageError("corrupt pickle payload: buffer out of range")
                buffers.append(_hold(home, b_start, b_len))
                continue
            if block is None or b_start + b_len > nbytes:
                raise CorruptMessageError("corrupt pickle payload: buffer out of range")
            buffers.append(_hold(block, base + b_start, b_len))
        data = view[at : at + length]
        try:
            return self._unpickle(data, buffers)
        finally:
            data.release()
            view.release()

    @staticmethod
    def _unpickle(data: Any, buffers: list[Any] | None = None) -> Any:
        try:
            return pickle.loads(data, buffers=buffers)
        except Exception as exc:
            raise _unpicklable(exc) from exc

    def _decode_callable(self, meta: bytes, block: Block | None, start: int, nbytes: int) -> Any:
        (klen,) = struct.unpack_from("<H", meta)
        if len(meta) < 3 + klen or meta[2 + klen] not in (_BY_REFERENCE, _BY_VALUE):
            raise CorruptMessageError("corrupt callable message: bad key or format")
        key = meta[2 : 2 + klen].decode()
        how = meta[2 + klen]
        if block is not None:
            data: Any = block.writable(start, start + nbytes)
        else:
            data = meta[3 + klen :]
        try:
            if how == _BY_VALUE:
                import dill

                fn = dill.loads(bytes(data))
            else:
                fn = pickle.loads(bytes(data))
        except Exception as exc:
            error = SerializationError(f"cannot load callable {key!r}: {exc!r}", key=key)
            self._unloadable[key] = error
            raise error from exc
        self._received[key] = fn
        return fn

    def _remember(self, obj: Any, block: Block, message: bytes) -> None:
        key = id(obj)
        origins = self._origins

        def gone(_: Any, key: int = key) -> None:
            origins.pop(key, None)

        origins[key] = (weakref.ref(obj, gone), block, message)
