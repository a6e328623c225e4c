"""snippets/ddp_train.py, launched the way the page says: torchrun, two processes, gloo on the CPU."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

SNIPPET = ROOT / "snippets" / "ddp_train.py"


def _torchrun() -> list[str]:
    found = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "torch.distributed.run"]


def test_the_snippet_trains_on_two_processes_and_its_replicas_agree(tmp_path: Path) -> None:
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*_torchrun(), "--standalone", "--nproc-per-node", "2", str(SNIPPET)], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    epochs = re.findall(r"^epoch (\d+): mean loss ([\d.]+) over (\d+) images on 2 process\(es\), gloo$",
                        proc.stdout, re.M)
    assert [e[0] for e in epochs] == ["1", "2", "3"], proc.stdout
    assert all(int(e[2]) == 1024 for e in epochs)  # the sampler gives each image to exactly one rank
    assert float(epochs[-1][1]) < float(epochs[0][1])  # it learns
    assert "replicas agree: True (largest difference between ranks: 0)" in proc.stdout
    assert proc.stdout.count("replicas agree") == 1  # rank 0 prints, rank 1 does not


def test_the_snippet_stands_alone() -> None:
    source = SNIPPET.read_text()
    assert not re.search(r"^\s*(import gpucnn|from gpucnn)", source, re.M)
    for needed in ("DistributedSampler", "no_sync", "destroy_process_group", '"nccl"', '"gloo"', "all_gather"):
        assert needed in source, needed
