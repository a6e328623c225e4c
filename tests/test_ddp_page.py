"""The data-parallel page's tables and charts, from made-up results (no worker is started): every figure is
labelled, the model is called a model and drawn in its own look, and an unchanged rebuild starts no worker."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from gpucnn import results, sources
from gpucnn.experiments import ddp as experiment
from gpucnn.measurement import Measurement, Sweep
from gpucnn.results import encode


def _m(name: str, seconds: float, shape: tuple[int, ...] = (1,), bytes_moved: float = 0.0, threads: int = 1
       ) -> Measurement:
    return Measurement(name=name, device="cpu", dtype="float32", shape=shape, threads=threads,
                       times_s=(seconds * 0.95, seconds, seconds * 1.1), number_per_run=1, bytes_moved=bytes_moved)


def fake_rank0(config: dict[str, Any]) -> dict[str, Any]:
    """What rank 0 of ``gloo_ddp`` returns, made up: an all-reduce of 50 µs + bytes / 1 GB/s."""
    sizes = config["sizes"]
    params = config["mlp_layers"] * (config["mlp_width"] ** 2 + config["mlp_width"])
    return encode({
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
    })


@pytest.fixture(autouse=True)
def outside_a_page() -> Iterator[None]:
    """These tests render as the build does, inside a page (``begin_page``); later tests render outside one,
    where every "No GPU in this build" note prints: leave no page begun."""
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


@pytest.fixture
def fake_single(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-process steps, made up too (they would run the MLP here)."""
    from gpucnn.pages import ddp as page

    real_run = page.run

    def run(fn: Any, **params: Any) -> Any:
        if fn is experiment.ddp_single_process:
            return real_run(_fake_single, **params)
        return real_run(fn, **params)

    monkeypatch.setattr(page, "run", run)


def _fake_single_impl(threads: int = 2) -> dict[str, Any]:
    return {"threads": threads, "cnn_step": _m("cnn 2 threads", 3e-3, threads=2),
            "mlp_step": _m("mlp 2 threads", 0.15, threads=2)}


# Registered under the real experiment's name, so run() reads it through the same spec.
_fake_single_impl.__name__ = "ddp_single_process"
_fake_single_impl.__module__ = experiment.__name__
_fake_single = _fake_single_impl


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


def test_the_page_shows_every_figure_labelled(fake_workers: list[dict], fake_single: None) -> None:
    from gpucnn.pages import ddp as page
    from gpucnn.render import section_sources

    sources.begin_page("data-parallel.md")
    out = {name: getattr(page, name)() for name in (
        "allreduce_chart", "allreduce_table", "step_table", "bucket_chart", "bucket_table", "accumulation_table",
        "compression_table", "model_inputs_table", "scaling_chart", "scaling_table", "hiding_table")}
    line = section_sources()
    assert 'data-source="live"' in line and "Measured in this build" in line
    text = " ".join(out.values())
    assert "not measured" not in text.lower()
    # the all-reduce fit: alpha 50 µs and beta 1 GB/s come back from the made-up points
    assert "50 µs" in out["allreduce_table"] and "1 GB/s" in out["allreduce_table"]
    # parity and verdicts are table cells
    assert ">yes<" in out["step_table"]
    assert re.search(r">(bf16 faster|bf16 slower|about equal)<", out["compression_table"])
    assert ">8<" in out["accumulation_table"] and ">4<" in out["accumulation_table"]


def test_the_model_is_labelled_a_model_and_drawn_in_its_own_look(fake_workers: list[dict]) -> None:
    from gpucnn.pages import ddp as page
    from gpucnn.render import section_sources

    sources.begin_page("data-parallel.md")
    inputs = page.model_inputs()
    if not inputs:
        pytest.skip("no GPU record in the archive")
    chart = page.scaling_chart()
    svg = chart.split("</figure>")[0]
    # every series is the model's: its source says so, and no archived (dashed, hollow) look is used
    marked = re.findall(r'data-source="([^"]*)"', svg)
    assert marked and all(m.startswith("model:") for m in marked)
    assert not re.search(r"fill-opacity: 0(?![.\d])", svg)
    labels = re.findall(r"<text[^>]*>([^<]*model[^<]*)</text>", svg)
    assert labels, "the legend names the model"
    table = re.sub(r"<[^>]+>", " ", chart.split("</figure>")[1])
    assert table.count("model") >= len(marked) // 2
    # the sources line names each record the model starts from
    line = section_sources()
    for i in inputs:
        if i.source.record:
            assert f"results/{i.source.record.name}" in line


def test_each_chart_has_its_table_and_reads_without_colour(fake_workers: list[dict], fake_single: None) -> None:
    from gpucnn.pages import ddp as page
    from gpucnn.render import section_sources
    from tests.test_pages_tables import charts_told_apart_by_colour_only, charts_without_table

    sources.begin_page("data-parallel.md")
    for name in ("allreduce_chart", "bucket_chart", "scaling_chart"):
        html = getattr(page, name)()
        if "<svg" not in html:
            continue
        assert charts_without_table(html) == [], name
        assert charts_told_apart_by_colour_only(html) == [], name
    section_sources()
