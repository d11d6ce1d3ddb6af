"""A DonkeyCar tub v2 writer: what `runtime record` stores, and what `python -m train --data drivelog:DIR` (and
DonkeyCar's own tools) read with no conversion.

    DIR/manifest.json             five JSON lines: the record's keys, their types, metadata, the sessions,
                                  and {"paths": [catalogs], "current_index", "max_len", "deleted_indexes"}
    DIR/catalog_N.catalog         one JSON record a line (max_len records a catalog):
                                  {"_index", "_session_id", "_timestamp_ms", "cam/image_array", "user/angle",
                                   "user/throttle", "user/mode"}
    DIR/catalog_N.catalog_manifest  {"path", "created_at", "start_index", "line_lengths"}
    DIR/images/I_cam_image_array_.jpg

Nothing is lost on a power cut: each image is written and flushed to the disk (fsync) before its record names
it; records are appended and flushed in groups of GROUP, or every FLUSH_S; the manifests are replaced whole
(written beside, flushed, renamed, and the folder flushed). A catalog is named in manifest.json only once it
and its own manifest exist; a group of records is written, then manifest.json's next index, then the catalog's
manifest that counts them. When any of these writes fails (a full disk) or is interrupted (a second Ctrl-C),
the catalog is cut back to the lines its manifest on disk counts, the images of the records cut are removed,
no temporary file stays, and the writer takes no more records: the tub on disk is as its manifests say.

Opened on a folder that holds a tub, it resumes in a new session: each catalog's line torn by a power cut
(the bytes after its last newline) is cut off, a catalog's manifest that counts other lines than the catalog
holds is rewritten to count them, and the next index follows the highest whole record's. Every file a tub
names stays inside it: a manifest that names a catalog by `..` or an absolute path, or a catalog, its manifest,
manifest.json or images/ that is a link to outside the tub, is refused in one line and nothing is written. A
tub with other inputs than ours is refused, not rewritten; its metadata is kept.
"""

from __future__ import annotations

import datetime
import json
import os
import time

from ..bundle import inside, name_inside
from ..errors import UserError

INPUTS = ["cam/image_array", "user/angle", "user/throttle", "user/mode"]
TYPES = ["image_array", "float", "float", "str"]
MAX_LEN = 1000  # records a catalog, as DonkeyCar's
GROUP = 10
FLUSH_S = 1.0
MANIFEST = "manifest.json"
TMP = ".tmp"  # the file a manifest is written to before it is renamed over the manifest


def _sync_folder(folder):
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _write_new(path, data):
    """path as a new file holding data, flushed to the disk; whatever was at path (a link included) is replaced,
    never written through."""
    if os.path.lexists(path):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(path, text):
    """Write path whole: a file beside it, flushed, renamed over it (the caller flushes the folder). A reader
    sees the old file or the new one; the file beside it never stays, whatever fails."""
    tmp = path + TMP
    try:
        _write_new(tmp, text.encode("utf-8"))
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _read_json(path):
    """A small JSON file's data; None when it is not a regular file or not JSON."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def _line_lengths(meta):
    """A catalog manifest's line_lengths, where it has a list of them."""
    lengths = meta.get("line_lengths") if isinstance(meta, dict) else None
    if isinstance(lengths, list) and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in lengths):
        return lengths
    return None


def check(folder):
    """UserError unless folder can take a tub: new, empty, or a tub already (its parent must exist)."""
    parent = os.path.dirname(os.path.abspath(folder))
    if not os.path.isdir(parent):
        raise UserError("cannot record into %s: folder %s does not exist" % (folder, parent))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UserError("cannot record into %s: it is a file" % folder)
    if os.path.isdir(folder) and not os.path.isfile(os.path.join(folder, MANIFEST)) and os.listdir(folder):
        raise UserError("--out %s holds files but no tub (manifest.json): give a new or empty folder, or a tub "
                        "to add to" % folder)


