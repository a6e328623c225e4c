# A convolution is a matrix multiply: unfold the input into patches
# (im2col), then multiply by the filters as a matrix.
# Needs only torch. MIT License.
import torch
import torch.nn.functional as F

acc = torch.accelerator
device = acc.current_accelerator().type if acc.is_available() else "cpu"
# NVIDIA GPUs may run conv2d in TF32 (10-bit mantissa): compare in FP32.
torch.backends.cudnn.allow_tf32 = False
torch.manual_seed(0)
N, Cin, H, W, Cout, k = 4, 3, 32, 32, 16, 3
x = torch.randn(N, Cin, H, W, device=device)
weight = torch.randn(Cout, Cin, k, k, device=device)

# (N, Cin*k*k, H*W): one column per output pixel, holding its k x k patch
cols = F.unfold(x, kernel_size=k, padding=1)
# (Cout, Cin*k*k) @ (N, Cin*k*k, H*W) -> (N, Cout, H*W)
out = (weight.reshape(Cout, -1) @ cols).reshape(N, Cout, H, W)
ref = F.conv2d(x, weight, padding=1)

print(f"input {tuple(x.shape)} -> columns {tuple(cols.shape)}: "
      f"each input value copied up to {k * k}x")
print(f"filters as a matrix {(Cout, Cin * k * k)} @ columns "
      f"-> output {tuple(out.shape)}")
print(f"max |im2col matmul - conv2d| = {(out - ref).abs().max().item():.2e}")
assert torch.allclose(out, ref, atol=1e-4)
flops = 2 * N * Cout * H * W * Cin * k * k
print(f"FLOPs: 2*N*Cout*H*W*Cin*k*k = {flops / 1e6:.1f} MFLOP")
