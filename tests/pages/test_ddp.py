"""The data-parallel page's facts, tables and charts, from made-up results (no worker is started): the verdicts
and numbers it decides, the model drawn in its own look, the published references with their citations, the
GPU branch, and the whole template rendered."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpucnn import results, scaling, sources
from gpucnn.experiments import ddp as experiment
from gpucnn.measurement import Measurement, Sweep
from gpucnn.results import encode
from tests.conftest import ROOT


def _m(name: str, seconds: float, shape: tuple[int, ...] = (1,), bytes_moved: float = 0.0, threads: int = 1,
       spread: float = 0.05) -> Measurement:
    return Measurement(name=name, device="cpu", dtype="float32", shape=shape, threads=threads,
                       times_s=(seconds * (1 - spread), seconds, seconds * (1 + 2 * spread)), number_per_run=1,
                       bytes_moved=bytes_moved)


def fake_rank0(config: dict[str, Any], **over: Any) -> dict[str, Any]:
    """What rank 0 of ``gloo_ddp`` returns, made up: an all-reduce of 50 µs + bytes / 1 GB/s."""
    sizes = config["sizes"]
    params = config["mlp_layers"] * (config["mlp_width"] ** 2 + config["mlp_width"])
    data = {
        "world_size": 2, "threads_per_rank": 1,
        "allreduce": Sweep(tuple(_m(f"all-reduce {n} B", 50e-6 + n / 1e9, (n,), n) for n in sizes)),
        "cnn_parameters": 53002, "cnn_global_batch": config["cnn_batch"], "cnn_max_weight_diff": 3e-8,
        "cnn_within_tolerance": True, "cnn_replica_diff": 0.0, "cnn_ddp_step": _m("cnn", 2e-3),
        "mlp_layers": config["mlp_layers"], "mlp_width": config["mlp_width"], "mlp_parameters": params,
        "mlp_global_batch": config["mlp_batch"], "rtol": experiment.RTOL, "atol": experiment.ATOL,
        "mlp_local_step": _m("local", 0.1), "mlp_flat_allreduce": _m("flat", 0.05, (4 * params,), 4 * params),
        "mlp_max_weight_diff": 2e-9, "mlp_within_tolerance": True, "mlp_replica_diff": 0.0,
        "buckets": [{"bucket_cap_mb": c, "buckets": max(1, 24 // c), "step": _m(f"cap {c}", 0.12 + 0.001 * c)}
                    for c in config["caps"]],
        "accumulation": 2, "no_sync_step": _m("no_sync", 0.2), "sync_every_step": _m("sync", 0.3),
        "bf16_max_weight_diff": 1e-6, "bf16_within_tolerance": False, "bf16_step": _m("bf16", 0.13),
        "allreduces_no_sync": 4, "allreduces_sync": 8,
    }
    data.update(over)
    return encode(data)


@pytest.fixture(autouse=True)
def outside_a_page() -> Iterator[None]:
    """Leave no page begun: later tests render outside one, where every "No GPU in this build" note prints."""
    yield
    sources.begin_page(None)


@pytest.fixture
def fake_workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict]]:
    """``launch`` replaced by made-up results; the list records each launch."""
    launches: list[dict] = []

    def launch(target: str, config: dict, **kw: Any) -> list[dict]:
        launches.append({"target": target, "config": config, **kw})
        return [fake_rank0(config), {"rank": 1}]

    monkeypatch.setattr(experiment, "launch", launch)
    results._BUILD.clear()
    yield launches
    results._BUILD.clear()


def _fake_single_impl(threads: int = 2) -> dict[str, Any]:
    return {"threads": threads, "cnn_step": _m("cnn 2 threads", 3e-3, threads=2),
            "mlp_step": _m("mlp 2 threads", 0.15, threads=2)}


# Registered under the real experiment's name, so run() reads it through the same spec.
_fake_single_impl.__name__ = "ddp_single_process"
_fake_single_impl.__module__ = experiment.__name__


@pytest.fixture
def fake_single(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-process steps, made up too (they would run the MLP here)."""
    from gpucnn.pages import ddp as page

    real_run = page.run

    def run(fn: Any, **params: Any) -> Any:
        return real_run(_fake_single_impl if fn is experiment.ddp_single_process else fn, **params)

    monkeypatch.setattr(page, "run", run)


