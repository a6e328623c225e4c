"""Matrix multiply: throughput against size, threads, and the article's experiment."""

from __future__ import annotations

from typing import Any

import torch

from gpucnn.bench import measure, sweep
from gpucnn.profile import current_profile
from gpucnn.results import experiment

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def matmul_sizes(max_n: int) -> list[int]:
    """Powers of two from 2 up to ``max_n``."""
    sizes, n = [], 2
    while n <= max_n:
        sizes.append(n)
        n *= 2
    return sizes


def measure_matmul(n: int, device: str, dtype: str = "float32", with_copy: bool = False, threads: int | None = None):
    """Time one n x n x n matmul on ``device``.

    With ``with_copy`` the two inputs start in host memory and each call copies
    them to the device first: what a GPU costs when the data is not already there.
    """
    dt = DTYPES[dtype]
    gen = torch.Generator().manual_seed(0)
    a_host = torch.randn(n, n, generator=gen).to(dt)
    b_host = torch.randn(n, n, generator=gen).to(dt)
    if with_copy:
        def fn() -> torch.Tensor:
            return a_host.to(device) @ b_host.to(device)
    else:
        a, b = a_host.to(device), b_host.to(device)

        def fn() -> torch.Tensor:
            return a @ b
    elem = torch.finfo(dt).bits // 8
    return measure(
        fn, name=f"matmul n={n}{' +copy' if with_copy else ''}", device=device, dtype=dt, shape=(n, n, n),
        flops=2.0 * n**3, bytes_moved=3.0 * n * n * elem, threads=threads,
        # A matmul reuses each input n times: only its FLOP/s is compared with a peak.
        working_set_bytes=0,
        # The pages call this "fp32" and draw the FP32 peak: never let a global TF32 setting
        # (torch.set_float32_matmul_precision("high")) turn it into a tensor-core TF32 matmul.
        allow_tf32=False,
    )


@experiment
def matmul_sweep(device: str, dtype: str = "float32", with_copy: bool = False) -> dict[str, Any]:
    """GFLOP/s of a square matmul for n = 2, 4, ... up to the profile's largest size."""
    elem = torch.finfo(DTYPES[dtype]).bits // 8
    result = sweep(
        matmul_sizes(current_profile().max_matmul_n),
        lambda n: measure_matmul(n, device, dtype, with_copy),
        device=device,
        # host copies of the inputs + device inputs + output, with room to spare
        bytes_needed=lambda n: 6.0 * n * n * elem,
    )
    return {"sweep": result}


@experiment
def matmul_threads(n: int = 1024) -> dict[str, Any]:
    """CPU matmul GFLOP/s with 1, 2, ... up to all the threads torch uses."""
    counts = sorted({1, *range(2, torch.get_num_threads() + 1, max(1, torch.get_num_threads() // 8))}
                    | {torch.get_num_threads()})
    return {"points": [measure_matmul(n, "cpu", threads=t) for t in counts], "threads": counts}


@experiment
def article_matmul(device: str) -> dict[str, Any]:
    """The seed article's experiment, timed its way and then correctly.

    The article times ``t = torch.randn(n, n).to(device); torch.matmul(t, t)``
    with ``%%timeit``: random-number generation (and, on a GPU, the
    host-to-device copy) is inside the timed loop, and nothing waits for the
    GPU to finish. Its method runs outside the impossible-result check, because
    it is shown as the flawed method.
    """
    out: dict[str, Any] = {}
    for n in (2, 2000):
        def article_way(n: int = n) -> torch.Tensor:
            t = torch.randn(n, n).to(device)
            return torch.matmul(t, t)

        # %%timeit calls no synchronize: a no-op sync reproduces that.
        out[f"article_{n}"] = measure(article_way, name=f"article's method n={n}", device=device,
                                      shape=(n, n, n), flops=2.0 * n**3, check=False, sync=lambda _d: None)
        out[f"randn_{n}"] = measure(lambda n=n: torch.randn(n, n).to(device), name=f"randn(+copy) n={n}",
                                    device=device, shape=(n, n))
        if device == "cpu":
            out[f"one_thread_{n}"] = measure_matmul(n, device, threads=1)
        out[f"correct_{n}"] = measure_matmul(n, device)
    return out
