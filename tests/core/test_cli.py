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
        (["bench", "--json", ""], {}, "the path is empty"),
        (["bench", "--json", "/proc/y.json"], {}, "cannot be created"),
        (["bench", "--json", "/dev/null"], {}, "not a regular file"),
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
    absent = next(d for d in ("cuda", "mps", "xpu") if d != accelerator_type())
    proc = run_cli("bench", "--device", absent)
    assert proc.returncode == 2 and "not present" in proc.stderr


# What a CUDA build of torch prints on a machine without a GPU, at import.
NOISY_TORCH = """
import importlib.abc, os, sys
class Noisy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch":
            os.write(2, b"W1126 05:00:00.000000 1 torch/utils/cpp_extension.py:183] No CUDA runtime is found\\n")
            print("UserWarning: noise from python", file=sys.stderr)
        return None
sys.meta_path.insert(0, Noisy())
from gpucnn.cli import main
code = main(sys.argv[1:])
print("torch imported:", "torch" in sys.modules)
sys.exit(code)
"""


def run_noisy(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-c", NOISY_TORCH, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.parametrize(("args", "message"), [
    (["bench", "--device", "tpu"], "unknown device 'tpu'"),
    (["bench", "--json", "/proc/y.json"], "cannot be created"),
])
def test_torch_import_noise_never_precedes_the_one_line(args: list[str], message: str) -> None:
    proc = run_noisy(*args)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and message in proc.stderr
    assert "No CUDA runtime" not in proc.stderr and "noise" not in proc.stderr


def test_a_failed_import_shows_what_was_captured() -> None:
    from gpucnn import cli

    with pytest.raises(ModuleNotFoundError):
        cli.quiet_import("gpucnn_no_such_module_for_this_test")


def test_noise_is_dropped_on_bad_input_and_shown_on_a_real_failure(capfd) -> None:
    import os

    from gpucnn import cli

    with pytest.raises(cli.UsageError), cli.stderr_captured():
        os.write(2, b"W noise before bad input\n")
        raise cli.UsageError("bad")
    assert "noise" not in capfd.readouterr().err
    with pytest.raises(RuntimeError), cli.stderr_captured():
        os.write(2, b"W what went wrong\n")
        raise RuntimeError("real failure")
    assert "what went wrong" in capfd.readouterr().err


def test_noise_from_the_device_query_never_precedes_the_one_line(monkeypatch, capfd) -> None:
    import os

    import gpucnn.hardware as hardware

    def noisy_query() -> None:
        os.write(2, b"UserWarning: CUDA initialization: no NVIDIA driver\n")
        return None

    monkeypatch.setattr(hardware, "accelerator_type", noisy_query)
    assert main(["bench", "--device", "cuda"]) == 2
    err = capfd.readouterr().err
    assert err.strip().splitlines() == ["gpucnn: error: device 'cuda' is not present on this machine (present: cpu)"]


def test_results_commands_do_not_import_torch(tmp_path) -> None:
    env = {"GPUCNN_RESULTS_DIR": str(tmp_path / "archive")}
    (tmp_path / "archive").mkdir()  # an empty archive (a missing one is an error: issue 23)
    listed = run_noisy("results", "list", env=env)
    assert listed.returncode == 0 and "torch imported: False" in listed.stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    added = run_noisy("results", "add", str(bad), env=env)
    assert added.returncode == 2 and len(added.stderr.strip().splitlines()) == 1
    assert "torch imported: False" in added.stdout