# --- the measurement, through the cache ---------------------------------------------------------------------

def test_an_unchanged_rebuild_starts_no_worker(fake_workers: list[dict]) -> None:
    first = results.run(experiment.gloo_ddp)
    assert len(fake_workers) == 1 and not first.reused
    assert fake_workers[0]["target"] == "gpucnn.experiments.ddp:rank_main"
    assert "docs/data-parallel.md" in fake_workers[0]["what"]
    results._BUILD.clear()  # a new build: the result now comes from the disk cache
    again = results.run(experiment.gloo_ddp)
    assert len(fake_workers) == 1 and again.reused
    assert again.typed == first.typed


def test_a_worker_error_reaches_the_page_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpucnn.distributed import WorkerError

    def launch(*args: Any, **kw: Any) -> list[dict]:
        raise WorkerError(f"{kw['what']}: rank 1 of 2 failed (exit code 1):\nValueError: boom")

    monkeypatch.setattr(experiment, "launch", launch)
    results._BUILD.clear()
    with pytest.raises(WorkerError, match=r"(?s)docs/data-parallel.md: rank 1 of 2 failed .*ValueError: boom"):
        results.run(experiment.gloo_ddp, fresh=True)


# --- facts ------------------------------------------------------------------------------------------------------

def test_the_fit_and_the_copy_ratio(fake_workers: list[dict]) -> None:
    from gpucnn.pages import ddp as page

    a = page.allreduce_facts()
    assert a.alpha_s == pytest.approx(50e-6, rel=1e-6) and a.beta_gbps == pytest.approx(1.0, rel=1e-6)
    assert a.ring_factor == 1.0 and a.world_size == 2
    if a.copy_gbps:
        assert a.beta_over_copy == pytest.approx(a.beta_gbps / a.copy_gbps)


def test_step_verdicts_come_from_the_iqrs(fake_workers: list[dict], fake_single: None) -> None:
    from gpucnn.pages import ddp as page

    s = page.step_facts()
    # made up: CNN 2 ms (DDP) against 3 ms; MLP at the default cap 0.145 s against 0.15 s (IQRs overlap)
    assert s.cnn_verdict is page.Verdict.FASTER and s.cnn_ratio == pytest.approx(2 / 3)
    assert s.mlp_verdict is page.Verdict.EQUAL
    assert s.replicas_identical and s.within_tolerance
    assert s.default_cap_mb == experiment.DEFAULT_CAP_MB


def test_a_slower_ddp_step_and_a_replica_gap_are_said(monkeypatch: pytest.MonkeyPatch, fake_single: None) -> None:
    from gpucnn.pages import ddp as page

    monkeypatch.setattr(experiment, "launch", lambda target, config, **kw: [
        fake_rank0(config, cnn_ddp_step=_m("cnn", 9e-3), cnn_replica_diff=1e-3), {"rank": 1}])
    results._BUILD.clear()
    s = page.step_facts()
    results._BUILD.clear()
    assert s.cnn_verdict is page.Verdict.SLOWER and not s.replicas_identical


def test_bucket_and_accumulation_facts(fake_workers: list[dict]) -> None:
    from gpucnn.pages import ddp as page

    b = page.bucket_facts()
    assert b.caps_mb == experiment.BUCKET_CAPS_MB
    # overlap = (0.1 + 0.05 - step) / 0.05: the smallest cap's step (0.121 s) hides the most
    assert b.best_cap_mb == 1 and b.best_overlap == pytest.approx((0.15 - 0.121) / 0.05)
    assert b.any_negative  # cap 100: a 0.22 s step, more than 0.1 + 0.05
    c = page.accumulation_facts()
    assert (c.allreduces_sync, c.allreduces_no_sync, c.micro_batches) == (8, 4, 2)
    assert c.no_sync_verdict is page.Verdict.FASTER
    assert not c.bf16_within_tolerance


def test_the_model_stands_on_the_archived_records(fake_workers: list[dict]) -> None:
    from gpucnn.pages import ddp as page

    m = page.model_facts()
    if not m.sources:
        pytest.skip("no GPU record in the archive")
    assert all(s.archived for s in m.sources)
    assert [ln.name for ln in m.links] == [ln.name for ln in scaling.INTERCONNECTS]
    assert m.lowest is not None and 0 < m.lowest.efficiency <= 1
    # the lowest efficiency is the model's own minimum, over every record, batch, link and GPU count
    inputs = page.model_inputs()
    lows = [scaling.predict(s, i.grad_bytes, n, ln).efficiency_no_overlap
            for i in inputs for _, s in (i.smallest, i.largest) for ln in scaling.INTERCONNECTS for n in ln.gpus]
    assert m.lowest.efficiency == min(lows)


