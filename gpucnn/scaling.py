"""The arithmetic of data parallelism: the alpha-beta fit of an all-reduce, bus bandwidth, and a scaling model.

Torch-free: pages and tests use it on stored results.

* ``fit_alpha_beta``: an all-reduce of ``n`` bytes takes ``alpha + n / beta``;
  fitted to measured (bytes, seconds) points, weighting each point by its own
  size so that the small messages (which set alpha) count as much as the
  large ones (which set beta).
* ``algbw`` and ``busbw``: bytes / time, and that times ``2 (n - 1) / n``, the
  share of the data a ring all-reduce sends over each link (nccl-tests'
  convention).
* The scaling model: a step on ``n`` GPUs is the measured one-GPU step plus
  a ring all-reduce of every gradient over a link of datasheet bandwidth,
  without or with overlap. Its inputs are named in ``Interconnect`` and
  ``ModelInputs``; nothing here is a measurement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class AlphaBeta:
    """``time(n bytes) = alpha_s + n / beta_bytes_per_s``."""

    alpha_s: float
    beta_bytes_per_s: float

    def time(self, nbytes: float) -> float:
        return self.alpha_s + nbytes / self.beta_bytes_per_s


def fit_alpha_beta(sizes: Sequence[float], times: Sequence[float]) -> AlphaBeta:
    """Least squares of relative errors: minimise ``sum(((alpha + n / beta) - t) / t) ** 2``.

    Linear in (alpha, 1/beta), so solved exactly (2x2 normal equations). A negative alpha (noise at the small
    sizes) is clipped to zero, and 1/beta refitted alone.

    Raises:
        ValueError: fewer than two points, a non-positive time, or sizes that cannot fix a slope.
    """
    if len(sizes) != len(times) or len(sizes) < 2:
        raise ValueError("need at least two (size, time) points of equal count")
    if any(t <= 0 for t in times) or any(n < 0 for n in sizes):
        raise ValueError("times must be positive and sizes non-negative")
    # Row i, divided by t_i: [1/t_i, n_i/t_i] . [alpha, 1/beta] = 1.
    a = [1.0 / t for t in times]
    b = [n / t for n, t in zip(sizes, times, strict=True)]
    saa = sum(x * x for x in a)
    sab = sum(x * y for x, y in zip(a, b, strict=True))
    sbb = sum(y * y for y in b)
    sa, sb = sum(a), sum(b)
    det = saa * sbb - sab * sab
    if det <= 0 or sbb <= 0:
        raise ValueError("the sizes do not fix a bandwidth (all equal, or all zero)")
    alpha = (sa * sbb - sb * sab) / det
    inv_beta = (saa * sb - sab * sa) / det
    if alpha < 0:
        alpha, inv_beta = 0.0, sb / sbb
    if inv_beta <= 0:
        raise ValueError("the fitted time does not grow with size: no bandwidth to report")
    return AlphaBeta(alpha, 1.0 / inv_beta)


def ring_factor(world_size: int) -> float:
    """``2 (n - 1) / n``: a ring all-reduce sends (and receives) this share of the data over each rank's link.

    Reduce-scatter then all-gather: each is ``n - 1`` steps of ``1/n`` of the data. It is 1 at n = 2, and
    approaches 2 as n grows.
    """
    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, got {world_size}")
    return 2.0 * (world_size - 1) / world_size


def algbw(nbytes: float, seconds: float) -> float:
    """Algorithm bandwidth: the message's bytes over the time, bytes per second."""
    return nbytes / seconds


def busbw(nbytes: float, seconds: float, world_size: int) -> float:
    """Bus bandwidth: algbw times ``ring_factor``, what each link carried; comparable with a link's speed."""
    return algbw(nbytes, seconds) * ring_factor(world_size)


# --- the scaling model ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Interconnect:
    """A link between GPUs, from a datasheet: one-way bandwidth per GPU."""

    name: str
    bytes_per_s: float  # one direction, per GPU
    source: str  # where the figure comes from (a short label)
    gpus: tuple[int, ...]  # the GPU counts the model is drawn for


NVLINK4 = Interconnect("NVLink 4", 450e9, "NVIDIA H100 datasheet: NVLink, half of the both-ways figure",
                       (1, 2, 4, 8))
