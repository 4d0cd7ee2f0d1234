"""GR00T-N1-style policy at reduced size for the training benchmark (benchmarks/groot_bench.py),
randomly initialised (no weights are downloaded).

Shape of GR00T N1: a vision encoder turns each camera frame into tokens (timm ViT, patch tokens
pooled to an 8x8 grid like Eagle's pixel-shuffled tokens; a minimal ViT written here when timm is
not importable); a transformer runs over image tokens, a state token and the action tokens; the
action head is flow matching over a 16-step action chunk: ``x_t = (1 - t) noise + t action``,
the network predicts the velocity ``action - noise`` from ``x_t`` and ``t`` (GR00T's Beta-skewed
timestep sampling), masked MSE over the valid action steps.

Sizes: ``toy_small`` / ``toy_large`` (CPU-only machines, tiny dims), ``small`` (data-bound with a
CPU DataLoader on an H100/H200: ViT-Tiny cut to 6 blocks + a 2x256 transformer, ~4M parameters;
``small_vit12`` is the earlier ViT-Tiny 12 blocks + 4x256, whose own speed on an H100 was under
2x the best DataLoader's, so it measured the model more than the loader) and ``large`` (ViT-Small +
a 24x1024 transformer, ~302M parameters in the transformer).
"""

from __future__ import annotations

import math

import torch
from torch import nn

SIZES = {
    # vit: timm name (or minimal-ViT dims), width, depth, heads of the transformer over all tokens
    "toy_small": {"vit": None, "vit_dims": (32, 1, 2), "patch": 32, "width": 32, "depth": 1, "heads": 2, "grid": 2},
    "toy_large": {"vit": None, "vit_dims": (64, 2, 2), "patch": 32, "width": 64, "depth": 2, "heads": 2, "grid": 2},
    # small: data-bound with a CPU DataLoader on an H100/H200 (its ceiling is well above 2x the best
    # DataLoader's rate): ViT-Tiny cut to 6 blocks + a 2x256 transformer
    "small": {"vit": "vit_tiny_patch16_224", "vit_dims": (192, 6, 3), "vit_depth": 6, "patch": 16, "width": 256, "depth": 2,
              "heads": 4, "grid": 8},
    # the previous small size (ViT-Tiny 12 blocks + 4x256), and other cuts, for sizing runs
    "small_vit12": {"vit": "vit_tiny_patch16_224", "vit_dims": (192, 12, 3), "patch": 16, "width": 256, "depth": 4,
                    "heads": 4, "grid": 8},
    "small_vit8": {"vit": "vit_tiny_patch16_224", "vit_dims": (192, 8, 3), "vit_depth": 8, "patch": 16, "width": 256,
                   "depth": 2, "heads": 4, "grid": 8},
    "small_vit4": {"vit": "vit_tiny_patch16_224", "vit_dims": (192, 4, 3), "vit_depth": 4, "patch": 16, "width": 256,
                   "depth": 2, "heads": 4, "grid": 8},
    "small_vit3": {"vit": "vit_tiny_patch16_224", "vit_dims": (192, 3, 3), "vit_depth": 3, "patch": 16, "width": 256,
                   "depth": 2, "heads": 4, "grid": 8},
    "small_vit2": {"vit": "vit_tiny_patch16_224", "vit_dims": (192, 2, 3), "vit_depth": 2, "patch": 16, "width": 256,
                   "depth": 2, "heads": 4, "grid": 8},
    "large": {"vit": "vit_small_patch16_224", "vit_dims": (384, 12, 6), "patch": 16, "width": 1024, "depth": 24, "heads": 16,
              "grid": 8},
}
IMAGE_MEAN = (0.5, 0.5, 0.5)  # timm vit_*_patch16_224 (augreg) normalisation
IMAGE_STD = (0.5, 0.5, 0.5)


