"""Run ``flare`` commands in forked children of one warmed-up interpreter (fault injection).

    python tests/recipes/fork_server.py

A fresh interpreter spends several seconds importing torch, transformers and peft; the
fault-injection tests start dozens of runs, so this server imports them once and forks
a child per run. Each child is an ordinary process running ``flare_xlt.cli.main`` (the
``flare`` command), so the test can SIGKILL it like any other.

Protocol, one JSON object per line: the server prints ``{"ready": true}``; for each
``{"argv": [...], "log": PATH}`` read from stdin it forks a child that runs
``flare <argv>`` with stdout and stderr in ``PATH``, prints ``{"pid": <child>}``, waits
for it and prints ``{"returncode": <exit code, negative for a signal>}``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback

# imported lazily by a run: imported here once, so a forked child starts warm
import matplotlib.backends.backend_agg
import matplotlib.figure  # noqa: F401
import sklearn.metrics  # noqa: F401
import transformers.models.llama.modeling_llama  # noqa: F401

from flare_xlt import cli, recipes  # noqa: F401


def run_child(argv: list[str], log: str) -> None:
    """In the forked child: ``flare <argv>`` with its output in ``log``; never returns."""
    code = 1
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.argv = ["flare", *argv]
        cli.main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def reply(message: dict) -> None:
    print(json.dumps(message), flush=True)


def main() -> None:
    # a thread holding a lock at fork time would leave the child deadlocked on it
    assert threading.active_count() == 1, threading.enumerate()
    reply({"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            run_child(request["argv"], request["log"])
        reply({"pid": pid})
        _, status = os.waitpid(pid, 0)
        reply({"returncode": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    main()
