"""FAKE-only: with FAKE_TRT_RECORD=FILE, every TensorRT name that the project's code (runtime/, export/)
touches in the fake is appended to FILE as "VERSION NAME" (NAME dotted from the module: `Builder`,
`BuilderFlag.FP16`, `IBuilderConfig.set_memory_pool_limit`, `ILogger.Severity.ERROR`), once per process.
tests/runtime/backends/tensorrt/test_real_tensorrt.py then checks that each exists in NVIDIA's real module
of that generation.

Module attributes are recorded by the module's class; classes reached from the project come wrapped in a
proxy that records their attributes (and still works as a base class, for isinstance and as a factory);
instances of the fake's classes record attribute reads and writes through __getattribute__/__setattr__.
"""

import os
import re
import sys
import types

_PROJECT = re.compile(r"[/\\](runtime|export)[/\\](?:[^/\\]+[/\\])*[^/\\]+\.py$")  # any module below them
_FAKES = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _from_project(depth):
    filename = sys._getframe(depth + 1).f_code.co_filename
    return bool(_PROJECT.search(filename)) and not os.path.abspath(filename).startswith(_FAKES)


class _Recorder:
    def __init__(self, path, version):
        self.path, self.version, self.seen = path, version, set()

    def add(self, name):
        if name not in self.seen:
            self.seen.add(name)
            with open(self.path, "a") as f:
                f.write("%s %s\n" % (self.version, name))


_recorder = [None]
_module_name = [None]


def _wanted(name):
    return not name.startswith("__") or name in ("__init__", "__version__")


def _ours(value):
    return isinstance(value, type) and value.__module__ == _module_name[0]


class _Class:
    """A class of the fake as the project's code sees it: attribute reads are recorded."""

    def __init__(self, cls, qualname):
        object.__setattr__(self, "_fake_cls", cls)
        object.__setattr__(self, "_fake_name", qualname)

    def __getattribute__(self, attr):
        if attr in ("_fake_cls", "_fake_name", "__mro_entries__", "__instancecheck__"):
            return object.__getattribute__(self, attr)
        value = getattr(object.__getattribute__(self, "_fake_cls"), attr)
        name = "%s.%s" % (object.__getattribute__(self, "_fake_name"), attr)
        if _wanted(attr) and _from_project(1):
            _recorder[0].add(name)
            if _ours(value):
                return _Class(value, name)
        return value

    def __call__(self, *args, **kwargs):
        return self._fake_cls(*args, **kwargs)

    def __mro_entries__(self, bases):
        return (self._fake_cls,)

    def __instancecheck__(self, obj):
        return isinstance(obj, self._fake_cls)

    def __iter__(self):
        return iter(self._fake_cls)

    def __eq__(self, other):
        return self._fake_cls == getattr(other, "_fake_cls", other)

    def __hash__(self):
        return hash(self._fake_cls)


class _Module(types.ModuleType):
    def __getattribute__(self, name):
        value = types.ModuleType.__getattribute__(self, name)
        if _wanted(name) and _from_project(1):
            _recorder[0].add(name)
            if _ours(value):
                return _Class(value, name)
        return value


def _owner(obj, attr):
    """The fake class an attribute of obj belongs to: where it is defined, or obj's own class when that is
    one of the fake's (instance attributes); None for a subclass's own attributes."""
    for cls in type(obj).__mro__:
        if _ours(cls) and attr in vars(cls):
            return cls.__name__
    return type(obj).__name__ if _ours(type(obj)) else None


def _getattribute(self, attr):
    if _wanted(attr) and _from_project(1):
        owner = _owner(self, attr)
        if owner is not None:
            _recorder[0].add("%s.%s" % (owner, attr))
    return object.__getattribute__(self, attr)


def _setattr(self, attr, value):
    if _wanted(attr) and _from_project(1):
        owner = _owner(self, attr)
        if owner is not None:
            _recorder[0].add("%s.%s" % (owner, attr))
    object.__setattr__(self, attr, value)


def fake_install(module, path):
    _recorder[0] = _Recorder(path, module.__version__)
    _module_name[0] = module.__name__
    for value in list(vars(module).values()):
        if _ours(value) and not issubclass(value, int) and value.__getattribute__ is object.__getattribute__:
            value.__getattribute__ = _getattribute
            value.__setattr__ = _setattr
    module.__class__ = _Module
