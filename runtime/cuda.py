"""Every CUDA call the TensorRT path makes, in this one module (pycuda; cuda-python could stand in here).

    gpu = Gpu()                     # in the thread that will run inference: makes and owns a context
    host = gpu.pagelocked((1, 66, 200, 3), numpy.float32)
    dev = gpu.alloc(host.nbytes)
    gpu.copy_in(dev, host); ...; gpu.copy_out(host, dev); gpu.synchronize()
    gpu.close()

The context is made by the thread that creates the Gpu and stays current there; another thread that must
use it does so inside `with gpu.current():` (a push and the matching pop). Nothing here runs at import:
no pycuda.autoinit, whose context would belong to whichever thread imported it first.
"""

from __future__ import annotations

import contextlib
import threading

from .cli import UserError

PYCUDA_HOWTO = ("on a Jetson, jetson_setup.sh builds it; by hand: PATH=/usr/local/cuda/bin:$PATH "
                "pip install pycuda (it compiles against CUDA, so nvcc must be on PATH)")


def load_pycuda():
    """pycuda.driver, or a UserError saying how to get it."""
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise UserError("pycuda is not installed or does not load (%s): %s" % (exc, PYCUDA_HOWTO)) from None
    return cuda


def gpu_count() -> int:
    """How many CUDA GPUs the driver sees; 0 when pycuda or the driver is missing."""
    try:
        cuda = load_pycuda()
        cuda.init()
        return cuda.Device.count()
    except Exception:  # no driver, no device, no pycuda: all mean "no GPU here"
        return 0


class Gpu:
    """A CUDA context on one device with one stream, owned by the thread that made it."""

    def __init__(self, device: int = 0):
        cuda = self.cuda = load_pycuda()
        try:
            cuda.init()
            count = cuda.Device.count()
        except cuda.Error as exc:
            raise UserError("CUDA does not start (%s): is the NVIDIA driver loaded?" % exc) from None
        if device >= count:
            raise UserError("no CUDA GPU %d here (%d found)" % (device, count))
        self.device = cuda.Device(device)
        self.context = self.device.make_context()  # current in this thread from now on
        self.owner = threading.get_ident()
        self.owner_thread = threading.current_thread()
        self.stream = cuda.Stream()
        self._closed = False

    def info(self) -> dict:
        d, attr = self.device, self.cuda.device_attribute
        return {"name": d.name(), "compute_capability": tuple(d.compute_capability()),
                "sm_count": d.get_attribute(attr.MULTIPROCESSOR_COUNT), "memory": d.total_memory()}

    @contextlib.contextmanager
    def current(self):
        """Make the context current for the body: nothing to do in its own thread, push/pop in another."""
        if threading.get_ident() == self.owner:
            yield self
            return
        self.context.push()
        try:
            yield self
        finally:
            self.cuda.Context.pop()

    def pagelocked(self, shape, dtype):
        return self.cuda.pagelocked_empty(tuple(shape), dtype)

    def alloc(self, nbytes: int):
        return self.cuda.mem_alloc(max(int(nbytes), 1))

    @staticmethod
    def pointer(allocation) -> int:
        return int(allocation)

    @staticmethod
    def free(allocation):
        allocation.free()

    @property
    def stream_handle(self) -> int:
        return self.stream.handle

    def copy_in(self, device_buffer, host_array):
        self.cuda.memcpy_htod_async(device_buffer, host_array, self.stream)

    def copy_out(self, host_array, device_buffer):
        self.cuda.memcpy_dtoh_async(host_array, device_buffer, self.stream)

    def synchronize(self):
        self.stream.synchronize()

    def close(self):
        """Pop and release the context, in the thread that made it. pycuda destroys a context only where it
        is current or in the thread that made it (context::detach, src/cpp/cuda.hpp), and a thread that ends
        with a context still on its stack aborts the whole process (~context_stack; seen on an H100). So the
        owner closes its own, before it ends; from any other thread this is refused."""
        if self._closed:
            return
        if threading.get_ident() != self.owner:
            raise RuntimeError("Gpu.close() from thread %r: the CUDA context belongs to thread %r; close it there, "
                               "before that thread ends (pycuda leaks it from here, and aborts the process when "
                               "its thread ends with it current)"
                               % (threading.current_thread().name, self.owner_thread.name))
        self._closed = True
        self.stream = None
        self.cuda.Context.pop()
        self.context.detach()
