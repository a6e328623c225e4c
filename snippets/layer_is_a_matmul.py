# A fully connected layer is one matrix multiply plus a bias.
# Needs only torch. MIT License.
import torch

acc = torch.accelerator
device = acc.current_accelerator().type if acc.is_available() else "cpu"
torch.manual_seed(0)

layer = torch.nn.Linear(784, 128).to(device)  # 784 inputs, 128 neurons
x = torch.randn(32, 784, device=device)       # a batch of 32 inputs

by_layer = layer(x)
by_matmul = x @ layer.weight.T + layer.bias  # (32x784) @ (784x128) + (128,)
diff = (by_layer - by_matmul).abs().max().item()
print(f"weight {tuple(layer.weight.shape)}, input {tuple(x.shape)}, "
      f"output {tuple(by_layer.shape)}")
print(f"max |nn.Linear - (x @ W.T + b)| = {diff:.2e}")
assert torch.allclose(by_layer, by_matmul, atol=1e-5)
flops = 2 * 32 * 784 * 128  # 2 x batch x in x out: a multiply-add is 2 FLOP
print(f"one forward pass = {flops / 1e6:.1f} MFLOP of matrix multiply")
