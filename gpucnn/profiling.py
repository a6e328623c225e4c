"""torch.profiler output, summarized once: top-op rows and per-layer times, from live or archived runs.

What the profiler's ``key_averages()`` holds on an accelerator, and why it needs care:

- an *operator* row (``aten::mm``, device type CPU) carries, as its self device
  time, the time of the kernels it launched;
- each *kernel* (device type CUDA, ...) is a row of its own with that same time;
- a ``record_function`` label appears twice: once on the CPU side (its span of
  host time) and once on the device side (``gpu_user_annotation``, a span of the
  device's timeline, with no CPU time).

Adding self device time over every row therefore counts each kernel twice and
the labels on top. Here the ops table has operator rows only, device shares are
taken of the kernels' total, and a label is one row with its host time and its
kernels' device time. Nothing here imports torch: it reads event attributes,
and the rows archived records already hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

# Events the profiler records about itself (CUPTI asking for a trace buffer), not operators of the program.
PROFILER_EVENTS = frozenset({"Activity Buffer Request"})


def _device_time(event: Any) -> float:
    """Self time on the accelerator in µs (the attribute's name changed across torch versions)."""
    for name in ("self_device_time_total", "self_cuda_time_total"):
        value = getattr(event, name, None)
        if value is not None:
            return float(value)
    return 0.0


def _total_device_time(event: Any) -> float:
    """Device time in µs of everything an event launched, its children's included."""
    for name in ("device_time_total", "cuda_time_total"):
        value = getattr(event, name, None)
        if value is not None:
            return float(value)
    return 0.0


def on_host(event: Any) -> bool:
    """Whether a profiler event is host-side (an operator or a label's CPU span), not a kernel or device span."""
    return str(getattr(event, "device_type", "DeviceType.CPU")).rsplit(".", 1)[-1] == "CPU"


def is_label(event: Any) -> bool:
    """Whether an event is a ``record_function`` label rather than an operator or a kernel."""
    return bool(getattr(event, "is_user_annotation", False))


def short_op_name(name: str, limit: int = 80) -> str:
    """An op name fit for a table cell: CUDA kernel names are C++ template signatures hundreds of
    characters long (``void at::native::elementwise_kernel<128, 4, ...>(...)``); keep their head."""
    name = " ".join(name.split()).replace("`", "'").replace("|", "/")
    return name if len(name) <= limit else name[: limit - 1] + "…"


def op_rows(events: Iterable[Any], steps: int, top: int, device: str, skip_prefix: str | None = None
            ) -> list[dict[str, Any]]:
    """The ``top`` operators of a profile, per step, ranked by self device time on an accelerator, else self CPU time.

    Each row: op name, calls per step, self CPU time per step (s) and its share
    of all operators' self CPU time; on an accelerator whose kernels the
    profiler timed, self device time per step (s, the op's own kernels) and its
    share of all kernel time. Kernels and labels are not rows: their time is
    already in the operators'.
    """
    # A label is known by is_user_annotation where torch sets it, else by its prefix.
    events = [e for e in events if not is_label(e) and e.key not in PROFILER_EVENTS
              and not (skip_prefix and e.key.startswith(skip_prefix))]
    ops = [e for e in events if on_host(e) and (e.self_cpu_time_total > 0 or _device_time(e) > 0)]
    kernels = [e for e in events if not on_host(e) and _device_time(e) > 0]
    total_cpu = sum(e.self_cpu_time_total for e in ops) or 1.0
    # The device's busy time is the kernels' sum; with no kernel rows (an older
    # profiler), the operators' self device times are not counted twice.
    total_dev = sum(_device_time(e) for e in kernels) or sum(_device_time(e) for e in ops)
    timed = device != "cpu" and total_dev > 0
    key = _device_time if timed else (lambda e: e.self_cpu_time_total)
    rows = []
    for e in sorted(ops, key=key, reverse=True)[:top]:
        rows.append({
            "op": short_op_name(e.key), "calls": e.count / steps,
            "self_cpu_s": e.self_cpu_time_total * 1e-6 / steps,
            "self_cpu_pct": 100.0 * e.self_cpu_time_total / total_cpu,
            "self_device_s": _device_time(e) * 1e-6 / steps if timed else None,
            "self_device_pct": 100.0 * _device_time(e) / total_dev if timed else None,
        })
    return rows


def kernel_rows(events: Iterable[Any], steps: int, top: int, skip_prefix: str | None = None) -> list[dict[str, Any]]:
    """The ``top`` device kernels (and copies) of a profile, per step, by device time: a table of their own,
    beside the operators that launched them, so that no time is counted twice in either.

    Rows have the operator rows' fields (no CPU time: a kernel runs on the
    device); shares are of all kernel time. Empty on the CPU and where the
    profiler timed no kernels (MPS).
    """
    kernels = [e for e in events if not on_host(e) and not is_label(e) and _device_time(e) > 0
               and not (skip_prefix and e.key.startswith(skip_prefix))]
    total = sum(_device_time(e) for e in kernels)
    return [{
        "op": short_op_name(e.key), "calls": e.count / steps, "self_cpu_s": 0.0, "self_cpu_pct": 0.0,
        "self_device_s": _device_time(e) * 1e-6 / steps, "self_device_pct": 100.0 * _device_time(e) / total,
    } for e in sorted(kernels, key=_device_time, reverse=True)[:top]]


def layer_rows(events: Iterable[Any], steps: int, prefix: str, order: Sequence[str], device: str
               ) -> list[dict[str, Any]]:
    """One row per ``record_function`` label ``prefix + name``: host time, and the device time of its kernels.

    ``cpu_total_s``: host time inside the label per step (on a GPU, the time to
    launch the layer's kernels). ``device_total_s``: the summed time of the
    kernels launched inside it, per step; None on the CPU, or where the profiler
    timed no kernels (MPS).
    """
    cpu: dict[str, float] = {}
    dev: dict[str, float] = {}
    span: dict[str, float] = {}
    for e in events:
        if not e.key.startswith(prefix):
            continue
        name = e.key.removeprefix(prefix)
        if on_host(e):
            cpu[name] = cpu.get(name, 0.0) + e.cpu_time_total
            dev[name] = dev.get(name, 0.0) + _total_device_time(e)
        else:  # the label's span on the device timeline
            span[name] = span.get(name, 0.0) + _total_device_time(e)
    names = sorted(set(cpu) | set(span), key=lambda n: order.index(n) if n in order else len(order))
    timed = device != "cpu" and any(v > 0 for v in [*dev.values(), *span.values()])
    return [{
        "layer": name,
        "cpu_total_s": cpu.get(name, 0.0) * 1e-6 / steps,
        "device_total_s": (dev.get(name) or span.get(name, 0.0)) * 1e-6 / steps if timed else None,
    } for name in names]


# --- reading stored rows, including records made before the fixes above -------------------------

def _get(row: Any, name: str) -> Any:
    return row.get(name) if isinstance(row, dict) else getattr(row, name, None)


def _row(row: Any) -> dict[str, Any]:
    return {k: _get(row, k) for k in ("op", "calls", "self_cpu_s", "self_cpu_pct", "self_device_s", "self_device_pct")}


def stored_op_rows(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Stored top-op rows, fit to show: operator rows only, device shares only where they are right.

    Records made before this module listed kernels (no CPU time, device time
    only) beside the operators that launched them, and took device shares of a
    total that counted every kernel twice. Their kernel rows are dropped, and
    so are their device shares (set to None): the right total was not stored.
    """
    rows = [_row(r) for r in rows if _get(r, "op") not in PROFILER_EVENTS]
    kernel_rows = [r for r in rows if not r["self_cpu_s"] and r["self_device_s"]]
    if not kernel_rows:
        return rows
    return [{**r, "self_device_pct": None} for r in rows if r not in kernel_rows]


def stored_kernel_rows(ops: Sequence[Any], kernels: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """The kernel rows of a stored profile: its own ``kernels`` list, or, in a record made before there was
    one, the kernel rows mixed into ``ops`` (no CPU time), with their double-counted shares dropped."""
    if kernels:
        return [_row(r) for r in kernels]
    return [{**r, "self_device_pct": None} for r in map(_row, ops) if not r["self_cpu_s"] and r["self_device_s"]]


def stored_layer_rows(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Stored per-layer rows, one per layer: records made before this module have each layer twice on a GPU
    (the label's host span, then its device span with no CPU time), and no device time."""
    merged: dict[str, dict[str, Any]] = {}
    for r in rows:
        name = _get(r, "layer")
        cpu = _get(r, "cpu_total_s") or 0.0
        dev = _get(r, "device_total_s")
        if name in merged:
            m = merged[name]
            m["cpu_total_s"] += cpu
            if dev is not None:
                m["device_total_s"] = (m["device_total_s"] or 0.0) + dev
        else:
            merged[name] = {"layer": name, "cpu_total_s": cpu, "device_total_s": dev}
    return list(merged.values())
