"""Start a few ``torch.distributed`` worker processes on this machine, and always clean up after them.

``launch`` runs one function on ``world_size`` ranks, each a fresh Python
process (``python -m gpucnn.distributed``) with its own thread count, and
returns what each rank's function returned (JSON). The ranks meet through a
``file://`` rendezvous in a new temporary folder, never a TCP port picked in
advance (two builds on one machine would race for it), and talk over gloo on
the loopback interface only (``GLOO_SOCKET_IFNAME=lo``).

Whatever happens, ``launch`` leaves nothing behind: a rank that exits with an
error, is killed, or outlives the timeout makes every other rank be killed
(each runs in its own process group, so ``killpg`` reaches anything it
started), the temporary folder is removed, and a ``WorkerError`` names the
rank and its own error. A worker also exits by itself when its parent dies
or its deadline passes. Each rank destroys its process group on the way out.

Only gloo (CPU) is launched here. NCCL across two or more GPUs is not: the
machines this project is built on have at most one GPU, and NCCL cannot put
two ranks on one GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# What a failure message quotes of a rank's output: its last lines are where Python puts the error.
_TAIL_LINES = 12
_POLL_S = 0.05
# A rank exits with this when a collective failed because another rank went away: that rank is the cause,
# and the launcher names it instead (waiting up to PEER_GRACE_S for it to exit too).
PEER_FAILED = 4
PEER_GRACE_S = 5.0


class WorkerError(RuntimeError):
    """A worker rank failed, was killed, or did not finish in time; the message names the rank and its error."""


def _tail(path: Path, lines: int = _TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return "\n".join(kept)


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _kill(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGKILL every rank's process group that is still there, and reap it."""
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL cannot be ignored: this is a backstop
            p.wait(timeout=10)
        # A worker's children (none today) share its group: make sure the group is gone too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)


def launch(
    target: str,
    config: Mapping[str, Any] | None = None,
    *,
    world_size: int = 2,
    threads: int = 1,
    timeout_s: float = 120.0,
    what: str = "distributed workers",
    env: Mapping[str, str] | None = None,
    on_start: Callable[[list[int]], None] | None = None,
) -> list[Any]:
    """Run ``target`` (``"package.module:function"``) on ``world_size`` gloo ranks; return each rank's result.

    The function is called as ``function(rank, world_size, config)`` inside an initialized process group and
    must return something JSON can write.

    Args:
        target: the function every rank runs.
        config: JSON-able settings, the same for every rank.
        world_size: how many ranks (processes).
        threads: torch threads per rank.
        timeout_s: the whole launch's limit, start-up included.
        what: names the launch in error messages (the experiment, the page).
        env: extra environment variables for the workers.
        on_start: called with the workers' process ids once they are started (tests use it).

    Raises:
        WorkerError: a rank failed, was killed, or the launch ran past ``timeout_s``. Every rank is killed
            and the temporary folder removed first.
    """
    folder = Path(tempfile.mkdtemp(prefix="gpucnn-ddp-"))
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    try:
        worker_env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": str(threads),
                      "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1", **(env or {})}
        deadline = time.monotonic() + timeout_s
        spec = json.dumps(dict(config or {}))
        for rank in range(world_size):
            log = folder / f"rank{rank}.log"
            logs.append(log)
            with open(log, "wb") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "gpucnn.distributed", "--target", target, "--rank", str(rank),
                     "--world-size", str(world_size), "--threads", str(threads),
                     "--init", (folder / "rendezvous").as_uri(), "--out", str(folder / f"rank{rank}.json"),
                     "--timeout", str(timeout_s), "--config", spec],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=folder, env=worker_env,
                    start_new_session=True,  # its own process group: killpg reaches all it starts
                ))
        if on_start is not None:
            on_start([p.pid for p in procs])
        peer_failed_at: float | None = None
        while True:
            codes = [p.poll() for p in procs]
            failed = [(rank, code) for rank, code in enumerate(codes) if code not in (None, 0)]
            # A rank that failed on its own (an error, a signal) is the cause; one whose collective broke
            # because a peer went away only follows it. Give the cause a moment to exit as well.
            causes = [(rank, code) for rank, code in failed if code != PEER_FAILED]
            if failed and not causes:
                peer_failed_at = peer_failed_at or time.monotonic()
                if any(code is None for code in codes) and time.monotonic() - peer_failed_at < PEER_GRACE_S:
                    time.sleep(_POLL_S)
                    continue
            if failed:
                rank, code = (causes or failed)[0]
                _kill(procs)
                raise WorkerError(f"{what}: rank {rank} of {world_size} failed ({_exit_text(code)}):\n"
                                  f"{_tail(logs[rank]) or '(no output)'}")
            if all(code == 0 for code in codes):
                break
            if time.monotonic() > deadline:
                running = [rank for rank, code in enumerate(codes) if code is None]
                _kill(procs)
                last = "\n".join(f"rank {r}: {_tail(logs[r], 3) or '(no output)'}" for r in running)
                raise WorkerError(f"{what}: timed out after {timeout_s:g} s with rank(s) "
                                  f"{', '.join(map(str, running))} still running; last output:\n{last}")
            time.sleep(_POLL_S)
        results = []
        for rank in range(world_size):
            path = folder / f"rank{rank}.json"
            try:
                results.append(json.loads(path.read_text()))
            except (OSError, ValueError) as exc:
                raise WorkerError(f"{what}: rank {rank} exited cleanly but left no readable result "
                                  f"({type(exc).__name__}); its output:\n{_tail(logs[rank])}") from None
        return results
    finally:
        _kill(procs)
        shutil.rmtree(folder, ignore_errors=True)


