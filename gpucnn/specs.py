"""What each experiment measures, readable without torch: its version and the shape of its data.

Every ``@experiment`` function has one entry in ``SPECS``: its module, an
integer ``version`` and a frozen dataclass describing the ``data`` it returns.
``gpucnn.results.experiment`` refuses a function without one, and the archive
reads every stored result's data through that dataclass
(``gpucnn.typed.read``), so a record with the right JSON schema but the wrong
data shape is refused with the path of the bad field.

**Bump ``version`` only when what the experiment measures changes**, so that
archived figures would mislead beside the new ones (a different workload, a
different unit, a different method). A different size range, more points, or a
new field with a default is not a change of meaning. An archived result whose
version differs from ``SPECS`` is "superseded": listed, never drawn. Prefer a
new experiment or a new parameter to changing what an existing one measures.

Adding an experiment: write its data class here, add ``SPECS["name"] =
Spec(...)``, and decorate the function with ``@experiment``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gpucnn.measurement import Measurement, Sweep


@dataclass(frozen=True)
class Spec:
    """One experiment's declaration.

    Attributes:
        module: the module that defines the function (its source is hashed).
        version: bumped only when what the experiment measures changes.
        data: the frozen dataclass its ``data`` reads as.
        unchecked: fields holding Measurements deliberately taken without the
            impossible-result check (the article's flawed method): a reused
            cache entry does not re-check them either.
        working_set: the bytes one of its Measurements keeps in memory, where that is not
            its ``bytes_moved`` (what ``bench.measure`` was given as ``working_set_bytes``;
            a Measurement does not store it). A reused cache entry is re-checked with it.
    """

    module: str
    version: int
    data: type
    unchecked: frozenset[str] = frozenset()
    working_set: Callable[[Measurement], float] | None = None


def one_copy_working_set(m: Measurement) -> float:
    """Source + destination of one copy: an L2 sweep's call repeats that copy many times in the same buffers."""
    return 2.0 * m.shape[0]


# --- data classes, one per experiment (field names are the JSON keys) ----------

@dataclass(frozen=True)
class MatmulSweepData:
    sweep: Sweep


@dataclass(frozen=True)
class MatmulThreadsData:
    points: tuple[Measurement, ...]
    threads: tuple[int, ...]


@dataclass(frozen=True)
class ArticleMatmulData:
    """The article's method, randn(+copy) alone, and the correct timing, at n = 2 and 2000.

    ``one_thread_*`` only on the CPU.
    """

    article_2: Measurement
    randn_2: Measurement
    correct_2: Measurement
    article_2000: Measurement
    randn_2000: Measurement
    correct_2000: Measurement
    one_thread_2: Measurement | None = None
    one_thread_2000: Measurement | None = None


@dataclass(frozen=True)
class CopyBandwidthData:
    sweep: Sweep
    cache_bytes: int | None


@dataclass(frozen=True)
class ElementwiseBandwidthData:
    add: Measurement
    relu: Measurement
    size_bytes: int
    cache_bytes: int | None


@dataclass(frozen=True)
class HostToDeviceData:
    pageable: Sweep
    pinned: Sweep


@dataclass(frozen=True)
class L2CopyData:
    """Copies with the launch cost removed: ``copies_per_call`` copies per timed call (a CUDA graph if ``graphs``)."""

    sweep: Sweep
    cache_bytes: int | None
    graphs: bool
    copies_per_call: tuple[int, ...]


@dataclass(frozen=True)
class CopyComputeOverlapData:
    """A pinned host-to-device copy and a matmul: alone, serial, and overlapped on a side stream."""

    copy: Measurement
    compute: Measurement
    serial: Measurement
    overlapped: Measurement
    copy_bytes: int
    matmul_n: int
    side_stream: bool


@dataclass(frozen=True)
class SmallOpLatencyData:
    add_single: Measurement
    add_stream: Measurement
    matmul2x2_single: Measurement
    matmul2x2_stream: Measurement


@dataclass(frozen=True)
class MlpBatchSweepData:
    sweep: Sweep
    widths: tuple[int, ...]


@dataclass(frozen=True)
class ProfileRow:
    """One op of a ``torch.profiler`` run, per step (device columns only on an accelerator)."""

    op: str
    calls: float
    self_cpu_s: float
    self_cpu_pct: float
    self_device_s: float | None = None
    self_device_pct: float | None = None


@dataclass(frozen=True)
class MlpTimeSplitData:
    forward: Measurement
    train: Measurement
    batch: int
    steps: int
    profile: tuple[ProfileRow, ...]


@dataclass(frozen=True)
class ConvBatchSweepData:
    sweep: Sweep
    channels: int
    image: int
    kernel: int


@dataclass(frozen=True)
class ConvChannelSweepData:
    sweep: Sweep
    batch: int
    image: int
    kernel: int


@dataclass(frozen=True)
class LayerTime:
    layer: str
    cpu_total_s: float
    device_total_s: float | None = None  # the layer's kernels, on an accelerator (gpucnn.profiling.layer_rows)


@dataclass(frozen=True)
class CnnProfileData:
    ops: tuple[ProfileRow, ...]
    layers: tuple[LayerTime, ...]
    batch: int
    steps: int
    kernels: tuple[ProfileRow, ...] = ()  # on an accelerator (gpucnn.profiling.kernel_rows); older records: none


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float


@dataclass(frozen=True)
class SplitSizes:
    train: int
    val: int
    test: int


@dataclass(frozen=True)
class DigitsTrainingData:
    history: tuple[EpochStats, ...]
    step_losses: tuple[float, ...]
    steps_per_epoch: int
    best_epoch: int
    test_accuracy: float
    split_sizes: SplitSizes
    parameters: int
    epoch_time: Measurement
    train_images: int
    threads: int
    reloaded_identical: bool
    exported_identical: bool
    max_logit_difference: float
    metadata_keys: tuple[str, ...]
    checkpoint_bytes: int
    exported_bytes: int
    deploy: Sweep


@dataclass(frozen=True)
class TrainingThroughputData:
    sweep: Sweep
    speedups: dict[str, Measurement]
    skipped: dict[str, str]
    speedup_batch: int
    parameters: int


@dataclass(frozen=True)
class TrainingCombinedData:
    """The speedups together (and TF32 on CUDA), at ``batch``; the plain step is ``training_throughput``'s."""

    variants: dict[str, Measurement]
    skipped: dict[str, str]
    batch: int


@dataclass(frozen=True)
class ReuseRatioData:
    """The same n x n x n product as a tiled matmul and as a broadcast multiply and sum (no reuse)."""

    matmul: Sweep
    broadcast: Sweep


@dataclass(frozen=True)
class ResnetTrainSweepData:
    """Images/s of a ResNet training step against batch (fp32, TF32 off)."""

    sweep: Sweep
    model: str
    image: int
    parameters: int


@dataclass(frozen=True)
class ResnetVariantsData:
    """The step at ``batch`` with each speed-up; ``skipped`` maps a variant to a reason code
    (``gpucnn.experiments.resnet.SKIP_*``)."""

    variants: dict[str, Measurement]
    skipped: dict[str, str]
    batch: int
    model: str
    image: int


@dataclass(frozen=True)
class ResnetMemoryData:
    """A training step's memory: weights, gradients, optimizer state, saved activations at batch 1 and 2;
    on a CUDA GPU the peak per step against batch (``peak_bytes``: [batch, bytes] pairs)."""

    model: str
    image: int
    parameters: int
    weight_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    activation_bytes_batch1: int
    activation_bytes_batch2: int
    peak_bytes: tuple[tuple[int, ...], ...]
    largest_batch: int | None
    stopped: str | None
    device_memory_bytes: int | None


@dataclass(frozen=True)
class LayerTypeTime:
    layer_type: str
    seconds: float


@dataclass(frozen=True)
class LayerTypeWork:
    layer_type: str
    flops: float
    bytes: float


@dataclass(frozen=True)
class ResnetProfileData:
    """A profiled ResNet step by layer type (``rows``, per step), and each type's estimated work."""

    rows: tuple[LayerTypeTime, ...]
    work: tuple[LayerTypeWork, ...]
    batch: int
    steps: int
    precision: str
    channels_last: bool
    device_time: bool


@dataclass(frozen=True)
class BucketPoint:
    """The MLP's DDP step at one ``bucket_cap_mb``, and how many buckets DDP made of its gradients."""

    bucket_cap_mb: int
    buckets: int
    step: Measurement


@dataclass(frozen=True)
class GlooDdpData:
    """Two ranks x one thread, gloo over loopback, in one launch (``gpucnn.experiments.ddp``).

    Parity fields: the largest |weight difference| after one DDP step against one process's step on the whole
    batch, whether every weight is within ``rtol``/``atol``, and the largest gap between the two replicas.
    """

    world_size: int
    threads_per_rank: int
    allreduce: Sweep
    cnn_parameters: int
    cnn_global_batch: int
    cnn_max_weight_diff: float
    cnn_within_tolerance: bool
    cnn_replica_diff: float
    cnn_ddp_step: Measurement
    mlp_layers: int
    mlp_width: int
    mlp_parameters: int
    mlp_global_batch: int
    rtol: float
    atol: float
    mlp_local_step: Measurement
    mlp_flat_allreduce: Measurement
    mlp_max_weight_diff: float
    mlp_within_tolerance: bool
    mlp_replica_diff: float
    buckets: tuple[BucketPoint, ...]
    accumulation: int
    no_sync_step: Measurement
    sync_every_step: Measurement
    bf16_max_weight_diff: float
    bf16_within_tolerance: bool
    bf16_step: Measurement
    allreduces_no_sync: int
    allreduces_sync: int


@dataclass(frozen=True)
class DdpSingleProcessData:
    """The same steps in one process with ``threads`` threads, at ``gloo_ddp``'s global batch."""

    threads: int
    cnn_step: Measurement
    mlp_step: Measurement


_M = "gpucnn.experiments."

SPECS: dict[str, Spec] = {
    "matmul_sweep": Spec(_M + "matmul", 1, MatmulSweepData),
    "matmul_threads": Spec(_M + "matmul", 1, MatmulThreadsData),
    # bf16, fp16 or TF32 (params["precision"]): a sweep shaped like matmul_sweep's.
    "precision_matmul_sweep": Spec(_M + "precision", 1, MatmulSweepData),
    "article_matmul": Spec(_M + "matmul", 1, ArticleMatmulData,
                           unchecked=frozenset({"article_2", "article_2000"})),
    "copy_bandwidth": Spec(_M + "memory", 1, CopyBandwidthData),
    "elementwise_bandwidth": Spec(_M + "memory", 1, ElementwiseBandwidthData),
    "host_to_device_bandwidth": Spec(_M + "memory", 1, HostToDeviceData),
    # New experiments beside copy_bandwidth and host_to_device_bandwidth, whose archived records keep their meaning.
    "l2_copy_bandwidth": Spec(_M + "memory", 1, L2CopyData, working_set=one_copy_working_set),
    "copy_compute_overlap": Spec(_M + "memory", 1, CopyComputeOverlapData),
    "small_op_latency": Spec(_M + "latency", 1, SmallOpLatencyData),
    "mlp_batch_sweep": Spec(_M + "nn", 1, MlpBatchSweepData),
    "mlp_time_split": Spec(_M + "nn", 1, MlpTimeSplitData),
    "conv_batch_sweep": Spec(_M + "conv", 1, ConvBatchSweepData),
    "conv_channel_sweep": Spec(_M + "conv", 1, ConvChannelSweepData),
    "cnn_profile": Spec(_M + "conv", 1, CnnProfileData),
    "digits_training": Spec(_M + "training", 1, DigitsTrainingData),
    "training_throughput": Spec(_M + "training", 1, TrainingThroughputData),
    # A new experiment rather than new rows in training_throughput, whose archived records keep their meaning.
    "training_combined": Spec(_M + "training", 1, TrainingCombinedData),
    "reuse_ratio": Spec(_M + "reuse", 1, ReuseRatioData),
    # ResNet at real scale (docs/resnet.md): new experiments, so the older records simply lack them.
    "resnet_train_sweep": Spec(_M + "resnet", 1, ResnetTrainSweepData),
    "resnet_variants": Spec(_M + "resnet", 1, ResnetVariantsData),
    "resnet_memory": Spec(_M + "resnet", 1, ResnetMemoryData),
    "resnet_profile": Spec(_M + "resnet", 1, ResnetProfileData),
    # Data parallelism on the CPU (gloo): two ranks in one launch, and one process with two threads.
    "gloo_ddp": Spec(_M + "ddp", 1, GlooDdpData),
    "ddp_single_process": Spec(_M + "ddp", 1, DdpSingleProcessData),
}


@dataclass(frozen=True)
class GpuDdpData:
    """Data parallelism on a GPU build (``gpu_ddp``): the GPU count and how they are linked (``nvidia-smi topo
    -m``), one NCCL rank's DDP step against the plain step, gloo's host-staged all-reduce of GPU tensors, and
    with two or more GPUs the NCCL all-reduce sweep and DDP step across them."""

    gpus: int
    topology: tuple[str, ...] | None  # nvidia-smi topo -m, line by line
    backend: str
    plain_step: Measurement
    one_rank_ddp_step: Measurement
    gloo_allreduce: Sweep
    nccl_allreduce: Sweep | None = None
    nccl_ddp_step: Measurement | None = None


# A new experiment, so the archived H100/H200 records (recorded before it) simply lack it.
SPECS["gpu_ddp"] = Spec(_M + "ddp", 1, GpuDdpData)
