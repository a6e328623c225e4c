"""A build log a user can read: no dependency's noise where gpucnn can remove it at its cause.

The notebook's kernel runs over IPC (no "Kernel is running over TCP without encryption"), and without an
accelerator torch.profiler's C++ half (Kineto) writes nothing (no "USDT: profiler_start", no "ERROR: ...
gpuGetDeviceCount failed with code 35" from a CUDA torch without a GPU). DEVELOPERS.md names what is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpucnn.build import log_noise


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("JUPYTER_CONFIG_PATH", raising=False)
    monkeypatch.delenv(log_noise.KINETO_LOG_ENV, raising=False)
    return monkeypatch


@pytest.mark.skipif(os.name != "posix", reason="no Unix sockets")
def test_the_kernel_config_asks_for_ipc_in_the_build_folder_and_the_users_path_comes_back(
        tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("JUPYTER_CONFIG_PATH", "/users/own")
    restore = log_noise.kernel_over_ipc(tmp_path)
    folder, rest = os.environ["JUPYTER_CONFIG_PATH"].split(os.pathsep)
    assert rest == "/users/own"
    settings = json.loads((Path(folder) / "jupyter_nbconvert_config.json").read_text())
    assert settings == {"KernelManager": {"transport": "ipc", "ip": str(tmp_path / "kernel")}}
    restore()
    assert os.environ["JUPYTER_CONFIG_PATH"] == "/users/own"


@pytest.mark.skipif(os.name != "posix", reason="no Unix sockets")
def test_an_unset_jupyter_path_is_unset_again(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    log_noise.kernel_over_ipc(tmp_path)()
    assert "JUPYTER_CONFIG_PATH" not in os.environ


@pytest.mark.parametrize("accelerator, users, expected", [
    (None, None, "6"),        # no device: Kineto says nothing
    ("cuda", None, None),     # a device: its errors matter, left as they are
    (None, "4", "4"),         # the user's own level wins
])
def test_kineto_is_quiet_only_without_an_accelerator(env: pytest.MonkeyPatch, accelerator: str | None,
                                                     users: str | None, expected: str | None) -> None:
    if users is not None:
        env.setenv(log_noise.KINETO_LOG_ENV, users)
    log_noise.quiet_profiler_without_device(has_accelerator=accelerator is not None)
    assert os.environ.get(log_noise.KINETO_LOG_ENV) == expected


_NOTEBOOK = """
import nbformat
from mkdocs_jupyter.nbconvert2 import get_nbconvert_app
from nbconvert.exporters.html import HTMLExporter
app = get_nbconvert_app(execute=True, allow_errors=False)
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
body, _ = HTMLExporter(config=app.config).from_notebook_node(nb, resources={"metadata": {"path": "."}})
assert "42" in body
"""


@pytest.mark.skipif(os.name != "posix", reason="no Unix sockets")
def test_mkdocs_jupyters_kernel_runs_without_the_tcp_warning(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    """End to end: mkdocs-jupyter's own nbconvert app, a real kernel, its stderr read."""
    pytest.importorskip("mkdocs_jupyter")
    share = tmp_path / "share"
    share.mkdir()
    restore = log_noise.kernel_over_ipc(share)
    try:
        out = subprocess.run([sys.executable, "-c", _NOTEBOOK], capture_output=True, text=True, timeout=120,
                             cwd=tmp_path, env=dict(os.environ))
    finally:
        restore()
    assert out.returncode == 0, out.stderr
    assert "TCP" not in out.stderr, out.stderr
    assert not list(tmp_path.glob("kernel-ipc*")) and not list(share.glob("kernel-*")), "sockets left behind"


_PROFILE = """
import os, torch
from gpucnn.build import log_noise
log_noise.quiet_profiler_without_device(has_accelerator=False)
from torch.autograd.profiler import profile
x = torch.ones(8, 8)
with profile(use_kineto=True) as p:
    (x @ x).sum()
assert p.key_averages()
"""


def test_a_cpu_profile_writes_nothing_to_stderr(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    """With the CPU wheel (CI's) Kineto prints USDT lines unless told not to; a CUDA wheel adds an ERROR line."""
    out = subprocess.run([sys.executable, "-c", _PROFILE], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ), cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert "USDT" not in out.stderr and "ERROR" not in out.stderr, out.stderr
