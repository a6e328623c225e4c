# Copy bandwidth at three buffer sizes. On a CPU with a last-level cache of
# tens of MiB they sit in the L2 cache, in the last-level cache, and far beyond
# it (DRAM); a server CPU with hundreds of MiB of cache needs larger buffers to
# reach DRAM (the sweep below sizes them from the cache). On a GPU the two small
# copies take a few microseconds, about what launching a kernel costs, so
# they measure the launch, not the L2 cache; only the largest measures memory.
# Bytes counted = read + written; GB = 10^9 bytes.
# Needs only torch. MIT License.
import torch
from torch.utils.benchmark import Timer

device = torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"
threads = torch.get_num_threads()

print(f"device: {device}, {threads} threads")
for size in (256 * 1024, 8 * 1024**2, 128 * 1024**2):  # bytes per buffer
    src = torch.ones(size // 4, device=device)  # float32: 4 bytes each
    dst = torch.empty_like(src)
    dst.copy_(src)  # warm up: touch the destination's pages once
    # Timer synchronizes the accelerator and, with num_threads, uses every thread.
    t = Timer("dst.copy_(src)", globals={"dst": dst, "src": src}, num_threads=threads)
    median = t.blocked_autorange(min_run_time=0.1).median
    print(f"{size / 1024**2:8.2f} MiB per buffer: {median * 1e6:10.1f} us per copy, "
          f"{2 * size / median / 1e9:7.1f} GB/s (read + written)")
