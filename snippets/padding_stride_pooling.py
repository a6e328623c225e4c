# Padding, stride and pooling change the output size: see by how much.
# Needs only torch. MIT License.
import torch
import torch.nn.functional as F

x = torch.arange(1.0, 37.0).reshape(1, 1, 6, 6)  # a 6x6 "image"
k = torch.ones(1, 1, 3, 3)  # a 3x3 filter that sums its window

for padding, stride in [(0, 1), (1, 1), (0, 2), (1, 2)]:
    out = F.conv2d(x, k, padding=padding, stride=stride)
    print(f"3x3 conv, padding={padding}, stride={stride}: "
          f"6x6 -> {out.shape[2]}x{out.shape[3]}")
print("output size = (size + 2*padding - kernel) // stride + 1")

print("input:")
print(x[0, 0].int().numpy())
print("2x2 max pooling (stride 2) keeps the largest of each 2x2 block:")
print(F.max_pool2d(x, 2)[0, 0].int().numpy())
print("2x2 average pooling:")
print(F.avg_pool2d(x, 2)[0, 0].numpy())
