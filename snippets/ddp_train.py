# Data-parallel training with DistributedDataParallel (DDP), launched by torchrun:
#
#   torchrun --standalone --nproc-per-node 2 ddp_train.py      # two processes on this machine
#
# NCCL on NVIDIA GPUs (one process per GPU), gloo on CPUs. Without torchrun
# (plain `python ddp_train.py`) it runs as a world of one process.
import contextlib
import os
import sys
import tempfile

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

EPOCHS = 3
BATCH = 32  # per process: the global batch is BATCH x world size
ACCUMULATE = 2  # micro-batches per optimizer step: all-reduce only on the last one

launched = "RANK" in os.environ  # torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
use_cuda = torch.cuda.is_available()
backend = "nccl" if use_cuda else "gloo"
local_rank = int(os.environ.get("LOCAL_RANK", "0"))
device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
if use_cuda:
    torch.cuda.set_device(device)

rendezvous = None
if launched:
    dist.init_process_group(backend)  # reads the address, rank and world size torchrun set
else:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # one process: loopback is all it needs
    rendezvous = tempfile.TemporaryDirectory()
    dist.init_process_group(backend, init_method=f"file://{rendezvous.name}/rendezvous", rank=0, world_size=1)
rank, world = dist.get_rank(), dist.get_world_size()

try:
    # The same synthetic data set on every rank: 8x8 images whose label a fixed random projection decides.
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(1024, 1, 8, 8, generator=gen)
    labels = (images.flatten(1) @ torch.randn(64, 10, generator=gen)).argmax(1)
    data = TensorDataset(images, labels)
    # Each rank reads its own 1/world of every epoch, shuffled the same way on all of them.
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=BATCH, sampler=sampler)

    torch.manual_seed(0)  # same initial weights everywhere (DDP also broadcasts rank 0's at start)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 10),
    ).to(device)
    model = DDP(model, device_ids=[local_rank] if use_cuda else None)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
        total = torch.zeros(2, device=device)  # loss sum, images
        for i, (x, y) in enumerate(loader):
            x, y = x.to(device), y.to(device)
            last = (i + 1) % ACCUMULATE == 0 or i + 1 == len(loader)
            # no_sync: keep this micro-batch's gradients local; the last one all-reduces them all.
            with contextlib.nullcontext() if last else model.no_sync():
                loss = loss_fn(model(x), y)
                (loss / ACCUMULATE).backward()
            if last:
                opt.step()
                opt.zero_grad(set_to_none=True)
            total += torch.stack([loss.detach() * len(y), torch.tensor(float(len(y)), device=device)])
        dist.all_reduce(total)  # every rank's loss, summed
        if rank == 0:
            print(f"epoch {epoch + 1}: mean loss {total[0].item() / total[1].item():.4f} "
                  f"over {int(total[1].item())} images on {world} process(es), {backend}")

    # The replicas must agree: gather every rank's weights and compare them with rank 0's.
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    copies = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(copies, flat)
    gap = max((c - copies[0]).abs().max().item() for c in copies)
    if rank == 0:
        print(f"replicas agree: {gap == 0.0} (largest difference between ranks: {gap:.3g})")
    dist.barrier()  # every rank is done with the group before any tears it down
finally:
    dist.destroy_process_group()
    if rendezvous is not None:
        rendezvous.cleanup()

# Done, and the group destroyed. Under torchrun, gloo's threads can still abort the interpreter's own shutdown
# now and then ("terminate called without an active exception", exit code -6): a rank leaves without it.
if launched:
    sys.stdout.flush()
    os._exit(0)