def test_the_published_references_are_cited_and_read_at_the_gradient_size() -> None:
    from gpucnn.pages import ddp as page

    r = page.reference_facts()
    h200, h100 = r.references
    assert h200.largest_busbw_gbps == pytest.approx(482.26) and h200.largest_bytes == 16 * 2**30
    assert h200.in_switch_reduction and h200.of_link > 1
    assert "stas00/ml-engineering" in h200.where and "all-reduce-8xH200.md" in h200.where
    assert h100.largest_busbw_gbps == pytest.approx(370) and not h100.in_switch_reduction
    assert "How to Scale Your Model" in h100.where
    # the sweep at the gradient size lies between its published neighbours, and slows the all-reduce
    sweep = scaling.ML_ENGINEERING_8XH200
    below = max(k for k, s in enumerate(sweep.sizes_bytes) if s <= r.gradient_bytes)
    assert sweep.busbw_bytes_per_s[below] / 1e9 <= r.busbw_at_gradient_gbps <= sweep.busbw_bytes_per_s[below + 1] / 1e9
    assert r.allreduce_published_s > r.allreduce_model_s


def test_gpu_facts_on_a_cpu_build_say_none() -> None:
    from gpucnn.pages import ddp as page

    if page.live_has_accelerator():
        pytest.skip("this build has a GPU")
    assert page.gpu_facts().state is page.GpuState.NONE
    assert page.gpu_table() == ""


# --- charts -----------------------------------------------------------------------------------------------------

def test_the_model_is_dotted_without_markers_and_references_are_black_stars(fake_workers: list[dict]) -> None:
    from gpucnn.pages import ddp as page

    if not page.model_inputs():
        pytest.skip("no GPU record in the archive")
    svg = page.scaling_chart().split("</figure>")[0]
    marked = re.findall(r'data-source="([^"]*)"', svg)
    assert marked and all(m.startswith("model:") for m in marked)
    assert "<use " not in svg.split("<defs>")[-1] or "marker" not in svg  # no marker drawn on a model line
    ref = page.reference_chart().split("</figure>")[0]
    assert re.findall(r'data-source="(published:[^"]*)"', ref)


def test_each_chart_has_its_table_and_reads_without_colour(fake_workers: list[dict], fake_single: None) -> None:
    from gpucnn.pages import ddp as page
    from tests.build.charts import charts_told_apart_by_colour_only, charts_without_table

    sources.begin_page("data-parallel.md")
    for name in ("allreduce_chart", "bucket_chart", "scaling_chart", "reference_chart"):
        html = getattr(page, name)()
        if "<svg" not in html:
            continue
        assert charts_without_table(html) == [], name
        assert charts_told_apart_by_colour_only(html) == [], name


# --- the page, rendered -------------------------------------------------------------------------------------------

def test_the_page_renders_every_section_with_its_sources(fake_workers: list[dict], fake_single: None) -> None:
    from gpucnn.templating import render_page

    sources.begin_page("data-parallel.md")
    md = (ROOT / "docs" / "data-parallel.md").read_text()
    out = render_page(md, "data-parallel.md", ROOT / "docs")
    assert "{{" not in out and "{%" not in out
    assert "glossary.md#how-to-read-the-charts" in out
    assert out.count('<figure class="gpucnn-chart">') >= 3
    assert "not measured" not in out.lower()
    assert "stas00/ml-engineering" in out and "How to Scale Your Model" in out
    sources_blocks = sources.PAGE.templated
    assert sources_blocks, "the sections' facts were noted for their sources lines"


def test_the_page_module_holds_no_sentences() -> None:
    """Words live in docs/data-parallel.md: string literals of four or more words stay few (labels, errors)."""
    import ast

    tree = ast.parse(Path(ROOT / "gpucnn" / "pages" / "ddp.py").read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    words = sum(len(n.value.split()) for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
                and len(n.value.split()) >= 4)
    assert words <= 140, words  # axis titles, legend entries, table headers
