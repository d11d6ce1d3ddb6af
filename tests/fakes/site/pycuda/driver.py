"""FAKE pycuda.driver for tests (no GPU here). Names and signatures follow inducer/pycuda doc/driver.rst.

Device memory is host bytes keyed by a fake pointer; contexts are per-thread stacks as in CUDA. It refuses
what CUDA and pycuda refuse: memory and streams without a current context ("invalid device context"),
non-contiguous host arrays, popping an empty stack, using a destroyed context. Like pycuda (src/cpp/cuda.hpp,
context::detach) a context's detach() destroys it only where it is current or in the thread that made it;
in any other thread it is leaked silently (counted in fake_stats["leaked_contexts"]). A thread that ends with
a context still on its stack makes real pycuda abort the whole process (context_stack's destructor; seen on an
H100): the fake prints pycuda's message and counts it (fake_stats["aborts"]) instead. Async copies from
pageable host memory work, as in CUDA, but synchronously (counted in fake_stats["pageable_copies"]).
Everything here that is not pycuda's API is named fake_* or _*.
Env: FAKE_GPU_COUNT (default 1), FAKE_GPU_MEMORY_GB (default 8), FAKE_GPU_CC (default 8.7).
"""

import itertools
import os
import threading

import numpy as np

_local = threading.local()
_memory = {}          # pointer -> np.uint8 array (the "device" bytes)
_next_pointer = itertools.count(0x7F0000000000, 0x100000)
fake_stats = {"allocations": 0, "frees": 0, "htod": 0, "dtoh": 0, "contexts": 0, "destroyed_contexts": 0,
              "leaked_contexts": 0, "pageable_copies": 0, "aborts": 0}
_initialized = [False]


class Error(Exception):
    pass


class LogicError(Error):
    pass


class device_attribute:  # noqa: N801 (pycuda's name)
    MULTIPROCESSOR_COUNT = 16
    COMPUTE_CAPABILITY_MAJOR = 75
    COMPUTE_CAPABILITY_MINOR = 76


def init(flags=0):
    _initialized[0] = True


class _FakeContextStack(list):
    """One thread's context stack; when the thread ends, pycuda's ~context_stack aborts if it is not empty."""

    def __del__(self):
        if self:
            fake_stats["aborts"] += 1
            import sys

            print("PyCUDA ERROR: The context stack was not empty upon module cleanup. (FAKE: real pycuda aborts "
                  "the process here)", file=sys.stderr)


def _stack():
    if not hasattr(_local, "stack"):
        _local.stack = _FakeContextStack()
    return _local.stack


def _require_context(what):
    if not _initialized[0]:
        raise LogicError("cuInit has not been called")
    stack = _stack()
    if not stack or not stack[-1].fake_alive:
        raise LogicError("%s failed: invalid device context" % what)
    return stack[-1]


class Device:
    def __init__(self, number):
        if not _initialized[0]:
            raise LogicError("cuInit has not been called")
        if not 0 <= number < Device.count():
            raise LogicError("cuDeviceGet failed: invalid device ordinal")
        self.number = number

    @staticmethod
    def count():
        if not _initialized[0]:
            raise LogicError("cuInit has not been called")
        return int(os.environ.get("FAKE_GPU_COUNT", "1"))

    def name(self):
        return "FAKE Orin (nvgpu)"

    def compute_capability(self):
        major, minor = os.environ.get("FAKE_GPU_CC", "8.7").split(".")
        return (int(major), int(minor))

    def total_memory(self):
        return int(float(os.environ.get("FAKE_GPU_MEMORY_GB", "8")) * (1 << 30))

    def get_attribute(self, attr):
        major, minor = self.compute_capability()
        return {device_attribute.MULTIPROCESSOR_COUNT: 8, device_attribute.COMPUTE_CAPABILITY_MAJOR: major,
                device_attribute.COMPUTE_CAPABILITY_MINOR: minor}[attr]

    def make_context(self, flags=0):
        ctx = Context(self)
        _stack().append(ctx)
        fake_stats["contexts"] += 1
        return ctx

    def retain_primary_context(self):
        return Context(self)


