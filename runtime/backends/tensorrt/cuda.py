"""Every CUDA call the TensorRT path makes, in this one module (pycuda; cuda-python could stand in here).

    gpu = Gpu()                     # a context of its own, current in no thread between uses
    with gpu.current():             # a push, and the matching pop at the end: in any thread
        host = gpu.pagelocked((1, 66, 200, 3), numpy.float32)
        dev = gpu.alloc(host.nbytes)
        gpu.copy_in(dev, host); ...; gpu.copy_out(host, dev); gpu.synchronize()
    gpu.close()                     # in any thread, outside `current()`

Every use of the context is inside `with gpu.current():`, and between uses it is on no thread's context
stack. That is what pycuda needs: a thread that ends with a context still on its stack aborts the whole
process (~context_stack, src/cpp/cuda.hpp; seen on an H100), and `Context.pop()` pops whatever is on top,
so two models in one thread (a detector and a classifier) must each push and pop their own. Nothing here
runs at import: no pycuda.autoinit, whose context would stay current in whichever thread imported it.
"""

from __future__ import annotations

import contextlib
import traceback

from ...errors import UserError

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
    """A CUDA context on one device with one stream; current only inside `with gpu.current():`."""

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
        try:
            self.context = self.device.make_context()  # made current in this thread...
        except cuda.Error as exc:
            raise UserError("cannot make a CUDA context on GPU %d (%s): is another process holding it, or is it "
                            "out of memory? (nvidia-smi, or tegrastats on a Jetson)" % (device, exc)) from None
        try:
            self.stream = cuda.Stream()
        except cuda.Error as exc:
            self.context.detach()  # current here: destroyed and popped
            raise UserError("cannot make a CUDA stream on GPU %d (%s)" % (device, exc)) from None
        cuda.Context.pop()  # ...and off this thread's stack until current() puts it back
        self._closed = False

    def info(self) -> dict:
        d, attr = self.device, self.cuda.device_attribute
        return {"name": d.name(), "compute_capability": tuple(d.compute_capability()),
                "sm_count": d.get_attribute(attr.MULTIPROCESSOR_COUNT), "memory": d.total_memory()}

    def _is_current(self) -> bool:
        current = self.cuda.Context.get_current()
        return current is not None and current == self.context

    @contextlib.contextmanager
    def current(self):
        """The context current for the body, in any thread: a push and the matching pop (nothing when it is
        current already, in a nested use)."""
        if self._closed:
            raise RuntimeError("this Gpu is closed")
        if self._is_current():
            yield self
            return
        self.context.push()
        try:
            yield self
        except BaseException as exc:
            # TensorRT and pycuda objects the body made, held by the traceback's frames, go now, while their
            # context is current, not later when the exception is dropped and no context is
            traceback.clear_frames(exc.__traceback__)
            raise
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
        """Release the context, from any thread, outside `current()`: it is pushed here, and detach() destroys
        a context that is current (and pops it), where pycuda would only leak one detached elsewhere."""
        if self._closed:
            return
        if self._is_current():
            raise RuntimeError("Gpu.close() inside `with gpu.current():`; close it after the block")
        self._closed = True
        self.context.push()
        self.stream = None  # its destructor needs the context: current now
        self.context.detach()
