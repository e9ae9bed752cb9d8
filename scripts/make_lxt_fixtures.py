"""Reference relevances from LXT (Achtibat et al.'s own AttnLRP code) for a Transformer block.

A pre-norm encoder block (LayerNorm, multi-head self-attention, residual, LayerNorm, GELU
MLP, residual), mean pooling over the tokens and a dense head, with random weights kept in
Keras' layout, is rebuilt as a PyTorch twin three times and explained with LXT 2.1:

- ``explicit_attnlrp``: LXT's explicit mode (``lxt.explicit.functional``: linear_epsilon,
  layer_norm, matmul, softmax, add2, mean, mul2; ``lxt.explicit.rules.identity`` on GELU),
  the relevance itself propagated backwards;
- ``efficient_attnlrp``: LXT's efficient mode (gradient x input; ``lxt.efficient.rules``:
  divide_gradient on q and k by 4 and on v by 2, identity_rule_implicit on GELU, the
  LayerNorm's std detached as in ``lxt.efficient.patches.layer_norm_forward``);
- ``efficient_cp_lrp``: the same with LXT's CP-LRP patch (q and k stop_gradient).

Writes tests/fixtures/lxt/encoder.npz: the inputs, every weight under its Keras layer and
variable name, the explained classes and the three relevances. LXT is not a dependency of
xai: run this outside the project with LXT's sources on the path (it needs only torch here):

    pip download lxt==2.1 --no-deps -d /tmp/lxt && tar xzf /tmp/lxt/lxt-2.1.tar.gz -C /tmp/lxt
    PYTHONPATH=/tmp/lxt/lxt-2.1 .venv/bin/python scripts/make_lxt_fixtures.py
"""

import importlib.util
from pathlib import Path

import lxt as package
import numpy as np
import torch
import torch.nn.functional as F
from lxt.explicit import functional as lxt
from lxt.explicit.rules import identity


