from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gpucnn.cli import main
from gpucnn.hardware import accelerator_type


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "gpucnn.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_info_json_is_the_report() -> None:
    proc = run_cli("info", "--json")
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    assert data["cpu"]["logical_cores"] >= 1 and "torch" in data


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["bench", "--device", "tpu"], {}, "unknown device 'tpu'"),
        (["bench", "--json", "/nonexistent-folder/x.json"], {}, "does not exist"),
        (["bench"], {"GPUCNN_PROFILE": "medium"}, "unknown profile 'medium'"),
        (["frobnicate"], {}, "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], env: dict, message: str) -> None:
    proc = run_cli(*args, env=env)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""  # nothing was measured


def test_absent_accelerator_is_refused() -> None:
    if accelerator_type() == "cuda":
        pytest.skip("this machine has CUDA")
    proc = run_cli("bench", "--device", "cuda")
    assert proc.returncode == 2 and "not present" in proc.stderr


def test_unwritable_json_path(tmp_path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    assert main(["bench", "--json", str(folder)]) == 2  # a folder, not a file


def test_bench_quick_writes_results_json(tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--device", "cpu", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["schema"].startswith("gpucnn-results/")
    assert {r["experiment"] for r in doc["results"]} == {"matmul_sweep", "copy_bandwidth", "small_op_latency"}
    printed = capsys.readouterr().out
    assert "GFLOP/s" in printed and "GB/s" in printed


def test_every_command_has_help_and_is_in_the_readme() -> None:
    from pathlib import Path

    from gpucnn.cli import build_parser

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, subparser in sub.choices.items():
        assert f"gpucnn {name}" in readme, f"`gpucnn {name}` is not documented in the README"
        for action in subparser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"gpucnn {name} {action.option_strings} has no help"
