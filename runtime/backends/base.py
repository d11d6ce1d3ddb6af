"""Backend: the face every inference backend shows (after Polygraphy's runners): activate, infer, deactivate,
and the pipeline's hints (share_cores, prepare). runtime/backends/__init__.py chooses and opens one."""

from __future__ import annotations


class Backend:
    """The shared face. Subclasses set `name` and `detail` (what it runs on) when activated."""

    name = "?"
    detail = ""
    reason = ""

    def activate(self):
        return self

    def infer(self, batch):
        raise NotImplementedError

    def share_cores(self, shared: bool):
        """Told by the pipeline whether another thread of this process (the capture) works while infer()
        runs; a backend whose idle threads would take those cores from it gives them up. Nothing by default."""

    def prepare(self, shared_cores: bool):
        """Be ready now for a loop that does (or does not) share the cores with a capture thread: a model
        that cannot load says so here, before a camera opens, rather than at the first frame."""
        self.share_cores(shared_cores)

    def deactivate(self):
        pass

    def __enter__(self):
        return self.activate()

    def __exit__(self, *exc):
        self.deactivate()
