"""Work in a forked process that inherits its input, and says so when it dies.

:class:`Forked` runs a function in a child process made by ``fork``: the child
inherits everything the function reads (data frames of gigabytes are not
pickled), and only the result comes back, pickled through a pipe. A child that
ends without a result (killed by the kernel when memory runs out, say) makes
:meth:`Forked.result` raise :class:`ChildProcessError` at once, where a
``multiprocessing.Pool`` would wait forever for the lost task. An exception in
the function is raised again by :meth:`Forked.result`.

>>> Forked(lambda: sum(range(10))).result()
45
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Forked(Generic[T]):
    """``function()`` running in a forked child (a daemon: it ends with this process, and
    cannot fork children of its own); :meth:`result` waits for its value."""

    def __init__(self, function: Callable[[], T]) -> None:
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_run, args=(function, send), daemon=True)
        self._process.start()
        send.close()  # the child's end: the parent sees EOF when the child is gone
        self._receive = receive

    @property
    def connection(self) -> Connection:
        """The end the result arrives on: ready for ``multiprocessing.connection.wait``
        once the child has sent it (or ended without it), to wait for several at once."""
        return self._receive

    def terminate(self) -> None:
        """Stop the child (its result is then never sent)."""
        self._process.terminate()

    def result(self) -> T:
        """The function's value (raises what it raised, or :class:`ChildProcessError` when
        the child ended without one)."""
        try:
            status, value = self._receive.recv()
        except EOFError:
            self._process.join()
            code = self._process.exitcode
            why = " (killed: out of memory?)" if code is not None and code < 0 else ""
            raise ChildProcessError(
                f"a forked worker ended without its result, exit code {code}{why}"
            ) from None
        finally:
            self._receive.close()
        self._process.join()
        if status == "error":
            raise value
        result: T = value
        return result


def _run(function: Callable[[], Any], send: Connection) -> None:
    try:
        message: tuple[str, Any] = ("ok", function())
    except Exception as exc:  # raised again in the parent
        message = ("error", exc)
    try:
        send.send(message)
    except Exception as exc:  # an unpicklable value or exception: say what it was
        send.send(("error", RuntimeError(f"the forked worker's result cannot be sent: {exc!r}")))
    send.close()
