# Convolve a real handwritten digit (scikit-learn's digits, no download)
# with edge filters. Needs torch and scikit-learn. MIT License.
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

acc = torch.accelerator
device = acc.current_accelerator().type if acc.is_available() else "cpu"
digits = load_digits()
# An 8x8 image with 17 grey levels (0..16), scaled to 0..1
image = torch.tensor(digits.images[0], dtype=torch.float32, device=device) / 16

filters = torch.tensor([
    [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],  # vertical edges (Sobel)
    [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],  # horizontal edges (Sobel)
], dtype=torch.float32, device=device)
filters = filters.unsqueeze(1)  # (out channels, in channels, 3, 3)

# conv2d wants (batch, channels, height, width)
out = F.conv2d(image[None, None], filters, padding=1)
print(f"digit {digits.target[0]}: input {tuple(image.shape)} "
      f"-> output {tuple(out.shape)}")
print("input (x16, as stored):")
print((image * 16).int().cpu().numpy())
print("vertical-edge filter output (rounded):")
print(out[0, 0].round().int().cpu().numpy())