# --- the worker side: python -m gpucnn.distributed ------------------------------------------------------------

def _watchdog(deadline: float) -> None:
    """Exit if the parent dies (the launcher's kill could not run) or the deadline passes: never an orphan."""
    parent = os.getppid()
    while True:
        if os.getppid() != parent or time.monotonic() > deadline:
            os._exit(3)
        time.sleep(0.5)


def _resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    if not module or not name:
        raise ValueError(f"target must be 'module:function', got {target!r}")
    return getattr(importlib.import_module(module), name)


# What gloo says when the other end of a connection went away (torch may wrap it in DistBackendError).
_PEER_GONE = ("closed by peer", "reset by peer", "gloo/transport/", "Broken pipe")


def _peer_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective that broke because another rank went away, not this rank's own error."""
    import torch.distributed as dist

    text = str(exc)
    return isinstance(exc, (dist.DistNetworkError, dist.DistBackendError)) or any(p in text for p in _PEER_GONE)


def main(argv: list[str] | None = None) -> int:
    """One rank: join the process group, run the target, write its result, and always destroy the group."""
    parser = argparse.ArgumentParser(prog="python -m gpucnn.distributed")
    parser.add_argument("--target", required=True)
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--world-size", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--init", required=True, help="file:// rendezvous URL")
    parser.add_argument("--out", required=True)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--config", default="{}")
    args = parser.parse_args(argv)
    threading.Thread(target=_watchdog, args=(time.monotonic() + args.timeout + 5,), daemon=True).start()

    import datetime

    import torch
    import torch.distributed as dist

    torch.set_num_threads(args.threads)
    fn = _resolve(args.target)
    dist.init_process_group("gloo", init_method=args.init, rank=args.rank, world_size=args.world_size,
                            timeout=datetime.timedelta(seconds=args.timeout))
    try:
        result = fn(args.rank, args.world_size, json.loads(args.config))
        out = Path(args.out)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result))
        os.replace(tmp, out)
    except RuntimeError as exc:
        if not _peer_failure(exc):
            raise
        # A collective broke, most likely because another rank failed first: say so in the exit code.
        traceback.print_exc()
        return PEER_FAILED
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown: the result is written and the group destroyed, and on a loaded machine
    # gloo's threads, torn down by C++ static destructors at exit, were seen to abort ("terminate called
    # without an active exception", SIGABRT) after a clean run.
    os._exit(code)