PCIE5 = Interconnect("PCIe Gen5 x16", 63e9, "PCI Express 5.0 spec: 32 GT/s x 16 lanes, 128b/130b, one way",
                     (1, 2, 4, 8))
# Across nodes: NVLink inside each node of 8, one NDR port (400 Gb/s) per GPU between nodes; a ring over all
# GPUs runs at its slowest link.
IB_NDR = Interconnect("InfiniBand NDR", 50e9, "InfiniBand NDR: 400 Gb/s per port, one port per GPU",
                      (1, 8, 16, 32, 64))
INTERCONNECTS = (NVLINK4, PCIE5, IB_NDR)
GPUS_PER_NODE = 8

# The backward pass's share of a training step: it computes two products per forward one (the gradients of the
# input and of the weights), so 2 / 3 of the FLOPs. An assumption of the model, not a measurement.
BACKWARD_SHARE = 2.0 / 3.0


def link_bandwidth(link: Interconnect, gpus: int) -> float:
    """The bandwidth the ring runs at: NVLink inside a node of 8 (the IB case), else the link's own."""
    if link is IB_NDR and gpus <= GPUS_PER_NODE:
        return NVLINK4.bytes_per_s
    return link.bytes_per_s


def ring_allreduce_s(grad_bytes: float, gpus: int, bytes_per_s: float) -> float:
    """Bandwidth term of a ring all-reduce of ``grad_bytes`` over ``gpus``: ``2 (n-1)/n * bytes / bandwidth``.

    Latency (a fixed cost per ring step) is left out, so this is a lower bound on the time.
    """
    return ring_factor(gpus) * grad_bytes / bytes_per_s


@dataclass(frozen=True)
class Prediction:
    """The model's step time on ``gpus`` GPUs, each with the same per-GPU batch (weak scaling)."""

    gpus: int
    allreduce_s: float
    step_no_overlap_s: float
    step_overlap_s: float
    efficiency_no_overlap: float  # one-GPU step / n-GPU step
    efficiency_overlap: float
    hidden: bool  # the all-reduce fits inside the backward pass: with overlap, the step is the one-GPU step


def predict(step_s: float, grad_bytes: float, gpus: int, link: Interconnect,
            backward_share: float = BACKWARD_SHARE) -> Prediction:
    """One GPU's measured step ``step_s`` on ``gpus`` GPUs over ``link``.

    Without overlap the all-reduce follows the step; with overlap it runs during the backward pass
    (``backward_share`` of the step) and only what sticks out of it adds: ``step + max(0, allreduce -
    backward)``. Overlap from the very start of the backward pass is the best case: DDP's first bucket waits
    for its gradients, and its last cannot overlap at all.
    """
    if step_s <= 0 or grad_bytes < 0:
        raise ValueError("the step time must be positive and the gradient size non-negative")
    comm = ring_allreduce_s(grad_bytes, gpus, link_bandwidth(link, gpus)) if gpus > 1 else 0.0
    no_overlap = step_s + comm
    overlap = step_s + max(0.0, comm - backward_share * step_s)
    return Prediction(gpus, comm, no_overlap, overlap, step_s / no_overlap, step_s / overlap,
                      comm <= backward_share * step_s)


def hiding_batch(grad_bytes: float, gpus: int, link: Interconnect, flops_per_image: float,
                 peak_flops: float, backward_share: float = BACKWARD_SHARE) -> float:
    """The per-GPU batch from which the backward pass, run at ``peak_flops``, outlasts the all-reduce.

    The scaling book's C/W rule in images: the backward pass of ``b`` images takes
    ``backward_share * b * flops_per_image / peak_flops``; the all-reduce ``ring_allreduce_s``. Equal at this
    ``b``. At less than peak (every real step), the backward pass is longer and a smaller batch hides it.
    """
    comm = ring_allreduce_s(grad_bytes, gpus, link_bandwidth(link, gpus))
    return comm * peak_flops / (backward_share * flops_per_image)


def measured_hiding_batch(steps: Sequence[tuple[int, float]], allreduce_s: float,
                          backward_share: float = BACKWARD_SHARE) -> int | None:
    """The smallest measured per-GPU batch from which the backward share of every larger measured step outlasts
    ``allreduce_s``; None if not even the largest does. ``steps``: (batch, step seconds)."""
    found = None
    for batch, step in sorted(steps, reverse=True):
        if backward_share * step < allreduce_s:
            break
        found = batch
    return found


