"""A build log a user can read: dependencies' noise removed at its cause.

* The notebook's kernel runs over Unix sockets, not TCP: ipykernel then does not log "Kernel is running over
  TCP without encryption" on every build.
* Without an accelerator, torch.profiler's C++ half (Kineto) is told to say nothing: it prints
  ``USDT: ... profiler_start`` and ``profiler_stop`` for every profile, and a CUDA build of torch on a machine
  without a GPU adds ``ERROR: ... gpuGetDeviceCount failed with code 35``.

DEVELOPERS.md ("The build log") lists what a build may still print that is not gpucnn's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

JUPYTER_CONFIG_ENV = "JUPYTER_CONFIG_PATH"
KINETO_LOG_ENV = "KINETO_LOG_LEVEL"
KINETO_SILENT = "6"  # above Kineto's highest level (VERBOSE 0 ... ERROR 4, USDT 5): nothing is printed


def kernel_over_ipc(folder: Path) -> Callable[[], None]:
    """Ask for the notebook's kernel over IPC, its sockets in ``folder``; return what puts the environment back.

    mkdocs-jupyter makes its nbconvert app from the Jupyter config files (``NbConvertApp.load_config_file``),
    which include the folders in ``JUPYTER_CONFIG_PATH``: a file there sets jupyter_client's KernelManager
    transport. ``folder`` is private to the build (the share folder, removed after it), so two builds never
    share a socket; jupyter_client removes the sockets when the kernel stops. The user's own ``~/.jupyter``
    config still wins. No Unix sockets on Windows: TCP there.
    """
    previous = os.environ.get(JUPYTER_CONFIG_ENV)

    def restore() -> None:
        if previous is None:
            os.environ.pop(JUPYTER_CONFIG_ENV, None)
        else:
            os.environ[JUPYTER_CONFIG_ENV] = previous

    if os.name != "posix":
        return lambda: None
    config = folder / "jupyter"
    config.mkdir(exist_ok=True)
    settings = {"KernelManager": {"transport": "ipc", "ip": str(folder / "kernel")}}
    (config / "jupyter_nbconvert_config.json").write_text(json.dumps(settings), encoding="utf-8")
    os.environ[JUPYTER_CONFIG_ENV] = os.pathsep.join([str(config), *([previous] if previous else [])])
    return restore


def quiet_profiler_without_device(has_accelerator: bool) -> None:
    """Without an accelerator, keep Kineto (torch.profiler's C++ half) from writing to the build log.

    Kineto probes for GPUs whatever the profile asks for, and its only switch is ``KINETO_LOG_LEVEL``, read
    when it first starts (the first profile of the process; the notebook's kernel inherits it). USDT lines
    rank above ERROR, so no level keeps its errors and drops them: it is set only where nothing Kineto says
    concerns the profile (a CPU profile that fails raises in Python), never over the user's own setting
    (``KINETO_LOG_LEVEL=4`` shows its errors again). With an accelerator its lines stay: a CUPTI error matters.
    """
    if not has_accelerator:
        os.environ.setdefault(KINETO_LOG_ENV, KINETO_SILENT)