class Context:
    def __init__(self, device):
        self.device = device
        self.fake_alive = True  # False once destroyed
        self._fake_valid = True  # pycuda's m_valid: False after detach(), destroyed or leaked
        self._fake_thread = threading.get_ident()  # pycuda's m_thread

    def push(self):
        if not self.fake_alive:
            raise LogicError("cuCtxPushCurrent failed: invalid device context")
        _stack().append(self)

    @staticmethod
    def pop():
        stack = _stack()
        if not stack:
            raise LogicError("context::pop failed: invalid device context - cannot pop non-current context")
        stack.pop()

    @staticmethod
    def get_current():
        stack = _stack()
        return stack[-1] if stack else None

    def detach(self):
        if not self._fake_valid:
            raise LogicError("context::detach failed: invalid device context - cannot detach from invalid context")
        stack = _stack()
        if (stack and stack[-1] is self) or self._fake_thread == threading.get_ident():
            if stack and stack[-1] is self:
                stack.pop()  # destroying the current context pops it
            self.fake_alive = False
            fake_stats["destroyed_contexts"] += 1
        else:  # pycuda: "this context's managing thread has exited": nothing is destroyed
            fake_stats["leaked_contexts"] += 1
        self._fake_valid = False

    def synchronize(self):
        _require_context("cuCtxSynchronize")


class DeviceAllocation:
    def __init__(self, nbytes):
        self.pointer = next(_next_pointer)
        self.nbytes = nbytes
        _memory[self.pointer] = np.zeros(nbytes, np.uint8)

    def __int__(self):
        return self.pointer

    __index__ = __int__

    def free(self):
        _require_context("cuMemFree")
        if _memory.pop(self.pointer, None) is not None:
            fake_stats["frees"] += 1


def mem_alloc(nbytes):
    _require_context("cuMemAlloc")
    fake_stats["allocations"] += 1
    return DeviceAllocation(int(nbytes))


class _PagelockedArray(np.ndarray):
    """What pagelocked_empty gives (pycuda's arrays are backed by a HostAllocation)."""


def pagelocked_empty(shape, dtype, order="C", mem_flags=0):
    _require_context("cuMemHostAlloc")
    return np.empty(shape, dtype, order=order).view(_PagelockedArray)


def _device_bytes(pointer, nbytes, what):
    for start, block in _memory.items():
        if start <= pointer and pointer + nbytes <= start + block.size:
            return block[pointer - start:pointer - start + nbytes]
    raise LogicError("%s failed: an illegal memory access (pointer %#x, %d bytes)" % (what, pointer, nbytes))


def fake_device_view(pointer, nbytes):
    """The bytes at a device pointer (the fake TensorRT reads and writes through it)."""
    return _device_bytes(int(pointer), int(nbytes), "device access")


def _host(array, what):
    """pycuda reads host arrays through the buffer protocol, contiguous only."""
    if not (array.flags.c_contiguous or array.flags.f_contiguous):
        raise ValueError("%s: ndarray is not contiguous" % what)
    return array


def _check_async(host, stream, what):
    _require_context(what)
    _host(host, what)
    if not isinstance(host, _PagelockedArray):
        fake_stats["pageable_copies"] += 1  # CUDA copies pageable memory synchronously
    if stream is not None and not isinstance(stream, Stream):
        raise TypeError("stream must be a pycuda.driver.Stream")


def memcpy_htod_async(dest, src, stream=None):
    _check_async(src, stream, "cuMemcpyHtoDAsync")
    fake_stats["htod"] += 1
    _device_bytes(int(dest), src.nbytes, "cuMemcpyHtoDAsync")[:] = np.ascontiguousarray(src).view(np.uint8).ravel()


def memcpy_dtoh_async(dest, src, stream=None):
    _check_async(dest, stream, "cuMemcpyDtoHAsync")
    fake_stats["dtoh"] += 1
    dest.view(np.uint8).reshape(-1)[:] = _device_bytes(int(src), dest.nbytes, "cuMemcpyDtoHAsync")


def memcpy_htod(dest, src):
    _require_context("cuMemcpyHtoD")
    _host(src, "cuMemcpyHtoD")
    _device_bytes(int(dest), src.nbytes, "cuMemcpyHtoD")[:] = np.ascontiguousarray(src).view(np.uint8).ravel()


class Stream:
    _handles = itertools.count(0x5000)

    def __init__(self, flags=0):
        _require_context("cuStreamCreate")
        self.handle = next(Stream._handles)

    def synchronize(self):
        _require_context("cuStreamSynchronize")

    def is_done(self):
        return True
