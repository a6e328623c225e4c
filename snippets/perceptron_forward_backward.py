# The article's perceptron as running code: forward pass, loss, backward pass
# (autograd and by hand, checked equal), and one weight update.
# Needs only torch. MIT License.
import torch

acc = torch.accelerator
device = acc.current_accelerator().type if acc.is_available() else "cpu"
torch.manual_seed(0)

# One perceptron: inputs x1..xn, weights w1..wn, a bias b.
x = torch.tensor([0.5, -1.0, 2.0], device=device)        # x1, x2, x3
w = torch.tensor([0.8, 0.2, -0.4], device=device,
                 requires_grad=True)                      # w1, w2, w3
b = torch.tensor(0.1, device=device, requires_grad=True)
y = torch.tensor(1.0, device=device)                      # the right answer

z = (w * x).sum() + b    # transfer function: the weighted sum (net input)
a = torch.sigmoid(z)     # activation: squashes z into 0..1
output = int(a > 0.5)    # threshold: the perceptron's yes/no answer
loss = -(y * torch.log(a) + (1 - y) * torch.log(1 - a))  # cross-entropy
print(f"perceptron: z = {z.item():.3f}, a = sigmoid(z) = {a.item():.3f}, "
      f"output = {output}, loss = {loss.item():.3f}")

loss.backward()          # autograd's backward pass
dz = a.detach() - y      # by hand: dloss/dz for sigmoid + cross-entropy
print(f"dloss/dw autograd: {w.grad.tolist()}")
print(f"dloss/dw by hand:  {(dz * x).tolist()}")

# One layer: a batch of B inputs, n features, m perceptrons side by side.
B, n, m = 64, 20, 5
X = torch.randn(B, n, device=device)
Y = (torch.rand(B, m, device=device) > 0.5).float()
W = (0.1 * torch.randn(m, n, device=device)).requires_grad_()
bias = torch.zeros(m, device=device, requires_grad=True)


def forward(W, bias):
    A = torch.sigmoid(X @ W.T + bias)  # the layer is a matrix multiply
    return A, -(Y * torch.log(A) + (1 - Y) * torch.log(1 - A)).mean()


A, L = forward(W, bias)
gW, gb = torch.autograd.grad(L, (W, bias))  # autograd
dZ = (A.detach() - Y) / A.numel()           # by hand: the chain rule...
dW, db = dZ.T @ X, dZ.sum(0)                # ...as matrix multiplies
diff = max((gW - dW).abs().max().item(), (gb - db).abs().max().item())
print(f"layer {B}x{n} -> {m}: max |autograd - by hand| = {diff:.2e}")
assert torch.allclose(gW, dW, atol=1e-6) and torch.allclose(gb, db, atol=1e-6)

lr = 1.0                                    # the weight update
with torch.no_grad():                       # (gradient descent)
    W -= lr * dW
    bias -= lr * db
after = forward(W, bias)[1].item()
print(f"loss before the update: {L.item():.4f}, after: {after:.4f}")
