"""FAKE pycuda.driver for tests (no GPU here). Names and signatures follow inducer/pycuda doc/driver.rst.

Device memory is host bytes keyed by a fake pointer; contexts are per-thread stacks as in CUDA. It refuses
what CUDA and pycuda refuse: memory and streams without a current context ("invalid device context"),
async copies from pageable host memory, popping an empty stack, using a detached context.
Env: FAKE_GPU_COUNT (default 1), FAKE_GPU_MEMORY_GB (default 8).
"""

import itertools
import os
import threading

import numpy as np

_local = threading.local()
_memory = {}          # pointer -> np.uint8 array (the "device" bytes)
_next_pointer = itertools.count(0x7F0000000000, 0x100000)
stats = {"allocations": 0, "frees": 0, "htod": 0, "dtoh": 0, "contexts": 0}
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


def _stack():
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def _require_context(what):
    if not _initialized[0]:
        raise LogicError("cuInit has not been called")
    stack = _stack()
    if not stack or stack[-1].detached:
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
        return (8, 7)

    def total_memory(self):
        return int(float(os.environ.get("FAKE_GPU_MEMORY_GB", "8")) * (1 << 30))

    def get_attribute(self, attr):
        return {device_attribute.MULTIPROCESSOR_COUNT: 8, device_attribute.COMPUTE_CAPABILITY_MAJOR: 8,
                device_attribute.COMPUTE_CAPABILITY_MINOR: 7}[attr]

    def make_context(self, flags=0):
        ctx = Context(self)
        _stack().append(ctx)
        stats["contexts"] += 1
        return ctx

    def retain_primary_context(self):
        return Context(self)


class Context:
    def __init__(self, device):
        self.device = device
        self.detached = False

    def push(self):
        if self.detached:
            raise LogicError("cuCtxPushCurrent failed: context was destroyed")
        _stack().append(self)

    @staticmethod
    def pop():
        stack = _stack()
        if not stack:
            raise LogicError("cuCtxPopCurrent failed: invalid device context")
        stack.pop()

    @staticmethod
    def get_current():
        stack = _stack()
        return stack[-1] if stack else None

    def detach(self):
        if self in _stack():
            raise LogicError("context still on this thread's stack at detach: context stack was not empty")
        self.detached = True

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
            stats["frees"] += 1


def mem_alloc(nbytes):
    _require_context("cuMemAlloc")
    stats["allocations"] += 1
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


def device_view(pointer, nbytes):
    """FAKE-only: the bytes at a device pointer (the fake TensorRT reads and writes through it)."""
    return _device_bytes(int(pointer), int(nbytes), "device access")


def _check_async(host, stream, what):
    _require_context(what)
    if not isinstance(host, _PagelockedArray):
        raise LogicError("%s: host memory must be page-locked for asynchronous copies" % what)
    if stream is not None and not isinstance(stream, Stream):
        raise TypeError("stream must be a pycuda.driver.Stream")


def memcpy_htod_async(dest, src, stream=None):
    _check_async(src, stream, "cuMemcpyHtoDAsync")
    stats["htod"] += 1
    _device_bytes(int(dest), src.nbytes, "cuMemcpyHtoDAsync")[:] = np.ascontiguousarray(src).view(np.uint8).ravel()


def memcpy_dtoh_async(dest, src, stream=None):
    _check_async(dest, stream, "cuMemcpyDtoHAsync")
    stats["dtoh"] += 1
    dest.view(np.uint8).ravel()[:] = _device_bytes(int(src), dest.nbytes, "cuMemcpyDtoHAsync")


def memcpy_htod(dest, src):
    _require_context("cuMemcpyHtoD")
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
