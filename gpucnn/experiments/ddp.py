"""Data parallelism on the build machine: gloo all-reduce and DistributedDataParallel, two ranks x one thread.

* ``gloo_ddp``: one launch of two worker processes (``gpucnn.distributed``),
  one thread each, which measure in turn: the all-reduce against message
  size; a DDP training step of the digits CNN and of an MLP with about
  100 MB of fp32 gradients, with a parity check against one process's step
  on the whole batch; the MLP's step at several ``bucket_cap_mb``; gradient
  accumulation with and without ``no_sync``; and ``bf16_compress_hook``.
* ``ddp_single_process``: the same two steps in one process with two threads,
  at the same global batch: what the two ranks are compared with.

Inside the workers every figure is timed by ``gpucnn.bench.measure``, with
the calls per run and the number of runs fixed (``number_per_run``,
``min_runs`` = ``max_runs``, no time budget) and the same on both ranks: a
collective called a different number of times on each rank would deadlock.
Calls per run come from a short pilot whose time both ranks agree on (an
all-reduce of the slower rank's time). Rank 0's measurements are reported.

GPU builds: this experiment runs on the CPU (gloo) whatever the build has. NCCL across two or more GPUs is not
measured: the machines this project is built on have at most one GPU, and NCCL cannot place two ranks on one.
"""

from __future__ import annotations

import copy
from typing import Any

from gpucnn.distributed import launch
from gpucnn.profile import current_profile
from gpucnn.results import decode, encode, experiment

# The bucket caps DDP is measured with (MB, DDP's unit: 2^20 bytes); 25 is DDP's default.
BUCKET_CAPS_MB = (1, 5, 25, 100)
DEFAULT_CAP_MB = 25
# Micro-batches per optimizer step in the accumulation measurement.
ACCUMULATION = 2
LEARNING_RATE = 0.1
# Parity: a DDP step's weights against one process's step on the whole batch, elementwise
# |ddp - single| <= ATOL + RTOL * |single| (torch.allclose's form). The two sum the same
# numbers in another order, so they differ by float32 rounding only.
RTOL = 1e-5
ATOL = 1e-6
WORLD_SIZE = 2


def plan() -> dict[str, Any]:
    """What the workers measure in this profile; the same dict goes to every rank, so they agree."""
    profile = current_profile()
    full = profile.name == "full"
    largest = 64 * 2**20 if full else 4 * 2**20
    step = 4 if full else 16
    sizes = [4]
    while sizes[-1] * step <= largest:
        sizes.append(sizes[-1] * step)
    return {
        "sizes": sizes,  # all-reduce message sizes, bytes (float32)
        "mlp_layers": 24 if full else 4,  # Linear(1024, 1024) each: 24 of them hold about 100 MB of fp32 weights
        "mlp_width": 1024,
        "mlp_batch": 8 if full else 4,  # global: half per rank; small, so that the 100 MB all-reduce is what costs
        "cnn_batch": 64 if full else 16,
        "runs": profile.min_runs,
        "run_s": profile.budget_s / 20,  # the length of one timed run, as bench.measure aims for
        "caps": list(BUCKET_CAPS_MB),
        "accumulation": ACCUMULATION,
        "lr": LEARNING_RATE,
    }


def timeout_s() -> float:
    """The whole launch's limit: ample for this machine, so that only a fault reaches it."""
    return 300.0 if current_profile().name == "full" else 150.0


def build_mlp(layers: int, width: int, seed: int = 0):
    """``layers`` x (Linear(width, width), ReLU), without the last ReLU; weights depend only on ``seed``."""
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mods: list[nn.Module] = []
        for i in range(layers):
            mods.append(nn.Linear(width, width))
            if i < layers - 1:
                mods.append(nn.ReLU())
        return nn.Sequential(*mods)


def mlp_batch(batch: int, width: int, seed: int = 1):
    """Random inputs and regression targets for the MLP."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, width, generator=gen), torch.randn(batch, width, generator=gen)


def cnn_batch(batch: int, seed: int = 1):
    """Random digits-shaped images (1x8x8) and labels for the digits CNN."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 1, 8, 8, generator=gen), torch.randint(0, 10, (batch,), generator=gen)


def _train_step(model, opt, loss_fn, x, y):
    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    return step


def _flat(model):
    import torch

    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _parity(model, reference) -> tuple[float, bool]:
    """(largest |difference| of any weight, whether every weight is within RTOL/ATOL) against ``reference``."""
    import torch

    diff = _flat(model).sub_(reference).abs_()
    bound = reference.abs().mul_(RTOL).add_(ATOL)
    return float(diff.max()), bool(torch.all(diff <= bound))


