"""The code hash stored with every result: which code measured it.

An archived result is compared with today's code by this hash (see
``gpucnn.archive.status``). It covers the experiment *function's* own source
and the timing harness (``measure`` and ``sweep`` in ``gpucnn/bench.py``), and
nothing else: hashing every module an experiment imports would mark every
archived series "code changed" after any edit to, say, ``hardware.py``.

It is a function of source *texts*, so it can be computed from the working
tree at build time, and from ``git show <commit>:<path>`` for a record made
before hashes were stored (``gpucnn results migrate``). It cannot be computed
for an old commit at build time: the Pages checkout is shallow.

(The measurement *cache* key is stricter: ``gpucnn.results.code_hash`` hashes
every gpucnn module an experiment imports, because a cached figure must come
from exactly today's code.)
"""

from __future__ import annotations

import ast
import hashlib
import re
import subprocess
from functools import cache
from pathlib import Path

from gpucnn.specs import SPECS

HARNESS = ("measure", "sweep")
# A commit as git_show accepts it: anything else could be read by git as an option (``--output=FILE`` writes).
COMMIT_HASH = re.compile(r"[0-9a-f]{4,40}")
BENCH_PATH = "gpucnn/bench.py"
REPO = Path(__file__).resolve().parent.parent


class CodeHashError(ValueError):
    """A function or a source file that cannot be found."""


@cache  # a build asks for every experiment's hash: bench.py and each module are parsed once, not per function
def function_source(module_text: str, name: str) -> str:
    """The source of the top-level ``def name`` in ``module_text`` (decorators excluded)."""
    for node in ast.parse(module_text).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            segment = ast.get_source_segment(module_text, node)
            if segment:
                return segment
    raise CodeHashError(f"no function {name}() in the source")


def code_hash(module_text: str, function: str, bench_text: str) -> str:
    """Hash of one experiment function's source and of the harness's ``measure`` and ``sweep``."""
    parts = [function_source(module_text, function), *(function_source(bench_text, h) for h in HARNESS)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def module_path(module: str) -> str:
    """``gpucnn.experiments.matmul`` -> ``gpucnn/experiments/matmul.py`` (relative to the repository)."""
    return module.replace(".", "/") + ".py"


def current_code_hash(experiment: str, root: Path = REPO) -> str:
    """The code hash of an experiment in the working tree (``root``), read without importing it."""
    spec = SPECS.get(experiment)
    if spec is None:
        raise CodeHashError(f"unknown experiment {experiment!r}")
    try:
        module_text = (root / module_path(spec.module)).read_text(encoding="utf-8")
        bench_text = (root / BENCH_PATH).read_text(encoding="utf-8")
    except OSError as exc:
        raise CodeHashError(f"{experiment}: cannot read its source ({exc.strerror})") from None
    try:
        return code_hash(module_text, experiment, bench_text)
    except CodeHashError as exc:
        raise CodeHashError(f"{experiment}: {exc}") from None


def git_show(commit: str, path: str, root: Path = REPO) -> str:
    """The text of ``path`` at ``commit`` (4 to 40 hex digits) in the repository at ``root``."""
    if not COMMIT_HASH.fullmatch(commit):
        raise CodeHashError(f"{commit!r} is not a commit hash (4 to 40 hex digits)")
    try:
        out = subprocess.run(["git", "show", f"{commit}:{path}"], capture_output=True, text=True, timeout=30,
                             cwd=root)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CodeHashError(f"git show {commit}:{path} failed ({exc})") from None
    if out.returncode != 0:
        reason = (out.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise CodeHashError(f"git show {commit}:{path} failed: {reason}")
    return out.stdout


def code_hash_at(experiment: str, commit: str, root: Path = REPO) -> str:
    """The code hash of an experiment as it was at ``commit`` (its module as SPECS names it today)."""
    spec = SPECS.get(experiment)
    if spec is None:
        raise CodeHashError(f"unknown experiment {experiment!r}")
    module_text = git_show(commit, module_path(spec.module), root)
    bench_text = git_show(commit, BENCH_PATH, root)
    try:
        return code_hash(module_text, experiment, bench_text)
    except CodeHashError as exc:
        raise CodeHashError(f"{experiment} at {commit}: {exc}") from None