@pytest.fixture
def fast_bench(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``gpucnn bench`` with its measurements replaced: the calls it made, and a results.json of ``{}``."""
    import gpucnn.render as render
    import gpucnn.results as results

    calls: list[str] = []

    def fake_run(fn, device: str, fresh=None):
        calls.append(f"{fn.__name__} on {device}")
        return fn.__name__

    monkeypatch.setattr(results, "run", fake_run)
    monkeypatch.setattr(render, "suite_table", lambda rs: "suite table")
    monkeypatch.setattr(results, "write_results_json", lambda path, rs: results.atomic_write_text(path, "{}"))
    return calls


def test_json_through_a_symlink_writes_its_target_and_keeps_the_link(tmp_path, fast_bench) -> None:
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert main(["bench", "--device", "cpu", "--json", str(link), "--force"]) == 0
    assert link.is_symlink() and target.read_text() == "{}"
    assert fast_bench  # it measured


def test_json_dangling_symlink_creates_its_target(tmp_path, fast_bench) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "new.json")
    assert main(["bench", "--device", "cpu", "--json", str(link)]) == 0
    assert link.is_symlink() and (tmp_path / "new.json").read_text() == "{}"


def test_json_fifo_is_refused_before_measuring(tmp_path, fast_bench, capsys) -> None:
    import os

    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    assert main(["bench", "--device", "cpu", "--json", str(fifo)]) == 2
    err = capsys.readouterr().err
    assert "not a regular file" in err and len(err.strip().splitlines()) == 1
    assert fast_bench == [] and fifo.exists()


@pytest.mark.parametrize("path", ["/proc/y.json", "/sys/y.json", ""])
def test_json_path_that_cannot_be_created_fails_before_measuring(path: str, fast_bench, capsys) -> None:
    assert main(["bench", "--device", "cpu", "--json", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpucnn: error: --json") and len(err.strip().splitlines()) == 1
    assert fast_bench == []


def test_an_interrupted_run_removes_the_file_it_claimed(tmp_path, monkeypatch, capsys) -> None:
    import gpucnn.results as results

    def interrupted(fn, device, fresh=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(results, "run", interrupted)
    out = tmp_path / "out.json"
    assert main(["bench", "--device", "cpu", "--json", str(out)]) == 2
    assert not out.exists() and "interrupted" in capsys.readouterr().err


def test_an_existing_json_file_is_kept_until_replaced(tmp_path, monkeypatch) -> None:
    import gpucnn.results as results

    def interrupted(fn, device, fresh=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(results, "run", interrupted)
    out = tmp_path / "out.json"
    out.write_text("earlier results")
    assert main(["bench", "--device", "cpu", "--json", str(out)]) == 2
    assert out.read_text() == "earlier results"


def test_unwritable_json_path(tmp_path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    assert main(["bench", "--json", str(folder)]) == 2  # a folder, not a file


def test_bench_quick_writes_results_json(bench_run) -> None:
    """The session's one real quick bench run (shared with the archive tests): its file and its table."""
    out, _cache = bench_run
    doc = json.loads(out.read_text())
    assert doc["schema"].startswith("gpucnn-results/")
    assert {r["experiment"] for r in doc["results"]} == {"matmul_sweep", "copy_bandwidth", "small_op_latency"}
    printed = (out.parent / "stdout.txt").read_text()
    assert "GFLOP/s" in printed and "GB/s" in printed


def test_every_command_has_help_and_is_in_the_readme() -> None:
    from pathlib import Path

    from gpucnn.cli import build_parser

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, subparser in sub.choices.items():
        assert f"gpucnn {name}" in readme, f"`gpucnn {name}` is not documented in the README"
        for action in subparser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"gpucnn {name} {action.option_strings} has no help"


def test_json_never_replaces_an_existing_file_without_force(tmp_path, fast_bench, capsys) -> None:
    """It may be an archived record (review B, M3): refused before measuring, the file kept."""
    precious = tmp_path / "precious.json"
    precious.write_text("27 experiments")
    assert main(["bench", "--device", "cpu", "--json", str(precious)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert precious.read_text() == "27 experiments" and fast_bench == []
    assert main(["bench", "--device", "cpu", "--json", str(precious), "--force"]) == 0
    assert precious.read_text() == "{}"


@pytest.mark.parametrize("name", ["out/", "out.json/"])
def test_json_path_naming_a_folder_is_refused(tmp_path, fast_bench, capsys, name: str) -> None:
    assert main(["bench", "--device", "cpu", "--json", f"{tmp_path}/{name}"]) == 2
    assert "names a folder" in capsys.readouterr().err
    assert fast_bench == [] and list(tmp_path.iterdir()) == []


def test_json_in_a_folder_that_cannot_be_written_is_refused_before_measuring(tmp_path, fast_bench, capsys,
                                                                           monkeypatch) -> None:
    import os

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    assert main(["bench", "--device", "cpu", "--json", str(tmp_path / "out.json")]) == 2
    assert "is not writable" in capsys.readouterr().err and fast_bench == []
