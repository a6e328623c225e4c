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
# **GPU needed?** No. Everything here runs on the CPU; the accelerator figures appear when the site is
# built on a machine with a GPU.
#
# This page is a Jupyter notebook, executed when the site was built. Its code is thin: the work lives in the
# `gpucnn` package (`gpucnn.data`, `gpucnn.models`, `gpucnn.train`), and every time comes from the same
# timing harness as the other pages. [Download this notebook](training.py) (a
# jupytext percent-format `.py` file: open it in Jupyter with jupytext installed, or run it as a script).
#
# With `GPUCNN_PROFILE=quick` the throughput sweeps are shorter; the training run itself is the same
# fixed-seed run in both profiles, because it takes only seconds.

# %%
from IPython.display import HTML, Markdown, display

from gpucnn.pages import training as page
from gpucnn.profile import current_profile

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
# ### The standard speedups
#
# Each is measured alone against the plain fp32 step: **channels_last** stores images as
# (N, H, W, C), the layout convolution kernels prefer; **bf16 autocast** runs matrix work in bfloat16
# (it also runs on the CPU, where its gain depends on the CPU's bf16 support); **torch.compile** fuses
# the network's operations into fewer kernels.

# %%
display(HTML(page.speedup_table()))

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

# %% [markdown]
# ## Summary
#
# - Pre-processing: a fixed-seed stratified split into train, validation and test; normalization with
#   statistics of the training images only.
# - Training: a two-stage CNN reaches the 97 % target on the digits in a few seconds on a CPU; the
#   validation split picks the epoch, the test split gives one final score.
# - Speed: the batch-size sweep and the speedup table show what larger batches, channels_last and bf16
#   autocast (and, on an accelerator, torch.compile) change on this machine; none is a given.
# - Storing: a `state_dict` with metadata, reloaded on any device, and a `torch.export` program for
#   deployment, both checked to predict exactly like the original.
# - Deployment: batching multiplies the images per second, at the cost of waiting for a batch to fill.
