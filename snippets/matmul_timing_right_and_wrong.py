# Time a matmul the way the article does, then correctly, on the CPU and (if
# present) the accelerator. Needs only torch. MIT License.
import timeit

import torch
from torch.utils.benchmark import Timer

device = torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"
threads = torch.get_num_threads()
n = 1000  # the article uses 2000; 1000 keeps this snippet quick


def article_way():
    # randn (and the copy to the device) inside the timed code, and no synchronize
    t = torch.randn(n, n).to(device)
    return torch.matmul(t, t)


# The article's %%timeit: plain timeit, which does not wait for a GPU.
loops = 3
article = min(timeit.repeat(article_way, number=loops, repeat=3)) / loops

# Correct: inputs made (and moved) beforehand; Timer synchronizes the
# accelerator and runs with all the threads torch uses (its default is 1).
a = torch.randn(n, n, device=device)
right = Timer("a @ a", globals={"a": a}, num_threads=threads).blocked_autorange(min_run_time=0.2)


def ms(seconds):
    return f"{seconds * 1e3:.3g} ms"


print(f"device: {device}, {threads} threads, n = {n}")
print(f"article's way (randn + copy inside, no sync): {ms(article)}")
if device == "cpu":  # on an accelerator the host's thread count does not change the matmul
    one_thread = Timer("a @ a", globals={"a": a}).blocked_autorange(min_run_time=0.2)
    print(f"Timer, default 1 thread: {ms(one_thread.median)}")
print(f"Timer, {threads} threads, inputs ready: {ms(right.median)} "
      f"= {2 * n**3 / right.median / 1e9:.0f} GFLOP/s")
