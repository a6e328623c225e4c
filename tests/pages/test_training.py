"""The notebook page's facts (gpucnn.pages.training): verdicts, numbers and sources, not phrases."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from gpucnn.hardware import Peak
from gpucnn.pages import training as page
from gpucnn.pages.training import CpuBf16, Together, Verdict


def _cpu(bf16_factor: float | None, isa: str | None = "AVX-512"):
    cpu = SimpleNamespace(peak_fp32=Peak(1e11, "FLOP/s", "test"), isa=isa,
                          peak_bf16=Peak(bf16_factor * 1e11, "FLOP/s", "test") if bf16_factor else None)
    return SimpleNamespace(is_cpu=True, hardware=SimpleNamespace(cpu=cpu))


def test_each_verdict_is_decided_from_the_ratio() -> None:
    assert page.verdict(1.3) is Verdict.FASTER
    assert page.verdict(1.05) is Verdict.SAME
    assert page.verdict(0.8) is Verdict.SLOWER


@pytest.mark.parametrize(("factor", "isa", "mode"), [
    (2.0, "AVX-512", CpuBf16.UNITS), (1.0, "AVX-512", CpuBf16.NO_UNITS),
    (1.0, "AVX2+FMA", CpuBf16.NO_UNITS_NO_AVX512), (None, "AVX2+FMA", CpuBf16.UNKNOWN)])
def test_the_cpu_bf16_cause_is_read_from_the_sources_own_report(factor, isa, mode) -> None:
    """Issue 19: without AVX-512 PyTorch does not hand bf16 convolutions and matmuls to oneDNN (ATen's
    reference kernels run instead): a verdict of its own, not the conversion cost."""
    got, x = page.cpu_bf16(_cpu(factor, isa))
    assert got is mode
    assert x == (pytest.approx(factor) if factor else None)


def _gains(**ratios: float) -> dict[str, page.Gain]:
    return {n.replace("_", " ") if n == "bf16_autocast" else n: page.Gain(n, r, page.verdict(r))
            for n, r in ratios.items()}


@pytest.mark.parametrize(("together", "how"), [
    (2.3, Together.ADD_UP), (2.0, Together.OVERLAP), (1.8, Together.LIKE_BEST), (0.6, Together.BELOW_BEST),
    (3.0, Together.BEYOND_PRODUCT)])
def test_gains_together_are_set_against_their_product(together: float, how: Together) -> None:
    alone = _gains(channels_last=1.3, bf16_autocast=1.8)
    got = page._together(("channels_last", "bf16 autocast"), together, alone)
    assert got.how is how
    assert got.product == pytest.approx(1.3 * 1.8)
    assert got.best.name == "bf16_autocast" and not got.compiled


def test_losses_alone_and_together_are_no_gain() -> None:
    alone = _gains(channels_last=0.29, bf16_autocast=0.59)
    assert page._together(("channels_last", "bf16 autocast"), 0.26, alone).how is Together.NO_GAIN


def _h200_sources(batch: int):
    """The archived H200 record's training step, and a made-up training_combined result from the same record."""
    import dataclasses

    from gpucnn.archive import records
    from gpucnn.experiments.training import training_throughput
    from gpucnn.measurement import Measurement
    from gpucnn.sources import Source, find
    from tests.conftest import ROOT

    record = next(r for r in records(ROOT / "results") if r.name == "nvidia-h200-2026-11-26.json")
    step = find(record, training_throughput, device="cuda")
    plain = step.typed.speedups["plain fp32"]
    # TF32 at exactly half the plain time, with a TF32 peak 7x the FP32 one: made-up figures for the test.
    tf32 = Measurement(name="train step TF32", device="cuda", dtype="float32", shape=plain.shape, threads=1,
                       times_s=(plain.median / 2,), number_per_run=1, flops=plain.flops,
                       peak_flops=7 * plain.peak_flops, peak_bytes_per_s=None)
    combined = dataclasses.replace(step, experiment="training_combined",
                                   data={"variants": {"TF32": tf32}, "skipped": {}, "batch": batch})
    return Source("cuda", step, record), Source("cuda", combined, record)


@pytest.mark.parametrize("same_batch", [True, False])
def test_combined_rows_come_from_the_same_record_at_the_same_batch(monkeypatch, same_batch: bool) -> None:
    step, combined = _h200_sources(1024 if same_batch else 512)
    assert step.result.typed.speedup_batch == 1024
    monkeypatch.setattr(page, "sources", lambda fn, **k: [step])
    monkeypatch.setattr(page, "sibling", lambda src, fn, **k: combined if src.origin == step.origin else None)
    table, facts = page.speedup_table(), page.speedup_facts()
    row = re.search(r'<tr data-source="([^"]+)">(?:(?!</tr>).)*>TF32<(?:(?!</tr>).)*</tr>', table)
    tf32 = facts.found[0].tf32
    if not same_batch:  # a ratio is never taken across batches
        assert row is None and tf32 is None
        return
    assert row is not None and row.group(1) == "archived:nvidia-h200-2026-11-26.json"
    assert ">2.00x<" in row.group(0)
    assert tf32.ratio == pytest.approx(2.0) and tf32.verdict is Verdict.FASTER
    assert facts.found[0].peak_tf32_x == pytest.approx(7.0)
    assert facts.found[0].source.origin == "archived:nvidia-h200-2026-11-26.json"


def test_every_archived_gpu_is_set_against_its_own_host_cpu() -> None:
    """The notebook's tables and charts show each record's host CPU beside its GPU, and its ratios are taken
    within one record: never this build's CPU against an archived GPU."""
    found = page.digits_with_hosts()
    for s in found:
        if s.archived and not s.is_cpu:
            assert any(h.is_cpu and h.origin == s.origin for h in found), s.label
    facts = page.training_facts()
    for p in facts.pairs:
        assert p.gpu.source.origin == p.cpu.source.origin
        assert p.ratio == pytest.approx(p.cpu.epoch_s / p.gpu.epoch_s)
        assert p.little_gain == (p.ratio < page.LITTLE_GAIN)
    for p in page.deploy_facts().pairs:
        assert p.gpu.source.origin == p.cpu.source.origin
        assert p.ratio == pytest.approx(p.gpu.best_per_s / p.cpu.best_per_s)


def test_the_fixed_seed_run_meets_the_target() -> None:
    facts = page.training_facts()
    assert facts.meets_target and facts.cpu.test_accuracy_pct >= 100 * page.TARGET_ACCURACY
    assert facts.cpu.source.origin == "live"


def test_the_notebook_words_render_without_template_syntax() -> None:
    from gpucnn.templating import render_partial

    for part, facts in (("training", page.training_facts()), ("speedups", page.speedup_facts()),
                        ("deploy", page.deploy_facts()), ("throughput", page.throughput_facts())):
        text = render_partial("training.md", part=part, f=facts)
        assert text.strip() and "{{" not in text and "{%" not in text, part