class MiniViT(nn.Module):
    """Minimal ViT (patch embedding, learned positions, pre-norm encoder) returning patch tokens."""

    def __init__(self, dim: int, depth: int, heads: int, patch: int, image: int = 224) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, patch)
        self.pos = nn.Parameter(torch.randn(1, (image // patch) ** 2, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.num_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2) + self.pos
        return self.norm(self.blocks(x))


def vision_encoder(cfg: dict) -> tuple:
    """``(module, feature dim, backend name)``: timm's ViT when importable, else :class:`MiniViT`."""
    if cfg["vit"] is not None:
        try:
            import timm  # noqa: PLC0415

            kw = {"depth": cfg["vit_depth"]} if "vit_depth" in cfg else {}
            m = timm.create_model(cfg["vit"], pretrained=False, num_classes=0, global_pool="", **kw)
            return m, m.num_features, f"timm {cfg['vit']}" + (f" ({cfg['vit_depth']} blocks)" if kw else "")
        except ImportError:
            pass
    dim, depth, heads = cfg["vit_dims"]
    return MiniViT(dim, depth, heads, cfg["patch"]), dim, f"MiniViT {dim}x{depth}"


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of flow-matching times ``t [B]`` in [0, 1]."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    a = 1000.0 * t.float()[:, None] * freq[None]
    return torch.cat([a.sin(), a.cos()], 1)


class GrootStylePolicy(nn.Module):
    """Vision tokens + state token + noised action tokens -> transformer -> action velocity.

    Args:
        size: a key of :data:`SIZES` (see :data:`SIZES`).
        cameras: camera names (batch keys ``images.<camera>``, uint8 ``[B, H, W, 3]``).
        state_dim: width of ``state``.
        action_dim: width of ``action``.
        chunk: action steps.
    """

    def __init__(self, size: str, cameras: list, state_dim: int, action_dim: int, chunk: int = 16) -> None:
        super().__init__()
        cfg = SIZES[size]
        self.cameras, self.chunk, self.grid = list(cameras), chunk, cfg["grid"]
        self.vit, feat, self.vit_name = vision_encoder(cfg)
        w = cfg["width"]
        self.img_proj = nn.Linear(feat, w)
        self.cam_embed = nn.Parameter(torch.zeros(len(cameras), 1, w))
        self.state_proj = nn.Sequential(nn.Linear(state_dim, w), nn.GELU(), nn.Linear(w, w))
        self.action_in = nn.Linear(action_dim, w)
        self.time_mlp = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.action_pos = nn.Parameter(torch.randn(1, chunk, w) * 0.02)
        layer = nn.TransformerEncoderLayer(w, cfg["heads"], 4 * w, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, cfg["depth"], enable_nested_tensor=False)
        self.norm = nn.LayerNorm(w)
        self.action_out = nn.Linear(w, action_dim)
        self.register_buffer("mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1) * 255, persistent=False)

    def transformer_params(self) -> int:
        """Parameters of the transformer over image, state and action tokens."""
        return sum(p.numel() for p in self.transformer.parameters())

    def image_tokens(self, img: torch.Tensor) -> torch.Tensor:
        x = (img.permute(0, 3, 1, 2).float() - self.mean) / self.std
        tok = self.vit(x)
        n = tok.shape[1]
        side = int(math.isqrt(n))
        tok = tok[:, n - side * side:]  # drop class / register tokens
        b, _, c = tok.shape
        grid = tok.transpose(1, 2).reshape(b, c, side, side)
        g = min(self.grid, side)
        return nn.functional.adaptive_avg_pool2d(grid, g).flatten(2).transpose(1, 2)

    def forward(self, batch: dict) -> torch.Tensor:
        """Flow-matching loss of one batch."""
        action = batch["action"].float()
        b = action.shape[0]
        # every camera's frames through the vision encoder in one batch (as GR00T's Eagle takes all views)
        img = self.img_proj(self.image_tokens(torch.cat([batch[f"images.{c}"] for c in self.cameras], 0)))
        toks = [x + self.cam_embed[k] for k, x in enumerate(img.split(b, 0))]
        state = batch["state"].float()[:, -1]
        toks.append(self.state_proj(state)[:, None])
        # GR00T: t ~ Beta-shaped (more weight on noisy times); x_t = (1 - t) noise + t action
        # Beta(1.5, 1) by inverse CDF (u ** (1 / 1.5)), drawn on the device: no host round trip
        t = 0.999 * (1 - torch.rand(b, device=action.device) ** (1 / 1.5))
        noise = torch.randn_like(action)
        xt = (1 - t[:, None, None]) * noise + t[:, None, None] * action
        temb = self.time_mlp(timestep_embedding(t, self.action_pos.shape[-1]))
        toks.append(self.action_in(xt) + self.action_pos + temb[:, None])
        h = self.norm(self.transformer(torch.cat(toks, 1)))
        v = self.action_out(h[:, -self.chunk:]).float()
        mask = batch["action_mask"].to(v.dtype)[..., None]
        return (((v - (action - noise)) ** 2) * mask).sum() / (mask.sum() * action.shape[-1]).clamp_min(1.0)


def autocast(device_type: str, enabled: bool = True):
    """``() -> context``: bf16 autocast on ``device_type`` (no weight-cast cache, so the same step can
    be captured in a CUDA graph); ``enabled=False`` gives a no-op context."""
    return lambda: torch.autocast(device_type, dtype=torch.bfloat16, enabled=enabled, cache_enabled=False)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, batch: dict, amp) -> torch.Tensor:
    """One eager training step: the loss under ``amp()``, backward, optimizer step; returns the loss."""
    with amp():
        loss = model(batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss
