"""Reading images from disk safely, and naming files to OpenCV: the one place the runtime (and export) reads
and writes image files.

- **Names of any bytes.** OpenCV's Python binding takes a file name as UTF-8 text; a name that is not UTF-8
  (a Latin-1 `caf\\xe9.png`, `img_\\xff\\xfe.png`: Python holds such bytes as surrogates) crashed it with a
  segmentation fault. Images are therefore read with Python and decoded from memory (cv2.imdecode), written
  encoded in memory (cv2.imencode) and saved by Python; videos, which OpenCV must open by name, get a name it
  can take (OpenCvName: a link with a plain name, in a private temporary folder, to the file), and so do ONNX
  models, which ONNX Runtime's binding refused by such a name (PlainName(folder=True): a link to their folder).
- **A pixel budget**, as Pillow's MAX_IMAGE_PIXELS: an image's width x height is read from its header (PNG,
  JPEG, BMP, WebP, TIFF, PPM/PGM/PBM/PAM/PFM, GIF, Sun raster) before it is decoded, and an image over the
  budget is refused (a single image: one line; in a folder: skipped and counted). The default,
  DEFAULT_MAX_PIXELS, is Pillow's own: 89,478,485 pixels (256 MiB as 24-bit colour). Every camera frame
  passes (8K UHD is 33.2 million pixels) and so does a still camera's full-resolution photo (61 million for
  the largest full-frame sensors); a 16000x16000 PNG, which compresses to 750 KB and decodes to 768 MB, does
  not. `--max-image-pixels N` (on the commands that read images) or the environment variable
  OPENCV_IO_MAX_IMAGE_PIXELS=N raises it. That variable is OpenCV's own limit, which OpenCV reads once, when
  it loads: the command lines set it to the budget before anything loads OpenCV (backstop()), so formats
  whose header is not read here, and headers this cannot parse, are held to the same budget by OpenCV's
  decoder (which refuses them before decoding too).
- **Only regular files** are read as images: a FIFO, a device or a folder named like an image is refused
  without opening it for reading in a way that could block.

printable() (errors.py) makes a name that is not UTF-8 printable anywhere: its bytes as \\xNN escapes.
"""

from __future__ import annotations

import os
import shutil
import stat
import struct
import tempfile

from .errors import UserError, printable, require

ENV = "OPENCV_IO_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 89478485  # Pillow's MAX_IMAGE_PIXELS: 1024 * 1024 * 1024 // 4 // 3 (256 MiB as 24-bit colour)
MOST = 1 << 48  # a budget OpenCV's size_t (and its parser) can hold
HOW_TO_RAISE = "raise it with --max-image-pixels N or %s=N" % ENV
_budget = None  # set by --max-image-pixels (set_max_pixels)


class ImageError(UserError):
    """An image file that cannot be used; `why` says so without the file's name (a folder's warning reuses it)."""

    def __init__(self, path, why):
        super().__init__("cannot read image %s: %s" % (shown(path), why))
        self.path, self.why = path, why


class TooLarge(ImageError):
    """An image whose width x height is over the pixel budget."""


def shown(path) -> str:
    """A file name as text any stream can print (bytes that are not UTF-8 as \\xNN)."""
    return printable(os.fsdecode(path))


def parse_pixels(text, where):
    """A pixel count as written on a command line or in the environment: ASCII digits, 1 to 2**48, with OpenCV's
    optional KB or MB (x 1024, x 1024 * 1024) for the environment variable OpenCV reads too."""
    text = str(text).strip()
    digits, unit = (text[:-2], 1 << 10) if text.endswith("KB") else (text[:-2], 1 << 20) if text.endswith("MB") \
        else (text, 1)
    if not digits or len(digits) > 15 or any(c not in "0123456789" for c in digits) \
            or not 0 < int(digits) * unit <= MOST:
        raise UserError("%s=%s: give the most pixels an image may have, a whole number from 1 to %d (default %d)"
                        % (where, printable(text), MOST, DEFAULT_MAX_PIXELS))
    return int(digits) * unit


def max_pixels() -> int:
    """The pixel budget now: --max-image-pixels, else OPENCV_IO_MAX_IMAGE_PIXELS, else DEFAULT_MAX_PIXELS."""
    if _budget is not None:
        return _budget
    value = os.environ.get(ENV)
    return DEFAULT_MAX_PIXELS if value is None else parse_pixels(value, ENV)


def set_max_pixels(pixels: int) -> None:
    """Set the budget (--max-image-pixels), for this process and, through OPENCV_IO_MAX_IMAGE_PIXELS, for OpenCV
    when it has not loaded yet and for the processes this one starts."""
    global _budget
    _budget = parse_pixels(pixels, "--max-image-pixels")
    os.environ[ENV] = str(_budget)