class TubWriter:
    """Records into a tub, new or resumed (the module's docstring). After a write that failed, the tub on disk
    is whole and the writer is closed: add() refuses, close() does nothing."""

    def __init__(self, folder):
        check(folder)
        self.folder = folder
        self.images = os.path.join(folder, "images")
        manifest = os.path.join(folder, MANIFEST)
        self.paths, self.deleted, self.sessions, self.created = [], [], [], time.time()
        self.metadata = {}
        self.index = 0
        self.catalog = None  # the open catalog: [its file descriptor, its manifest's dict, its lines not yet written]
        self.unflushed, self.flushed_at = 0, time.monotonic()
        for name in (MANIFEST, "images"):
            path = os.path.join(folder, name)
            if os.path.lexists(path) and not inside(folder, path):
                raise UserError("--out %s: its %s is a link to outside the tub: refused (every file of a tub stays "
                                "inside it)" % (folder, name))
        made = [p for p in (folder, self.images) if not os.path.lexists(p)]
        try:
            if os.path.isfile(manifest):
                self._resume(manifest)
            os.makedirs(self.images, exist_ok=True)
            self.resumed_at = self.index
            stamp = datetime.datetime.now().strftime("%y-%m-%d")
            self.session = "%s_%d" % (stamp, len(self.sessions))
            self.sessions.append(self.session)
            self._next_catalog()  # at once: DonkeyCar cannot open a tub that lists no catalog
        except OSError as exc:
            for path in reversed(made):  # a new tub that could not be started leaves no folder behind
                try:
                    os.rmdir(path)
                except OSError:
                    pass
            raise UserError("cannot write the tub in %s: %s" % (folder, exc.strerror or exc)) from None

    # -- resuming ---------------------------------------------------------------------------------------------
    def _resume(self, manifest):
        try:
            with open(manifest, encoding="utf-8") as f:
                lines = [json.loads(line) for line in f if line.strip()]
            inputs, types, self.metadata = lines[0], lines[1], lines[2]
            self.created = lines[3].get("created_at", self.created)
            self.sessions = list(lines[3].get("sessions", {}).get("all_full_ids", []))
            paths = lines[4]["paths"]
            if not isinstance(paths, list):
                raise TypeError(paths)
            self.deleted = list(lines[4].get("deleted_indexes", []))
            self.index = int(lines[4].get("current_index", 0))
        except (OSError, ValueError, IndexError, KeyError, TypeError, AttributeError, RecursionError):
            raise UserError("--out %s: its manifest.json is not a DonkeyCar tub v2 manifest: give a new folder"
                            % self.folder) from None
        if inputs != INPUTS or types != TYPES:
            raise UserError("--out %s is a tub of other records (%s): give a new folder" % (self.folder,
                                                                                           ", ".join(map(str, inputs))))
        for name in paths:  # all checked before any is touched
            if not name_inside(name):
                raise UserError("--out %s: its manifest.json names the catalog %r, which is not a name inside the "
                                "tub: refused" % (self.folder, name))
            for path in (os.path.join(self.folder, name), os.path.join(self.folder, name + "_manifest")):
                if not inside(self.folder, path):
                    raise UserError("--out %s: %s is a link to outside the tub: refused (every file of a tub stays "
                                    "inside it)" % (self.folder, path))
        self.paths = paths
        for name in os.listdir(self.folder):  # a manifest's temporary file a power cut left
            if name.endswith(TMP) and (name == MANIFEST + TMP or name.endswith("_manifest" + TMP)):
                _remove(os.path.join(self.folder, name))
        for name in self.paths:  # the records on disk decide: the manifest may be a group behind them
            last = self._repair(name)
            if last is not None:
                self.index = max(self.index, last + 1)

    def _repair(self, name):
        """A catalog made whole: a torn last line (the bytes after its last newline) cut off, and its manifest
        rewritten where it counts other lines than the catalog holds. The highest whole record's index in it;
        None if none. A malformed line elsewhere stays (readers skip it), and is counted as a line."""
        path = os.path.join(self.folder, name)
        if not os.path.isfile(path):
            return None
        with open(path, "rb") as f:
            data = f.read()
        whole = data.rfind(b"\n") + 1
        if whole < len(data):
            with open(path, "r+b") as f:
                f.truncate(whole)
                os.fsync(f.fileno())
        lines = data[:whole].split(b"\n")[:-1]
        highest = first = None
        for line in lines:
            try:
                index = int(json.loads(line)["_index"])
            except (ValueError, KeyError, TypeError, RecursionError):
                continue
            first = index if first is None else first
            highest = index if highest is None else max(highest, index)
        lengths = [len(line) + 1 for line in lines]
        meta = _read_json(path + "_manifest")
        if _line_lengths(meta) != lengths:
            meta = meta if isinstance(meta, dict) else {}
            meta = dict(meta, path=name, created_at=meta.get("created_at", time.time()),
                        start_index=meta.get("start_index", first or 0), line_lengths=lengths)
            _replace(path + "_manifest", json.dumps(meta))
            _sync_folder(self.folder)
        return highest

    # -- writing ----------------------------------------------------------------------------------------------
    def add(self, jpeg, angle, throttle, timestamp_ms):
        """One record: its image (JPEG bytes) as a whole file, then its line."""
        if self.catalog is None:
            raise UserError("the tub writer for %s is closed" % self.folder)
        index = self.index
        name = "%d_cam_image_array_.jpg" % index
        image = os.path.join(self.images, name)
        try:
            _write_new(image, jpeg)
            if len(self.catalog[1]["line_lengths"]) + len(self.catalog[2]) >= MAX_LEN:
                self._next_catalog()
        except OSError:  # a full disk: the records before this one are kept where the room its image had lets them
            _remove(image)
            if self.catalog is not None:
                self.flush()  # cuts back and raises if it cannot
                self._close_catalog()
            raise
        except BaseException:
            _remove(image)
            if self.catalog is not None:
                self._roll_back()
            raise
        record = {"_index": index, "_session_id": self.session, "_timestamp_ms": int(round(timestamp_ms)),
                  "cam/image_array": name, "user/angle": float(angle),
                  "user/throttle": float(throttle) if throttle is not None else 0.0, "user/mode": "user"}
        self.catalog[2].append(json.dumps(record) + "\n")
        self.index += 1
        self.unflushed += 1
        if self.unflushed >= GROUP:
            self.flush()
        else:
            self.flush_if_due()

    def flush_if_due(self):
        if self.unflushed and time.monotonic() - self.flushed_at >= FLUSH_S:
            self.flush()

    def _next_catalog(self):
        """The catalog the next records go to: the file, its manifest, then manifest.json naming it. When one
        of these fails, the new catalog's files are removed (unless manifest.json on disk names it already)."""
        if self.catalog is not None:
            self.flush()
            self._close_catalog()
        number = len(self.paths)
        name = "catalog_%d.catalog" % number
        while os.path.lexists(os.path.join(self.folder, name)):  # a resumed tub: never append to an old one
            number += 1
            name = "catalog_%d.catalog" % number
        path = os.path.join(self.folder, name)
        meta = {"path": name, "created_at": time.time(), "start_index": self.index, "line_lengths": []}
        fd = None
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o666)
            _replace(path + "_manifest", json.dumps(meta))
            self._write_manifest(self.paths + [name])
        except BaseException:
            if fd is not None:
                os.close(fd)
            if name not in self._listed():  # an interruption may land after a step is done: the disk decides
                _remove(path + "_manifest")
                _remove(path)  # no one else's: nothing was there a moment ago
            raise
        self.paths = self.paths + [name]
        self.catalog = [fd, meta, []]
        self.unflushed, self.flushed_at = 0, time.monotonic()
        _sync_folder(self.folder)

    def _listed(self):
        """The catalogs manifest.json on disk names."""
        try:
            with open(os.path.join(self.folder, MANIFEST), encoding="utf-8") as f:
                return json.loads(f.read().splitlines()[4])["paths"]
        except (OSError, ValueError, IndexError, KeyError, TypeError, RecursionError):
            return []

    def flush(self):
        """The records so far onto the disk, then manifest.json with the next index, then the catalog's manifest
        that counts them; when a write fails or is interrupted, the catalog is cut back to what its manifest on
        disk counts (_roll_back) and the error goes on."""
        if self.catalog is None:
            return
        fd, meta, pending = self.catalog
        try:
            if pending:
                _write_all(fd, "".join(pending).encode("ascii"))
                os.fsync(fd)
                self._write_manifest(self.paths)
                counted = dict(meta, line_lengths=meta["line_lengths"] + [len(line) for line in pending])
                _replace(os.path.join(self.folder, meta["path"] + "_manifest"), json.dumps(counted))
                self.catalog = [fd, counted, []]
                _sync_folder(self.folder)
        except BaseException:
            self._roll_back()
            raise
        self.unflushed, self.flushed_at = 0, time.monotonic()

    def _roll_back(self):
        """After a write that failed or was interrupted: the open catalog cut back to the lines its manifest on
        disk counts, the images of the records cut (and of one being added) removed, no temporary file left,
        and the writer closed. The disk decides, not this object: an interruption may land anywhere."""
        fd, meta = self.catalog[0], self.catalog[1]
        self.catalog = None
        path = os.path.join(self.folder, meta["path"])
        counted = _line_lengths(_read_json(path + "_manifest"))
        if counted is None:  # no manifest yet: not so for a catalog opened here, but never leave one uncounted
            counted = []
        try:
            os.ftruncate(fd, sum(counted))
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
        kept = meta["start_index"] + len(counted)
        for index in range(kept, self.index + 1):
            _remove(os.path.join(self.images, "%d_cam_image_array_.jpg" % index))
        for tmp in (path + "_manifest" + TMP, os.path.join(self.folder, MANIFEST + TMP)):
            _remove(tmp)
        self.index = kept
        self.unflushed = 0

    def _write_manifest(self, paths):
        sessions = {"all_full_ids": self.sessions, "last_id": len(self.sessions) - 1,
                    "last_full_id": self.sessions[-1] if self.sessions else None}
        lines = [INPUTS, TYPES, self.metadata, {"created_at": self.created, "sessions": sessions},
                 {"paths": paths, "current_index": self.index, "max_len": MAX_LEN,
                  "deleted_indexes": self.deleted}]
        _replace(os.path.join(self.folder, MANIFEST), "".join(json.dumps(x) + "\n" for x in lines))

    def _close_catalog(self):
        fd = self.catalog[0]
        self.catalog = None
        os.close(fd)

    def close(self):
        """Every record onto the disk (see flush) and the catalog closed; nothing when closed already."""
        if self.catalog is not None:
            self.flush()
            self._close_catalog()

    @property
    def closed(self):
        """Closed by close(), or by a write that failed (the tub on disk whole, as the class's docstring says)."""
        return self.catalog is None

    @property
    def written(self):
        return self.index - self.resumed_at
