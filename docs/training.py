# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Train, store and deploy a CNN
#
# **What you will learn:** the four steps the article names for working with a CNN, done for real on a
# small dataset: pre-processing the data, training the model, storing it, and deploying it; and what each
# step costs on this build machine's CPU and, where it has one, its GPU.
# **GPU needed?** No. Everything here runs on the CPU; the accelerator figures are measured when the site
# is built on a machine with a GPU, and otherwise come from archived records of real GPU builds, labelled
# as such.
#
# This page is a Jupyter notebook, executed when the site was built. Its training loop is written out in a
# cell that you can change and run; the rest of its code is thin: the work lives in the `gpucnn` package
# (`gpucnn.data`, `gpucnn.models`, `gpucnn.train`), and every time comes from the same timing harness as
# the other pages. [Download this notebook](training.py) (a
# jupytext percent-format `.py` file: open it in Jupyter with jupytext installed, or run it as a script).
#
# With `GPUCNN_PROFILE=quick` the throughput sweeps are shorter; the training run itself is the same
# fixed-seed run in both profiles, because it takes only seconds.

# %%
import torch
from IPython.display import HTML, Markdown, display
from torch import nn

from gpucnn.data import load_digits_split
from gpucnn.models import build_model
from gpucnn.pages import training as page
from gpucnn.profile import current_profile
from gpucnn.render import section_sources
from gpucnn.train import data_config, evaluate, random_shift

print(f"profile: {current_profile().name}; devices measured: {', '.join(page.devices())}")

# %% [markdown]
# ## 1. Pre-processing the data
#
# scikit-learn ships the *digits* dataset inside the package: 1,797 grey 8x8 images of the digits 0 to 9,
# so nothing is downloaded. `gpucnn.data.load_digits_split` scales the pixels to 0..1, splits the images
# with a fixed seed (stratified, so every digit is equally represented in each split), standardizes them with
# the mean and standard deviation of the training images only, and turns them into tensors of shape
# (N, 1, 8, 8). The validation split chooses which epoch's weights to keep; the test split is touched once,
# for the final score.

# %%
display(HTML(page.split_table()))

# %% [markdown]
# ## 2. Training
#
# The model (`gpucnn.models.SmallCNN`) is two rounds of 3x3 convolution, ReLU and 2x2 max-pooling, then
# two linear layers. It trains with AdamW, a one-cycle learning-rate schedule and random one-pixel shifts
# of each batch (a digit moved by a pixel is the same digit).
#
# ### The training loop
#
# The cell below is the whole loop, written out: the model, the optimizer, the epochs, the batches, the
# loss, `backward`, the optimizer step and the validation pass. It is the loop that
# `gpucnn.train.train_digits` runs, without the two things that function adds: it times each epoch
# through the shared timing harness, and it keeps the weights of the best validation epoch. Change the
# settings on its first line, or any line, and run it again. This cell trains five epochs, untimed, on the
# CPU; the table and the charts after it come from the library's own run of the full schedule, timed and
# cached like every other measurement of this site, so the cell's losses are not theirs.

# %%
epochs, batch_size, lr, seed = 5, 32, 3e-3, 0  # change these, and run the cell again