def backstop() -> int:
    """Check OPENCV_IO_MAX_IMAGE_PIXELS (OpenCV aborts the process on a value it cannot read, such as 'abc') and
    set it to the budget, as a plain number, so that OpenCV, loaded later, refuses what is over it too. The
    command lines (cli.main) call this before anything imports cv2. Returns the budget."""
    budget = max_pixels()
    os.environ[ENV] = str(budget)
    return budget


def check_frame_size(width, height, what):
    """UserError when frames of width x height (asked for on the command line) would be over the budget."""
    if width and height and width * height > max_pixels():
        raise UserError("%s asks for %dx%d = %s pixels a frame, over the image budget of %s pixels (%s)"
                        % (what, width, height, thousands(width * height), thousands(max_pixels()), HOW_TO_RAISE))


def thousands(count):
    """count with a comma between thousands: 12,345,678."""
    return "{:,}".format(count)


def over_budget(width, height, budget=None):
    """The reason an image of width x height is refused, or None when it is within the budget."""
    budget = max_pixels() if budget is None else budget
    if width * height <= budget:
        return None
    return "%dx%d = %s pixels, over the image budget of %s (%s)" % (width, height, thousands(width * height),
                                                                   thousands(budget), HOW_TO_RAISE)


# -- headers -----------------------------------------------------------------------------------------------------
class _Corrupt(Exception):
    pass


def _png(head, f):
    if len(head) < 24 or head[12:16] != b"IHDR":
        raise _Corrupt
    return struct.unpack(">II", head[16:24])


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(head, f):
    """Walk the segments to the first frame header (SOFn), seeking over the others (EXIF, ICC profiles)."""
    f.seek(2)
    for _ in range(4096):  # far more segments than any real JPEG has before its frame header
        byte = f.read(1)
        if byte != b"\xff":
            raise _Corrupt
        while byte == b"\xff":  # fill bytes
            byte = f.read(1)
        if not byte:
            raise _Corrupt
        marker = byte[0]
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            continue
        if marker in (0xD9, 0xDA):  # the end, or scan data, before any frame header
            raise _Corrupt
        length = f.read(2)
        if len(length) < 2 or struct.unpack(">H", length)[0] < 2:
            raise _Corrupt
        if marker in _SOF:
            fields = f.read(5)
            if len(fields) < 5:
                raise _Corrupt
            height, width = struct.unpack(">HH", fields[1:5])
            return width, height
        f.seek(struct.unpack(">H", length)[0] - 2, 1)
    raise _Corrupt


def _bmp(head, f):
    if len(head) < 26:
        raise _Corrupt
    (dib,) = struct.unpack("<I", head[14:18])
    if dib == 12:  # BITMAPCOREHEADER
        return struct.unpack("<HH", head[18:22])
    width, height = struct.unpack("<ii", head[18:26])
    return width, abs(height)  # a negative height is a top-down bitmap


def _webp(head, f):
    chunk, data = head[12:16], head[20:30]
    if len(data) < 10:
        raise _Corrupt
    if chunk == b"VP8 ":  # lossy: a frame tag, the start code 9d 01 2a, then 14-bit width and height
        if data[3:6] != b"\x9d\x01\x2a":
            raise _Corrupt
        width, height = struct.unpack("<HH", data[6:10])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":  # lossless: the signature 0x2f, then width - 1 and height - 1 in 14 bits each
        if data[0] != 0x2F:
            raise _Corrupt
        (bits,) = struct.unpack("<I", data[1:5])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: the canvas, width - 1 and height - 1 in 24 bits each
        return (int.from_bytes(data[4:7], "little") + 1, int.from_bytes(data[7:10], "little") + 1)
    raise _Corrupt


def _tiff(head, f):
    """The first image's ImageWidth (256) and ImageLength (257), in classic TIFF or BigTIFF (what OpenCV reads
    of a multi-page TIFF is its first page)."""
    order = "<" if head[:2] == b"II" else ">"
    (version,) = struct.unpack(order + "H", head[2:4])
    big = version == 43
    if big:
        offset_size, count_size, entry_size = 8, 8, 20
        (offset,) = struct.unpack(order + "Q", head[8:16])
    else:
        offset_size, count_size, entry_size = 4, 2, 12
        (offset,) = struct.unpack(order + "I", head[4:8])
    f.seek(offset)
    raw = f.read(count_size)
    if len(raw) < count_size:
        raise _Corrupt
    (entries,) = struct.unpack(order + ("Q" if big else "H"), raw)
    found = {}
    for _ in range(min(entries, 4096)):
        entry = f.read(entry_size)
        if len(entry) < entry_size:
            raise _Corrupt
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            value = entry[4 + offset_size:]
            if kind == 3:  # SHORT
                found[tag] = struct.unpack(order + "H", value[:2])[0]
            elif kind == 4:  # LONG
                found[tag] = struct.unpack(order + "I", value[:4])[0]
            elif kind == 16 and big:  # LONG8
                found[tag] = struct.unpack(order + "Q", value[:8])[0]
            else:
                raise _Corrupt
    if 256 not in found or 257 not in found:
        raise _Corrupt
    return found[256], found[257]