# --- what each rank runs ---------------------------------------------------------------------------------

def rank_main(rank: int, world: int, config: dict[str, Any]) -> dict[str, Any]:
    """Every measurement of ``gloo_ddp``, on one rank (``gpucnn.distributed`` calls it). Rank 0 returns the data."""
    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    from torch.nn.parallel import DistributedDataParallel as DDP

    from gpucnn.bench import measure
    from gpucnn.models import DIGITS, build_model, parameter_count

    runs, run_s = int(config["runs"]), float(config["run_s"])

    def agreed_max(value: float) -> float:
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())

    def timed(fn, name: str, *, number: int | None = None, **kw: Any):
        """``measure`` with the same calls on every rank: a pilot both agree on sets the calls per run."""
        dist.barrier()
        if number is None:
            import time

            start = time.perf_counter()
            fn()
            fn()
            per_call = agreed_max((time.perf_counter() - start) / 2)
            number = max(1, min(10_000, int(run_s / max(per_call, 1e-9))))
        m = measure(fn, name=name, number_per_run=number, min_runs=runs, max_runs=runs, budget_s=0.0,
                    threads=1, **kw)
        dist.barrier()
        return m

    def local(t: torch.Tensor) -> torch.Tensor:
        per = t.shape[0] // world
        return t[rank * per:(rank + 1) * per]

    def agreed_parity(model, reference, replicas: bool = True) -> tuple[float, bool, float]:
        """Parity against the single-process step, worst over ranks; and the largest gap between replicas
        (rank 0's weights sent to every rank; skipped, as 0, where not asked for)."""
        diff, ok = _parity(model, reference)
        gap = 0.0
        if replicas:
            flat = _flat(model)
            first = flat.clone()
            dist.broadcast(first, src=0)
            gap = agreed_max(float((flat - first).abs().max()))
        return agreed_max(diff), agreed_max(0.0 if ok else 1.0) == 0.0, gap

    out: dict[str, Any] = {"world_size": world, "threads_per_rank": torch.get_num_threads()}

    # 1. All-reduce of float32 zeros (a sum of zeros stays finite however often it runs) against size.
    points = []
    for nbytes in config["sizes"]:
        buf = torch.zeros(nbytes // 4)
        points.append(timed(lambda buf=buf: dist.all_reduce(buf), f"gloo all-reduce {nbytes} B",
                            shape=(nbytes,), bytes_moved=nbytes))
    out["allreduce"] = encode_sweep(points)

    # 2. The digits CNN: one DDP step against one process's step on the whole batch, then its step time.
    x, y = cnn_batch(int(config["cnn_batch"]))
    ce = nn.CrossEntropyLoss()
    reference = build_model(DIGITS)
    _train_step(reference, torch.optim.SGD(reference.parameters(), lr=config["lr"]), ce, x, y)()
    ref_flat = _flat(reference)
    cnn = DDP(build_model(DIGITS))
    opt = torch.optim.SGD(cnn.parameters(), lr=config["lr"])
    step = _train_step(cnn, opt, ce, local(x), local(y))
    step()
    diff, ok, replicas = agreed_parity(cnn.module, ref_flat)
    out.update(cnn_parameters=parameter_count(reference), cnn_global_batch=int(config["cnn_batch"]),
               cnn_max_weight_diff=diff, cnn_within_tolerance=ok, cnn_replica_diff=replicas)
    out["cnn_ddp_step"] = encode(timed(step, f"digits CNN DDP step, {world} ranks", shape=tuple(local(x).shape)))

    # 3. The MLP: without DDP, one flat all-reduce of all its gradients, and DDP at each bucket cap.
    layers, width, batch = int(config["mlp_layers"]), int(config["mlp_width"]), int(config["mlp_batch"])
    # Every rank builds the same weights from the same seed, so DDP need not broadcast 100 MB of them each time
    # it wraps a copy (init_sync=False); the replica check after the first step would show any difference.
    base = build_mlp(layers, width)
    x, y = mlp_batch(batch, width)
    xl, yl = local(x), local(y)
    mse = nn.MSELoss()
    reference = copy.deepcopy(base)
    _train_step(reference, torch.optim.SGD(reference.parameters(), lr=config["lr"]), mse, x, y)()
    ref_flat = _flat(reference)
    del reference
    params = parameter_count(base)
    out.update(mlp_layers=layers, mlp_width=width, mlp_parameters=params, mlp_global_batch=batch,
               rtol=RTOL, atol=ATOL)
    alone = copy.deepcopy(base)
    out["mlp_local_step"] = encode(timed(
        _train_step(alone, torch.optim.SGD(alone.parameters(), lr=config["lr"]), mse, xl, yl),
        f"MLP step without DDP, batch {xl.shape[0]}", shape=tuple(xl.shape), number=1))
    del alone
    flat = torch.zeros(params)
    out["mlp_flat_allreduce"] = encode(timed(lambda flat=flat: dist.all_reduce(flat), "gloo all-reduce of all MLP gradients",
                                             shape=(4 * params,), bytes_moved=4 * params, number=1))
    del flat

    buckets = []
    kept = None
    for cap in config["caps"]:
        model = DDP(copy.deepcopy(base), bucket_cap_mb=cap, init_sync=False)
        opt = torch.optim.SGD(model.parameters(), lr=config["lr"])
        step = _train_step(model, opt, mse, xl, yl)
        step()  # DDP rebuilds its buckets after the first step, in the order the gradients arrived
        if cap == DEFAULT_CAP_MB:
            diff, ok, replicas = agreed_parity(model.module, ref_flat)
            out.update(mlp_max_weight_diff=diff, mlp_within_tolerance=ok, mlp_replica_diff=replicas)
        m = timed(step, f"MLP DDP step, bucket_cap_mb={cap}", shape=tuple(xl.shape), number=1)
        buckets.append({"bucket_cap_mb": cap, "buckets": _bucket_count(model), "step": encode(m)})
        if cap == DEFAULT_CAP_MB:
            kept = (model, opt)
        else:
            del model, opt
    out["buckets"] = buckets

    # 4. Gradient accumulation over ACCUMULATION micro-batches: no_sync on all but the last, or not.
    model, opt = kept
    k = int(config["accumulation"])

    out["accumulation"] = k
    out["no_sync_step"] = encode(timed(_cycle(model, opt, mse, xl, yl, k, True), f"MLP optimizer step, {k} micro-batches, no_sync",
                                       shape=tuple(xl.shape), number=1))
    out["sync_every_step"] = encode(timed(_cycle(model, opt, mse, xl, yl, k, False), f"MLP optimizer step, {k} micro-batches, synced",
                                          shape=tuple(xl.shape), number=1))
    del model, opt, kept

    # 5. bf16_compress_hook at the default cap. Its hook runs in Python anyway, so a counter around it also
    # counts the all-reduces per optimizer step of accumulation, with and without no_sync (untimed).
    model = DDP(copy.deepcopy(base), bucket_cap_mb=DEFAULT_CAP_MB, init_sync=False)
    calls = [0]

    def counted(state, bucket):
        calls[0] += 1
        return default_hooks.bf16_compress_hook(state, bucket)

    model.register_comm_hook(dist.group.WORLD, counted)
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"])
    step = _train_step(model, opt, mse, xl, yl)
    step()
    diff, ok, _ = agreed_parity(model.module, ref_flat, replicas=False)
    out.update(bf16_max_weight_diff=diff, bf16_within_tolerance=ok)
    out["bf16_step"] = encode(timed(step, "MLP DDP step, bf16_compress_hook", shape=tuple(xl.shape), number=1))
    for no_sync, key in ((True, "allreduces_no_sync"), (False, "allreduces_sync")):
        calls[0] = 0
        _cycle(model, opt, mse, xl, yl, k, no_sync)()
        out[key] = calls[0]
    dist.barrier()
    return out if rank == 0 else {"rank": rank}


def _cycle(model, opt, loss_fn, x, y, k: int, no_sync: bool):
    """One optimizer step over ``k`` micro-batches; with ``no_sync``, only the last one all-reduces."""
    def cycle() -> None:
        opt.zero_grad(set_to_none=True)
        for i in range(k):
            if no_sync and i < k - 1:
                with model.no_sync():
                    (loss_fn(model(x), y) / k).backward()
            else:
                (loss_fn(model(x), y) / k).backward()
        opt.step()
    return cycle


def _bucket_count(model) -> int:
    """How many buckets DDP reduces per step, after its rebuild (its logging data lists their sizes)."""
    data = model._get_ddp_logging_data()
    sizes = data.get("rebuilt_bucket_sizes") or data.get("bucket_sizes") or ""
    return len([s for s in str(sizes).split(",") if s.strip()])


def encode_sweep(points: list[Any]) -> Any:
    from gpucnn.bench import Sweep

    return encode(Sweep(tuple(points)))


# --- the experiments ---------------------------------------------------------------------------------------

@experiment
def gloo_ddp() -> dict[str, Any]:
    """Two ranks x one thread, gloo over loopback: all-reduce sweep, DDP steps with parity, buckets, no_sync, bf16.

    Raises:
        gpucnn.distributed.WorkerError: a rank failed, was killed, or did not finish in time.
    """
    from gpucnn.hardware import detect

    results = launch("gpucnn.experiments.ddp:rank_main", plan(), world_size=WORLD_SIZE, threads=1,
                     timeout_s=timeout_s(), what="gloo_ddp(), the measurements of docs/data-parallel.md")
    return decode(results[0], detect())


@experiment
def ddp_single_process(threads: int = 2) -> dict[str, Any]:
    """The digits CNN's and the MLP's training steps in one process with ``threads`` threads, at the global batch
    of ``gloo_ddp``: what its ranks (one thread each) are set against."""
    import torch
    from torch import nn

    from gpucnn.bench import measure
    from gpucnn.models import DIGITS, build_model

    config = plan()
    x, y = cnn_batch(int(config["cnn_batch"]))
    cnn = build_model(DIGITS)
    cnn_step = measure(_train_step(cnn, torch.optim.SGD(cnn.parameters(), lr=config["lr"]), nn.CrossEntropyLoss(),
                                   x, y), name=f"digits CNN step, {threads} threads", shape=tuple(x.shape),
                       threads=threads)
    mlp = build_mlp(int(config["mlp_layers"]), int(config["mlp_width"]))
    x, y = mlp_batch(int(config["mlp_batch"]), int(config["mlp_width"]))
    mlp_step = measure(_train_step(mlp, torch.optim.SGD(mlp.parameters(), lr=config["lr"]), nn.MSELoss(), x, y),
                       name=f"MLP step, {threads} threads", shape=tuple(x.shape), threads=threads, number_per_run=1)
    return {"threads": threads, "cnn_step": cnn_step, "mlp_step": mlp_step}


# --- GPU builds ------------------------------------------------------------------------------------------------
#
# NOT RUN ON A GPU YET: the machines this project is built on have one GPU at most, and the session that wrote this
# had none. tests/test_ddp_gpu.py runs it with the fake accelerator (torch device "cpu:0", gloo in place of NCCL).

# The backend of the GPU group. NCCL on a real GPU; the fake-accelerator test sets "gloo" (no NCCL on a CPU).
GPU_BACKEND = "nccl"


def gpu_plan() -> dict[str, Any]:
    """What ``gpu_rank_main`` measures: the all-reduce sizes and the MLP (the CPU plan's, larger on a full build)."""
    config = plan()
    profile = current_profile()
    full = profile.name == "full"
    largest = 256 * 2**20 if full else 16 * 2**20
    sizes = [2**10]
    while sizes[-1] * 16 <= largest:
        sizes.append(sizes[-1] * 16)
    return {**config, "sizes": sizes, "mlp_batch": 64 if full else 16, "backend": GPU_BACKEND}


def gpu_rank_main(rank: int, world: int, config: dict[str, Any]) -> dict[str, Any]:
    """One rank of ``gpu_ddp`` (the default group is gloo; the GPU group ``config["backend"]``).

    Rank r uses GPU ``r % gpus``: with one GPU, both ranks share it. Measured, in order:
    1. rank 0 alone, in a group of one over the GPU backend: the MLP's step without DDP and with DDP (DDP's own
       cost: its hooks, bucket copies and a one-rank all-reduce);
    2. every rank: gloo's all-reduce of tensors on the GPU (gloo copies them to the host and back);
    3. with two or more GPUs: the GPU backend's all-reduce sweep and the MLP's DDP step across them.
    """
    import time

    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel as DDP

    from gpucnn.bench import measure

    gpus, kind = int(config["gpus"]), config["device"].split(":")[0]
    device = f"{kind}:{rank % gpus}" if kind == "cuda" else config["device"]
    if kind == "cuda":
        torch.cuda.set_device(device)
    runs, run_s = int(config["runs"]), float(config["run_s"])

    def sync(_device: str) -> None:
        """This rank's GPU (the fake accelerator's "cpu:0" has nothing to wait for)."""
        if kind == "cuda":
            torch.cuda.synchronize(device)

    def agreed_max(value: float, group=None) -> float:
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group)
        return float(t.item())

    def timed(fn, name: str, group=None, **kw: Any):
        """``measure`` with the same calls per run on every rank of ``group`` (a pilot they agree on)."""
        dist.barrier(group=group)
        start = time.perf_counter()
        fn()
        fn()
        if kind == "cuda":
            torch.cuda.synchronize()
        per_call = agreed_max((time.perf_counter() - start) / 2, group)
        number = max(1, min(10_000, int(run_s / max(per_call, 1e-9))))
        m = measure(fn, name=name, device=device, number_per_run=number, min_runs=runs, max_runs=runs,
                    budget_s=0.0, sync=sync, **kw)
        dist.barrier(group=group)
        return m

    layers, width, batch = int(config["mlp_layers"]), int(config["mlp_width"]), int(config["mlp_batch"])
    x, y = (t.to(device) for t in mlp_batch(batch, width))
    mse = nn.MSELoss()
    out: dict[str, Any] = {}

    # 1. DDP's own cost, on one rank of the GPU backend (NCCL refuses two ranks on one GPU).
    solo = dist.new_group([0], backend=config["backend"])
    if rank == 0:
        plain = build_mlp(layers, width).to(device)
        out["plain_step"] = encode(timed(_train_step(plain, torch.optim.SGD(plain.parameters(), lr=config["lr"]), mse,
                                                     x, y), "MLP step, no DDP", group=solo, shape=tuple(x.shape)))
        del plain
        one = DDP(build_mlp(layers, width).to(device), process_group=solo)
        out["one_rank_ddp_step"] = encode(timed(_train_step(one, torch.optim.SGD(one.parameters(), lr=config["lr"]),
                                                            mse, x, y), "MLP step, DDP on one rank", group=solo,
                                                shape=tuple(x.shape)))
        del one
    dist.barrier()

    # 2. gloo's all-reduce of GPU tensors: staged through host memory.
    points = []
    for nbytes in config["sizes"]:
        buf = torch.zeros(nbytes // 4, device=device)
        points.append(timed(lambda buf=buf: dist.all_reduce(buf), f"gloo all-reduce of GPU tensors, {nbytes} B",
                            shape=(nbytes,), bytes_moved=nbytes))
        del buf
    out["gloo_allreduce"] = encode_sweep(points)

    # 3. Two or more GPUs: the GPU backend across them.
    if gpus > 1:
        group = dist.new_group(list(range(world)), backend=config["backend"])
        points = []
        for nbytes in config["sizes"]:
            buf = torch.zeros(nbytes // 4, device=device)
            points.append(timed(lambda buf=buf: dist.all_reduce(buf, group=group),
                                f"{config['backend']} all-reduce, {nbytes} B", group=group, shape=(nbytes,),
                                bytes_moved=nbytes))
            del buf
        out["nccl_allreduce"] = encode_sweep(points)
        model = DDP(build_mlp(layers, width).to(device), process_group=group)
        per = batch // world
        step = _train_step(model, torch.optim.SGD(model.parameters(), lr=config["lr"]), mse,
                           x[rank * per:(rank + 1) * per], y[rank * per:(rank + 1) * per])
        out["nccl_ddp_step"] = encode(timed(step, f"MLP DDP step, {world} ranks", group=group, shape=(per, width)))
    dist.barrier()
    return out if rank == 0 else {"rank": rank}


def gpu_topology() -> list[str] | None:
    """``nvidia-smi topo -m`` (how the GPUs are linked: NVLink, PCIe) as lines with their tabs and runs of spaces
    made one space (a record's strings are printable text), or None where it cannot be run."""
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "topo", "-m"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [" ".join("".join(c for c in line if c.isprintable() or c.isspace()).split())[:200]
             for line in proc.stdout.splitlines()]
    lines = [line for line in lines if line][:64]
    return lines or None if proc.returncode == 0 else None


@experiment
def gpu_ddp(device: str) -> dict[str, Any]:
    """Data parallelism on this build's GPU(s), in one launch: one NCCL rank's DDP overhead, gloo's host-staged
    all-reduce of GPU tensors (two ranks; on one GPU both share it), and with two or more GPUs NCCL across them.

    Raises:
        ValueError: ``device`` is the CPU.
        gpucnn.distributed.WorkerError: a rank failed, was killed, or did not finish in time.
    """
    if device == "cpu":
        raise ValueError("gpu_ddp needs an accelerator device, not the CPU")
    from gpucnn.hardware import detect

    hw = detect()
    gpus = hw.accelerator.count if hw.accelerator is not None and device.startswith("cuda") else 1
    config = {**gpu_plan(), "device": device, "gpus": gpus}
    ranks = launch("gpucnn.experiments.ddp:gpu_rank_main", config, world_size=max(2, gpus), threads=1,
                   timeout_s=timeout_s(), what="gpu_ddp(), the GPU measurements of docs/data-parallel.md")
    return decode({"gpus": gpus, "topology": gpu_topology(), "nccl_allreduce": None, "nccl_ddp_step": None,
                   "backend": config["backend"], **ranks[0]}, hw)