data = load_digits_split(seed=seed)  # tensors of shape (N, 1, 8, 8), standardized, split train/val/test
model = build_model(data_config(data), seed=seed)  # gpucnn.models.SmallCNN, printed below
print(model)
optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
n = len(data.y_train)
schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * -(-n // batch_size))
gen = torch.Generator().manual_seed(seed)  # the shuffles and shifts: the same in every run
threads = torch.get_num_threads()
torch.set_num_threads(1)  # 8x8 images: a second thread costs more in hand-offs than it saves
try:
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen)  # a new order of the training images each epoch
        total = 0.0
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            x = random_shift(data.x_train[idx], 1, gen)  # move the batch by up to one pixel
            loss = nn.functional.cross_entropy(model(x), data.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # the gradient of the loss with respect to every weight
            optimizer.step()  # move each weight against its gradient
            schedule.step()
            total += loss.item() * len(idx)
        val_loss, val_acc = evaluate(model, data.x_val, data.y_val)  # eval mode, no gradients
        print(f"epoch {epoch}: training loss {total / n:.3f}, validation loss {val_loss:.3f}, "
              f"validation accuracy {100 * val_acc:.1f} %")
finally:
    torch.set_num_threads(threads)  # the measurements below use all the threads again

# %% [markdown]
# ### The library's timed run

# %%
display(HTML(page.training_table()))
display(Markdown(page.training_findings()))

# %%
display(page.loss_chart())

# %%
display(page.accuracy_chart())

# %%
display(HTML(page.accelerator_note("GPU training times and curves")))

# %% [markdown]
# ### Throughput against batch size
#
# An 8x8 image is far too small to keep a GPU busy, so the throughput measurements use the same network
# widened to synthetic 3x64x64 images. Each point times one training step on a batch already in device
# memory: bigger batches spread the fixed cost of each step over more images, until the device is full.

# %%
display(page.throughput_chart())
display(HTML(page.accelerator_note("GPU throughput points")))

# %% [markdown]
# ### The standard speedups, alone and together
#
# Each is measured against the plain fp32 step: **[channels_last](../glossary/#channels-last)** stores
# images as (N, H, W, C), the layout convolution kernels prefer; **[bf16](../glossary/#bf16)
# [autocast](../glossary/#autocast)** runs matrix work in bfloat16 (it also runs on the CPU, where its gain
# depends on the CPU's bf16 support); **[torch.compile](../glossary/#torch-compile)** (its compiler is
# called inductor) [fuses](../glossary/#kernel-fusion) the network's operations into fewer kernels. They
# are timed alone, then together, since gains that overlap do not multiply. On an NVIDIA GPU,
# **[TF32](../glossary/#tf32)** runs the fp32 convolutions and matmuls on the
# [tensor cores](../glossary/#tensor-core) with shorter mantissas. The plain step keeps TF32 off, so that
# it is true fp32.

# %%
display(HTML(page.speedup_table()))
display(HTML(page.speedup_findings()))

# %% tags=["hide-input"]
display(HTML(section_sources()))  # where this section's figures were measured: once, not under every chart

# %% [markdown]
# ## 3. Storing the model
#
# `gpucnn.train.save_checkpoint` saves the `state_dict` with the model's configuration and metadata
# (test accuracy, epoch kept, normalization, training settings) using `torch.save`; `load_checkpoint`
# rebuilds the model from it, mapping the tensors to the device asked for, so a checkpoint saved on a GPU
# loads on a CPU-only machine. A corrupt file, or one for a different model, raises a `CheckpointError` that
# names the file. For deployment the model is exported with `torch.export` (TorchScript is deprecated) and
# saved as a `.pt2` file. Both are reloaded and must classify every test image exactly as the original does.

# %%
display(HTML(page.storing_table()))

# %% tags=["hide-input"]
display(HTML(section_sources()))

# %% [markdown]
# ## 4. Deployment
#
# A deployed model answers one request at a time (latency) or many at once (throughput). This is the
# article's scalar-against-matrix lesson once more.

# %%
display(page.deploy_chart())
display(HTML(page.deploy_table()))
display(Markdown(page.deploy_findings()))
display(HTML(page.accelerator_note("GPU deployment figures")))

# %% tags=["hide-input"]
display(HTML(section_sources()))

# %% [markdown]
# ## Summary
#
# - Pre-processing: a fixed-seed stratified split into train, validation and test; normalization with
#   statistics of the training images only.
# - Training: a two-stage CNN reaches the 97 % target on the digits in a few seconds on a CPU; the
#   validation split picks the epoch, the test split gives one final score.
# - Speed: the batch-size sweep and the speedup table show what larger batches, channels_last and bf16
#   autocast (and, on an accelerator, torch.compile and TF32) change, alone and together, on this machine
#   and on each archived one; none is a given, and gains that overlap do not multiply.
# - Storing: a `state_dict` with metadata, reloaded on any device, and a `torch.export` program for
#   deployment, both checked to predict exactly like the original.
# - Deployment: batching multiplies the images per second, at the cost of waiting for a batch to fill.