def _pnm(head, f):
    """P1-P6 and PF/Pf: the width and height after the magic (comments from # to the end of a line); P7 (PAM):
    its WIDTH and HEIGHT lines."""
    if head[:2] == b"P7":
        fields = {}
        for line in head[2:].split(b"\n"):
            words = line.split(b"#")[0].split()
            if words and words[0] == b"ENDHDR":
                break
            if len(words) == 2 and words[0] in (b"WIDTH", b"HEIGHT") and words[1].isdigit():
                fields[words[0]] = int(words[1])
        if len(fields) < 2:
            raise _Corrupt
        return fields[b"WIDTH"], fields[b"HEIGHT"]
    words, text = [], head[2:]
    for line in text.split(b"\n"):
        words += line.split(b"#")[0].split()
        if len(words) >= 2:
            break
    if len(words) < 2 or not (words[0].isdigit() and words[1].isdigit()):
        raise _Corrupt
    return int(words[0]), int(words[1])


def _gif(head, f):
    return struct.unpack("<HH", head[6:10])


def _sun(head, f):
    return struct.unpack(">II", head[4:12])


_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", _png),
    (b"\xff\xd8", _jpeg),
    (b"BM", _bmp),
    (b"II*\x00", _tiff), (b"MM\x00*", _tiff), (b"II+\x00", _tiff), (b"MM\x00+", _tiff),
    (b"GIF87a", _gif), (b"GIF89a", _gif),
    (b"\x59\xa6\x6a\x95", _sun),
]


def image_size(f):
    """(width, height) from an open image file's header, without decoding it; None for a format whose header is
    not read here (OpenCV's own limit then holds it). ValueError for a header that is cut short or corrupt."""
    f.seek(0)
    head = f.read(1 << 16)
    try:
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            size = _webp(head, f)
        elif len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"1234567Ff" and head[2:3].isspace():
            size = _pnm(head, f)
        else:
            size = next((parse(head, f) for magic, parse in _MAGIC if head.startswith(magic)), None)
    except (_Corrupt, struct.error, OSError) as exc:
        raise ValueError("its header is cut short or corrupt") from exc
    if size is not None and not (size[0] > 0 and size[1] > 0):
        raise ValueError("its header gives no size (%dx%d)" % size)
    return size


# -- reading and writing ---------------------------------------------------------------------------------------
class NotAFile(OSError):
    """A path that is there but is not a regular file: a folder, a FIFO, a device or a socket."""