def _efficient_rules():
    """``lxt.efficient.rules`` by its file: the ``lxt.efficient`` package imports Hugging
    Face's transformers, which these three rules do not need."""
    spec = importlib.util.spec_from_file_location(
        "lxt_efficient_rules", Path(package.__file__).parent / "efficient" / "rules.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


efficient = _efficient_rules()

ROOT = Path(__file__).resolve().parent.parent
N, T, D, HEADS, KEY, MLP, CLASSES, LN_EPS = 4, 5, 6, 2, 3, 8, 3, 1e-3


def weights(seed=0) -> dict:
    """Keras' names and layouts: MultiHeadAttention's kernels are (D, heads, key) and
    (heads, key, D)."""
    rng = np.random.default_rng(seed)
    shapes = {
        "ln1/gamma": (D,), "ln1/beta": (D,),
        "mha/query/kernel": (D, HEADS, KEY), "mha/query/bias": (HEADS, KEY),
        "mha/key/kernel": (D, HEADS, KEY), "mha/key/bias": (HEADS, KEY),
        "mha/value/kernel": (D, HEADS, KEY), "mha/value/bias": (HEADS, KEY),
        "mha/attention_output/kernel": (HEADS, KEY, D), "mha/attention_output/bias": (D,),
        "ln2/gamma": (D,), "ln2/beta": (D,),
        "fc1/kernel": (D, MLP), "fc1/bias": (MLP,), "fc2/kernel": (MLP, D), "fc2/bias": (D,),
        "head/kernel": (D, CLASSES), "head/bias": (CLASSES,),
    }
    return {name: (rng.normal(0, 0.6, shape) + name.endswith("gamma")).astype(np.float32)
            for name, shape in shapes.items()}


class Twin:
    """The block in PyTorch; ``mode`` picks LXT's explicit or efficient rules."""

    def __init__(self, w: dict, mode: str):
        self.w = {k: torch.tensor(v, dtype=torch.float64) for k, v in w.items()}
        self.mode = mode

    def dense(self, x, name):
        kernel, bias = self.w[f"{name}/kernel"], self.w[f"{name}/bias"]
        kernel = kernel.reshape(kernel.shape[0], -1) if kernel.dim() == 3 and name != "mha/attention_output" \
            else kernel.reshape(-1, kernel.shape[-1])
        if self.mode == "explicit":
            return lxt.linear_epsilon(x, kernel.T, bias.reshape(-1))
        return x @ kernel + bias.reshape(-1)

    def layer_norm(self, x, name):
        gamma, beta = self.w[f"{name}/gamma"], self.w[f"{name}/beta"]
        if self.mode == "explicit":
            return lxt.layer_norm(x, gamma, beta, LN_EPS)
        centred = x - x.mean(-1, keepdim=True)
        std = ((centred ** 2).mean(-1, keepdim=True) + LN_EPS).sqrt()
        return centred / efficient.stop_gradient(std) * gamma + beta

    def add(self, a, b):
        return lxt.add2(a, b) if self.mode == "explicit" else a + b

    def gelu(self, x):
        gelu = lambda t: F.gelu(t)   # noqa: E731  (Keras' exact GELU)
        return identity(gelu, x) if self.mode == "explicit" else efficient.identity_rule_implicit(gelu, x)

    def attention(self, x):
        def heads(t):   # (N, T, heads * key) -> (N, heads, T, key)
            return t.reshape(N, T, HEADS, KEY).permute(0, 2, 1, 3)
        q, k, v = (heads(self.dense(x, f"mha/{part}")) for part in ("query", "key", "value"))
        if self.mode == "explicit":
            q = lxt.mul2(q, KEY ** -0.5)
            weights = lxt.softmax(lxt.matmul(q, k.transpose(-1, -2)), -1)
            context = lxt.matmul(weights, v)
        else:
            if self.mode == "efficient_cp_lrp":
                q, k = efficient.stop_gradient(q), efficient.stop_gradient(k)
            else:
                q, k, v = (efficient.divide_gradient(q, 4), efficient.divide_gradient(k, 4),
                           efficient.divide_gradient(v, 2))
            weights = torch.softmax(q * KEY ** -0.5 @ k.transpose(-1, -2), -1)
            context = weights @ v
        return self.dense(context.permute(0, 2, 1, 3).reshape(N, T, HEADS * KEY), "mha/attention_output")

    def __call__(self, x):
        h = self.add(x, self.attention(self.layer_norm(x, "ln1")))
        m = self.dense(self.gelu(self.dense(self.layer_norm(h, "ln2"), "fc1")), "fc2")
        h = self.add(h, m)
        pooled = lxt.mean(h, 1, False) if self.mode == "explicit" else h.mean(1)
        return self.dense(pooled, "head")


def relevance(w: dict, x: np.ndarray, mode: str):
    inputs = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    logits = Twin(w, mode)(inputs)
    targets = logits.argmax(-1)
    explained = logits[torch.arange(N), targets]
    if mode == "explicit":   # the relevance itself flows back, starting from the logit
        explained.backward(explained.detach())
        return logits.detach().numpy(), targets.numpy(), inputs.grad.numpy()
    explained.sum().backward()   # gradient x input
    return logits.detach().numpy(), targets.numpy(), (inputs * inputs.grad).detach().numpy()


def main():
    w = weights()
    x = np.random.default_rng(1).normal(size=(N, T, D)).astype(np.float32)
    out = {"x": x, **{f"weight:{k}": v for k, v in w.items()}}
    for mode, name in (("explicit", "explicit_attnlrp"), ("efficient_attnlrp", "efficient_attnlrp"),
                       ("efficient_cp_lrp", "efficient_cp_lrp")):
        logits, targets, out[name] = relevance(w, x, mode)
        out["logits"], out["targets"] = logits, targets
        print(f"{name}: relevance sums {out[name].sum((1, 2)).round(4)}, explained logits "
              f"{logits[np.arange(N), targets].round(4)}")
    explicit = out["explicit_attnlrp"]
    gap = np.abs(explicit - out["efficient_attnlrp"]).max() / np.abs(explicit).max()
    print(f"explicit and efficient AttnLRP differ by {gap:.1e} of the largest relevance")
    path = ROOT / "tests" / "fixtures" / "lxt" / "encoder.npz"
    np.savez(path, **out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