def overlap_fraction(local_step_s: float, flat_allreduce_s: float, ddp_step_s: float) -> float:
    """How much of the all-reduce hid behind the backward pass: ``(local + all-reduce - ddp) / all-reduce``.

    ``local_step_s``: the step without DDP; ``flat_allreduce_s``: one all-reduce of every gradient at once;
    ``ddp_step_s``: the DDP step; all at the same batch. 1 means fully hidden, 0 not at all; below 0, DDP cost
    more than the step and a flat all-reduce together (many small buckets, or cores shared with the compute).
    """
    if flat_allreduce_s <= 0:
        raise ValueError("the all-reduce time must be positive")
    return (local_step_s + flat_allreduce_s - ddp_step_s) / flat_allreduce_s


# --- published measurements, drawn beside the model as references ---------------------------------------------

@dataclass(frozen=True)
class Published:
    """An all-reduce bus bandwidth someone else measured and published: a reference, never this site's figure.

    ``sizes_bytes`` and ``busbw_bytes_per_s`` are the published points (message size per GPU, busbw); ``where``
    is the exact citation (repository, file and commit, or book and chapter), ``url`` where to read it.
    """

    label: str
    gpus: int
    gpu: str
    sizes_bytes: tuple[float, ...]
    busbw_bytes_per_s: tuple[float, ...]
    where: str
    url: str
    in_switch_reduction: bool  # NCCL reduced inside the NVSwitch (NVLS/SHARP): busbw may exceed the link

    @property
    def largest(self) -> tuple[float, float]:
        """(size, busbw) at the largest published message."""
        return self.sizes_bytes[-1], self.busbw_bytes_per_s[-1]

    def busbw_at(self, nbytes: float) -> float:
        """busbw at ``nbytes``, interpolated log-log between the published points (clamped at their ends)."""
        import math

        xs, ys = self.sizes_bytes, self.busbw_bytes_per_s
        if nbytes <= xs[0]:
            return ys[0]
        for (x0, y0), (x1, y1) in zip(zip(xs, ys, strict=True), zip(xs[1:], ys[1:], strict=True), strict=False):
            if nbytes <= x1:
                t = (math.log(nbytes) - math.log(x0)) / (math.log(x1) - math.log(x0))
                return math.exp(math.log(y0) + t * (math.log(y1) - math.log(y0)))
        return ys[-1]


_KIB = 1024
# stas00/ml-engineering, network/benchmarks/results/all-reduce-8xH200.md (read at commit c53741b8): one node of
# 8x H200 SXM, NVSwitch, torch 2.9.1+cu130, NCCL 2.27.7, all_reduce_bench.py; NCCL uses NVLS (the reduction
# in the switch) from 2 MiB on, which is why its busbw passes the 450 GB/s of the links.
ML_ENGINEERING_8XH200 = Published(
    "H200 node of 8, NCCL (ml-engineering)", 8, "H200",
    tuple(float(32 * _KIB * 2**k) for k in range(20)),
    tuple(g * 1e9 for g in (1.44, 2.93, 5.73, 11.74, 23.94, 39.93, 64.53, 107.16, 155.53, 219.89, 275.84,
                            346.51, 401.93, 436.15, 450.29, 463.58, 469.17, 473.10, 477.45, 482.26)),
    "stas00/ml-engineering, network/benchmarks/results/all-reduce-8xH200.md (commit c53741b)",
    "https://github.com/stas00/ml-engineering/blob/master/network/benchmarks/results/all-reduce-8xH200.md",
    True,
)
# "How to Scale Your Model", part 12 "How to Think About GPUs", section "Intra-node collectives" (jax-ml/
# scaling-book, gpus.md, read at commit 1a55377): an 8x H100 node with SHARP disabled reaches close to
# 370 GB/s of busbw, at about 10 GB per device.
JAX_BOOK_8XH100 = Published(
    "H100 node of 8, NCCL (scaling book)", 8, "H100", (10e9,), (370e9,),
    "How to Scale Your Model, part 12 'How to Think About GPUs', section 'Intra-node collectives' "
    "(jax-ml/scaling-book, gpus.md, commit 1a55377)",
    "https://jax-ml.github.io/scaling-book/gpus/",
    False,
)
PUBLISHED = (ML_ENGINEERING_8XH200, JAX_BOOK_8XH100)