def open_regular(path):
    """A binary file object for the regular file at path: opened without blocking (a FIFO's open waits for a
    writer for ever) and checked on the open file, so that nothing can be swapped in between. NotAFile ("it is a
    FIFO") for anything else; OSError when it cannot be opened. Images, driving logs and doctor's sysfs reads
    open files so."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotAFile("it is %s" % ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
                                     "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
                                     "a socket" if stat.S_ISSOCK(mode) else "not a regular file"))
    return os.fdopen(fd, "rb")


def _open_regular(path):
    """open_regular, its failures as ImageError."""
    try:
        return open_regular(path)
    except NotAFile as exc:
        raise ImageError(path, "%s, not an image file" % exc) from None
    except OSError as exc:
        raise ImageError(path, exc.strerror or str(exc)) from None


def header_size(path):
    """(width, height) of the image file at path, read from its header without decoding it; None for a format or a
    header not read here (read_image then checks the decoded size, and OpenCV's own limit holds it first).
    ImageError when path is not a regular file or cannot be read."""
    with _open_regular(path) as f:
        try:
            return image_size(f)
        except ValueError:
            return None
        except OSError as exc:
            raise ImageError(path, exc.strerror or str(exc)) from None


def read_image(path, budget=None):
    """The image at path as uint8 BGR (H x W x 3), as cv2.imread(path, IMREAD_COLOR) gives it (EXIF orientation
    applied; gray, alpha and 16-bit converted), for a name of any bytes. Its size is checked against the pixel
    budget (max_pixels()) from its header before it is decoded. ImageError (TooLarge) says why not, in one line."""
    budget = max_pixels() if budget is None else budget
    with _open_regular(path) as f:
        try:
            size = image_size(f)
        except ValueError:  # left to OpenCV, whose own limit is the same budget (backstop()); it may read what
            size = None     # this did not (a JPEG with stray bytes between its segments), or say it is corrupt
        except OSError as exc:
            raise ImageError(path, exc.strerror or str(exc)) from None
        if size is not None:
            why = over_budget(size[0], size[1], budget)
            if why:
                raise TooLarge(path, why)
        length = os.fstat(f.fileno()).st_size
        most = 8 * budget + (64 << 20)  # 16-bit RGBA, uncompressed, with room for metadata
        if length > most:
            raise TooLarge(path, "the file is %s bytes, more than an image within the budget of %s pixels takes "
                                 "(%s)" % (thousands(length), thousands(budget), HOW_TO_RAISE))
        try:
            f.seek(0)
            data = f.read()
        except OSError as exc:
            raise ImageError(path, exc.strerror or str(exc)) from None

    import numpy as np  # here: train's log reader imports this module where numpy may be missing

    cv2 = require("cv2", "opencv", "reading images")
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    except cv2.error as exc:
        if "MAX_IMAGE_PIXELS" in str(exc):  # OpenCV's own limit, for a format whose header is not read here
            raise TooLarge(path, "over OpenCV's image size limit (%s=%s; %s)"
                           % (ENV, os.environ.get(ENV, "its default"), HOW_TO_RAISE)) from None
        image = None
    if image is None:
        raise ImageError(path, "corrupt or not an image")
    if size is None:
        why = over_budget(image.shape[1], image.shape[0], budget)
        if why:
            raise TooLarge(path, why)
    return image


def write_image(path, image):
    """Write an image to path in the format its extension names (cv2.imwrite's choice), for a name of any bytes.
    UserError in one line when it cannot be encoded or written."""
    cv2 = require("cv2", "opencv", "writing images")
    ext = os.path.splitext(os.fsdecode(path))[1]
    try:
        ok, data = cv2.imencode(ext if ext.isascii() else "", image)
    except cv2.error:
        ok = False
    if not ok:
        raise UserError("cannot write image %s: OpenCV cannot encode %r images" % (shown(path), printable(ext)))
    try:
        with open(path, "wb") as f:
            f.write(data.tobytes())
    except OSError as exc:
        raise UserError("cannot write image %s: %s" % (shown(path), exc.strerror or exc)) from None


# -- names for OpenCV ------------------------------------------------------------------------------------------
def utf8(text) -> bool:
    """Whether text can be handed to OpenCV (or GStreamer) as a name: it is UTF-8 (no bytes held as surrogates)."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


class PlainName:
    """A name a native library that takes only UTF-8 names (OpenCV's binding, ONNX Runtime's) can open path by:
    path itself when it is UTF-8, else a link with a plain name in a private temporary folder, removed at close().
    The link is to the file, with the same extension (by which OpenCV picks a container); with folder=True, when
    the file's own name is UTF-8 and only its folder's is not, it is to the folder, and the name is the link's
    path joined with the file's name: what such a library finds beside the file (an ONNX model's external data)
    is found through it too. Such names crashed OpenCV (a segmentation fault) and ONNX Runtime refused them."""

    who = "this library"

    def __init__(self, path, folder=False, who=None):
        self.path, self.folder, self.who = path, None, who or self.who
        if utf8(path):
            self.name = path
            return
        parent, base = os.path.split(os.path.abspath(path))
        via_folder = folder and utf8(base)
        ext = os.path.splitext(base)[1]
        try:
            self.folder = tempfile.mkdtemp(prefix="runtime-name-")
            if via_folder:
                link, target = os.path.join(self.folder, "folder"), parent
                self.name = os.path.join(link, base)
            else:
                link, target = os.path.join(self.folder, "file" + (ext if utf8(ext) and ext.isascii() else "")), \
                    os.path.join(parent, base)
                self.name = link
            if not utf8(self.name):
                raise OSError("the temporary folder's own name is not UTF-8")
            os.symlink(target, link)
        except OSError as exc:
            self.close()
            raise UserError("%s: its name is not UTF-8, and %s takes only UTF-8 names; a link to it with a plain "
                            "name could not be made (%s): rename it" % (shown(path), self.who, exc)) from None

    def close(self):
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self):
        return self.name

    def __exit__(self, *exc):
        self.close()


class OpenCvName(PlainName):
    """PlainName for OpenCV: a link to the file (a video to read or write)."""

    who = "OpenCV"
