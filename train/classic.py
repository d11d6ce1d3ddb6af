"""MNIST and CIFAR-10 read from their own files on disk, never downloaded: `--data mnist:PATH`, `cifar10:PATH`.

    mnist:PATH    a folder with the four IDX files as LeCun's site and its mirrors give them
                  (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
                  t10k-labels-idx1-ubyte; gzipped or not, "-idx3" or ".idx3"), or Keras's mnist.npz
    cifar10:PATH  cifar-10-python.tar.gz or cifar-10-binary.tar.gz as downloaded, or the folder either
                  unpacks to (cifar-10-batches-py/ with data_batch_1..5 and test_batch, or
                  cifar-10-batches-bin/ with data_batch_1.bin..5 and test_batch.bin), or its parent

The python batches are pickles; they are read by an unpickler that builds only plain containers and numpy
arrays, so a crafted file cannot run code. Each reader returns (x_train, y_train, x_test, y_test, labels) with
uint8 images N x H x W (MNIST) or N x 32 x 32 x 3 RGB (CIFAR-10) and int64 labels.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile

import numpy as np

from runtime.errors import UserError

MNIST_FILES = {"x_train": "train-images", "y_train": "train-labels", "x_test": "t10k-images", "y_test": "t10k-labels"}
CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR_TRAIN = ["data_batch_%d" % i for i in range(1, 6)]


# -- MNIST ----------------------------------------------------------------------------------------------------
def _mnist_file(folder, stem, dims):
    for sep in ("-", "."):
        for suffix in ("", ".gz"):
            path = os.path.join(folder, "%s%sidx%d-ubyte%s" % (stem, sep, dims, suffix))
            if os.path.isfile(path):
                return path
    raise UserError("mnist:%s: no %s-idx%d-ubyte[.gz] there (the four IDX files of MNIST, or mnist.npz)"
                    % (folder, stem, dims))


def read_idx(path):
    """One IDX file (LeCun's format: a magic number naming the type and the number of dimensions, the
    dimensions as big-endian int32, then the data) as a uint8 array."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise UserError("%s: cannot read it (%s)" % (path, exc)) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UserError("%s is not an IDX file of unsigned bytes (MNIST's format)" % path)
    ndim = data[3]
    head = 4 + 4 * ndim
    if len(data) < head:
        raise UserError("%s is cut short (its header)" % path)
    shape = tuple(int(d) for d in np.frombuffer(data[4:head], dtype=">i4"))
    if len(data) - head != int(np.prod(shape)):
        raise UserError("%s holds %d bytes of data, not the %d its header (%s) says"
                        % (path, len(data) - head, int(np.prod(shape)), " x ".join(map(str, shape))))
    return np.frombuffer(data, dtype=np.uint8, offset=head).reshape(shape)


def read_mnist(path):
    if os.path.isfile(path) and path.endswith(".npz") or os.path.isfile(os.path.join(path, "mnist.npz")):
        npz = path if path.endswith(".npz") else os.path.join(path, "mnist.npz")
        try:
            with np.load(npz, allow_pickle=False) as f:
                parts = {k: f[k] for k in MNIST_FILES}
        except (OSError, ValueError, KeyError) as exc:
            raise UserError("%s is not Keras's mnist.npz (%s)" % (npz, str(exc).splitlines()[0])) from None
    elif os.path.isdir(path):
        parts = {k: read_idx(_mnist_file(path, stem, 3 if k.startswith("x") else 1))
                 for k, stem in MNIST_FILES.items()}
    else:
        raise UserError("mnist:%s: no such folder (give the folder that holds MNIST's IDX files)" % path)
    for split in ("train", "test"):
        x, y = parts["x_" + split], parts["y_" + split]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
            raise UserError("mnist:%s: the %s images (%s) and labels (%s) do not match"
                            % (path, split, "x".join(map(str, x.shape)), "x".join(map(str, y.shape))))
        if y.max() > 9:
            raise UserError("mnist:%s: a %s label is %d; MNIST's are 0-9" % (path, split, int(y.max())))
    return (parts["x_train"], parts["y_train"].astype(np.int64), parts["x_test"], parts["y_test"].astype(np.int64),
            [str(i) for i in range(10)])


# -- CIFAR-10 -------------------------------------------------------------------------------------------------
class _PlainUnpickler(pickle.Unpickler):
    """Builds dicts, lists, strings, numbers and numpy arrays; refuses every other global (so no code runs)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"),
               ("_codecs", "encode")}  # how a pickle of protocol 2 written by Python 3 spells bytes

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError("it names %s.%s, which a CIFAR batch never holds" % (module, name))
        return super().find_class(module, name)


def load_plain_pickle(data, where):
    try:
        return _PlainUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # a refused global, a damaged or truncated pickle
        raise UserError("refusing %s: %s" % (where, exc)) from None


class _Files:
    """The members of a CIFAR-10 archive or folder, by base name."""

    def __init__(self, path):
        self.path, self.tar, self.names = path, None, {}
        if os.path.isfile(path):
            try:
                self.tar = tarfile.open(path)
            except (tarfile.TarError, OSError) as exc:
                raise UserError("cifar10:%s is not a tar archive (%s)" % (path, exc)) from None
            for member in self.tar.getmembers():
                if member.isfile():
                    self.names[os.path.basename(member.name)] = member
        elif os.path.isdir(path):
            for folder in (path, os.path.join(path, "cifar-10-batches-py"), os.path.join(path, "cifar-10-batches-bin")):
                if os.path.isdir(folder):
                    for name in os.listdir(folder):
                        self.names.setdefault(name, os.path.join(folder, name))
        else:
            raise UserError("cifar10:%s: no such file or folder (give cifar-10-python.tar.gz or the folder it "
                            "unpacks to)" % path)

    def read(self, name):
        where = self.names[name]
        if self.tar is not None:
            return self.tar.extractfile(where).read()
        with open(where, "rb") as f:
            return f.read()

    def close(self):
        if self.tar is not None:
            self.tar.close()


def _cifar_python(files, name):
    batch = load_plain_pickle(files.read(name), "%s in %s" % (name, files.path))
    data, labels = (batch.get(b"data"), batch.get(b"labels")) if isinstance(batch, dict) else (None, None)
    if not isinstance(data, np.ndarray) or labels is None or data.ndim != 2 or data.shape[1] != 3072 \
            or len(labels) != len(data):
        raise UserError("%s in %s is not a CIFAR-10 batch (a dict with data N x 3072 and N labels)"
                        % (name, files.path))
    return data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.asarray(labels, np.int64)


def _cifar_binary(files, name):
    data = np.frombuffer(files.read(name), dtype=np.uint8)
    if len(data) == 0 or len(data) % 3073:
        raise UserError("%s in %s is not a CIFAR-10 binary batch (records of 1 + 3072 bytes)" % (name, files.path))
    records = data.reshape(-1, 3073)
    return records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), records[:, 0].astype(np.int64)


def read_cifar10(path):
    files = _Files(path)
    try:
        if all(n in files.names for n in CIFAR_TRAIN + ["test_batch"]):
            read = _cifar_python
            train = [read(files, n) for n in CIFAR_TRAIN]
            test = read(files, "test_batch")
        elif all(n + ".bin" in files.names for n in CIFAR_TRAIN + ["test_batch"]):
            read = _cifar_binary
            train = [read(files, n + ".bin") for n in CIFAR_TRAIN]
            test = read(files, "test_batch.bin")
        else:
            raise UserError("cifar10:%s: no data_batch_1..5 and test_batch (python) or data_batch_1.bin..5.bin and "
                            "test_batch.bin (binary) there" % path)
    finally:
        files.close()
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    for y in (y_train, test[1]):
        if y.max() > 9:
            raise UserError("cifar10:%s: a label is %d; CIFAR-10's are 0-9" % (path, int(y.max())))
    return np.ascontiguousarray(x_train), y_train, np.ascontiguousarray(test[0]), test[1], list(CIFAR10_LABELS)
