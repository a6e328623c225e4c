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
# **What you will learn:** pre-processing data, training, storing and deploying a CNN, for real on a small
# dataset, and what each step costs on a CPU and a GPU. [Download this notebook](training.py) (a jupytext
# `.py` file). Chart encodings: [How to read the charts](../glossary/#how-to-read-the-charts).

# %%
import torch
from torch import nn

from gpucnn.data import load_digits_split
from gpucnn.models import build_model
from gpucnn.train import data_config, evaluate, random_shift

# %% tags=["hide-input"]
# ruff: noqa: I001 (the plumbing imports are a hidden cell of their own)
from IPython.display import HTML, Markdown, display

from gpucnn.pages import training as page
from gpucnn.render import section_sources
from gpucnn.templating import render_partial


def say(part, **facts):
    """This page's words over the facts: docs/.partials/training.md."""
    display(Markdown(render_partial("training.md", part=part, **facts)))


print(f"profile: {page.profile_name()}; devices measured: {', '.join(page.devices())}")

# %% [markdown]
# ## 1. Pre-processing the data
#
# scikit-learn ships the *digits* dataset: 1,797 grey 8x8 images of the digits 0 to 9.
# `gpucnn.data.load_digits_split` scales the pixels to 0..1, splits the images with a fixed seed
# (stratified), standardizes them with the training images' statistics only, and returns tensors of shape
# (N, 1, 8, 8).

# %% tags=["hide-input"]
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
# The whole loop, untimed, five epochs on the CPU: change the first line and run it again.
# `gpucnn.train.train_digits` runs the same loop, timing each epoch and keeping the best validation epoch's
# weights: the figures below come from it.

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

# %% tags=["hide-input"]
display(HTML(page.training_table()))
say("training", f=page.training_facts())

# %% tags=["hide-input"]
display(page.loss_chart())
say("loss", f=page.training_facts())

# %% tags=["hide-input"]
display(page.accuracy_chart())
say("accuracy", f=page.training_facts())

# %% [markdown]
# ### Throughput against batch size
#
# An 8x8 image is far too small to keep a GPU busy, so these measurements widen the same network to
# synthetic 3x64x64 images. Bigger batches spread the fixed cost of a step over more images, until the
# device is full.

# %% tags=["hide-input"]
display(page.throughput_chart())
say("throughput", f=page.throughput_facts())

# %% [markdown]
# ### The standard speedups, alone and together
#
# Each is measured against the plain fp32 step: **[channels_last](../glossary/#channels-last)** stores
# images as (N, H, W, C), the layout convolution kernels prefer; **[bf16](../glossary/#bf16)
# [autocast](../glossary/#autocast)** runs matrix work in bfloat16; **[torch.compile](../glossary/#torch-compile)**
# [fuses](../glossary/#kernel-fusion) operations into fewer kernels; on an NVIDIA GPU,
# **[TF32](../glossary/#tf32)** runs fp32 matrix work on the [tensor cores](../glossary/#tensor-core).
# They are timed alone, then together, since gains that overlap do not multiply.

# %% tags=["hide-input"]
display(HTML(page.speedup_table()))
say("speedups", f=page.speedup_facts())

# %% tags=["hide-input"]
display(HTML(section_sources()))  # where this section's figures were measured

# %% [markdown]
# ## 3. Storing the model
#
# `gpucnn.train.save_checkpoint` saves the `state_dict` with the model's configuration and metadata
# (`torch.save`); `load_checkpoint` rebuilds it on any device, and a corrupt file raises a `CheckpointError`.
# For deployment the model is exported with `torch.export` as a `.pt2` file. Both must classify every test
# image exactly as the original does.

# %% tags=["hide-input"]
display(HTML(page.storing_table()))
say("storing", f=page.training_facts())

# %% tags=["hide-input"]
display(HTML(section_sources()))

# %% [markdown]
# ## 4. Deployment
#
# A deployed model answers one request at a time (latency) or many at once (throughput).

# %% tags=["hide-input"]
display(page.deploy_chart())
display(HTML(page.deploy_table()))
say("deploy", f=page.deploy_facts())

# %% tags=["hide-input"]
display(HTML(section_sources()))

# %% [markdown]
# ## Summary
#
# - Pre-processing: a fixed-seed stratified split, normalized with training statistics only.
# - Training: a small CNN reaches the 97 % target in seconds on a CPU; a GPU barely helps at this size.
# - Speed: batching, channels_last, bf16, torch.compile and TF32 gain differently on each machine, and
#   gains that overlap do not multiply.
# - Deployment: batching multiplies the images per second, at the cost of waiting for a batch to fill.
