"""Run slow core calls (load, segment, plan) off the GUI thread, with progress and cancel.

A job is a plain function ``fn(progress)`` where ``progress(done, total, what)`` is the
core's progress callback.  Cancel works two ways: the next progress call raises
:class:`Cancelled` inside the worker, and the window stops waiting at once (a late result
of a cancelled job is dropped), so the window never freezes.
"""

from __future__ import annotations

import logging
import traceback
import warnings

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from needleplan.errors import NeedlePlanError

__all__ = ["Cancelled", "Job", "JobRunner"]

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside a worker by the progress callback after the user pressed Cancel."""


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class Job(QObject):
    """Runs ``fn(progress)`` in a QThread; emits progress, done(result), failed(message, kind)."""

    progress = pyqtSignal(float, str)
    done = pyqtSignal(object)
    failed = pyqtSignal(str, str)  # message, kind: "input" | "internal" | "cancelled"

    def __init__(self, fn, label: str):
        super().__init__()
        self.fn = fn
        self.label = label
        self.cancelled = False
        self.warnings: list[str] = []

    def _progress(self, *args):
        """``progress(done, total, what)`` (the core's convention); ``(fraction, what)``
        and ``(what,)`` are accepted too."""
        if self.cancelled:
            raise Cancelled()
        frac, what = -1.0, ""
        try:
            if len(args) >= 3:
                done, total, what = args[:3]
                frac = float(done) / float(total) if total else -1.0
            elif len(args) == 2:
                frac, what = float(args[0]), args[1]
            elif len(args) == 1 and isinstance(args[0], str):
                what = args[0]
        except (TypeError, ValueError, ZeroDivisionError):
            frac = -1.0
        self.progress.emit(float(min(frac, 1.0)), str(what or self.label))

    @pyqtSlot()
    def run(self):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = self.fn(self._progress)
            self.warnings = [one_line(w.message) for w in caught
                             if w.category.__module__.startswith("needleplan")]
        except Cancelled:
            self.failed.emit("cancelled", "cancelled")
            return
        except NeedlePlanError as exc:
            self.failed.emit(one_line(exc), "input")
            return
        except MemoryError:
            self.failed.emit("not enough memory for this input", "input")
            return
        except Exception as exc:  # internal error: report, keep the window alive
            log.error("%s failed:\n%s", self.label, traceback.format_exc())
            self.failed.emit(f"internal error: {type(exc).__name__}: {one_line(exc)}", "internal")
            return
        if self.cancelled:
            self.failed.emit("cancelled", "cancelled")
        else:
            self.done.emit(result)


class JobRunner(QObject):
    """Starts one job at a time and forwards its signals.

    Signals
    -------
    started(str)           label
    progress(float, str)   fraction (-1 = unknown) and what
    finished(str, object, str, str)  label, result or None, error message or "", error kind
    """

    started = pyqtSignal(str)
    progress = pyqtSignal(float, str)
    finished = pyqtSignal(str, object, str, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.job: Job | None = None
        self.thread: QThread | None = None
        self._callbacks = {}
        self._old = []  # (thread, job) of cancelled jobs still running

    @property
    def busy(self) -> bool:
        return self.job is not None

    def start(self, label: str, fn, on_done=None, on_error=None) -> Job:
        """Run ``fn(progress)`` in a worker thread; ``on_done(result)`` runs in the GUI thread."""
        if self.job is not None:
            raise RuntimeError(f"'{self.job.label}' is still running")
        job = Job(fn, label)
        thread = QThread()
        job.moveToThread(thread)
        thread.started.connect(job.run)
        job.progress.connect(self.progress)
        job.done.connect(self._on_done)
        job.failed.connect(self._on_failed)
        self.job, self.thread = job, thread
        self._callbacks[id(job)] = (on_done, on_error)
        thread.start()
        self.started.emit(label)
        return job

    def cancel(self) -> None:
        """Stop waiting for the current job (it stops at its next progress call)."""
        job, thread = self.job, self.thread
        if job is None:
            return
        job.cancelled = True
        self._old.append((thread, job))
        self.job = self.thread = None
        self._callbacks.pop(id(job), None)
        self.finished.emit(job.label, None, "cancelled", "cancelled")
        thread.quit()

    @pyqtSlot(object)
    def _on_done(self, result):
        self._finish(self.sender(), result, "", "")

    @pyqtSlot(str, str)
    def _on_failed(self, message, kind):
        self._finish(self.sender(), None, message, kind)

    def _finish(self, job: Job, result, message: str, kind: str):
        thread = self.thread if job is self.job else None
        if job is not self.job:  # a cancelled job ended late: drop its result
            self._reap()
            return
        self.job = self.thread = None
        if thread is not None:
            thread.quit()
            thread.wait(2000)
        on_done, on_error = self._callbacks.pop(id(job), (None, None))
        self.finished.emit(job.label, result, message, kind)
        if not message and on_done is not None:
            on_done(result)
        elif message and on_error is not None:
            on_error(message, kind)
        self._reap()

    def _reap(self):
        keep = []
        for thread, job in self._old:
            if thread.isFinished():
                continue
            keep.append((thread, job))
        self._old = keep

    def shutdown(self, timeout_ms: int = 3000) -> None:
        """Cancel and wait for worker threads (on window close)."""
        if self.job is not None:
            self.cancel()
        for thread, _job in self._old:
            thread.quit()
            thread.wait(timeout_ms)
        self._old = []
