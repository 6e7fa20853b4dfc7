"""Figures and tables for the backbone tour: size table, token layout, streaming-vs-clip differences."""
import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.patches import FancyArrowPatch, Rectangle

from endolib.models.registry import MODEL_SIZES, create_model


def model_table(img_size: int = 224, num_frames: int = 16) -> pd.DataFrame:
    """One row per registered size: width, layers, parameters, tokens per frame and per clip."""
    rows = []
    for name in sorted(MODEL_SIZES, key=lambda n: MODEL_SIZES[n]["embed_dim"]):
        with torch.device("meta"):  # shapes only: no memory, no init cost
            m = create_model(name, img_size=img_size)
        rows.append({"model": name, "embed_dim": m.embed_dim, "d_inner": m.d_inner, "depth": m.depth,
                     "spatial layers": m.num_spatial, "temporal layers": m.depth - m.num_spatial,
                     "params (M)": round(sum(p.numel() for p in m.parameters()) / 1e6, 2),
                     "tokens / frame": m.num_tokens, f"temporal sequence ({num_frames} frames)": m.num_tokens * num_frames})
    return pd.DataFrame(rows).set_index("model")


def draw_token_layout(frames: int = 3, grid: int = 3, ax=None):
    """Frames as patch grids with their cls token; bidirectional scans inside each frame (spatial layers)
    and one causal scan through all tokens in time order (temporal layers)."""
    ax = ax or plt.subplots(figsize=(3.2 * frames, 3.6))[1]
    size, gap = 1.0, 1.6
    for t in range(frames):
        x0 = t * (grid * size + gap)
        ax.add_patch(Rectangle((x0, grid * size + 0.3), size, size, color="tab:orange"))
        ax.text(x0 + size / 2, grid * size + 0.8, "cls", ha="center", va="center", fontsize=8)
        for i in range(grid * grid):
            r, c = divmod(i, grid)
            ax.add_patch(Rectangle((x0 + c * size, (grid - 1 - r) * size), size * 0.95, size * 0.95,
                                   color="tab:blue", alpha=0.25 + 0.5 * i / (grid * grid)))
            ax.text(x0 + (c + 0.5) * size, (grid - 0.5 - r) * size, str(i + 1), ha="center", va="center", fontsize=7)
        ax.annotate("", xy=(x0 + grid * size, -0.35), xytext=(x0, -0.35),
                    arrowprops=dict(arrowstyle="<->", color="tab:green", lw=2))
        ax.text(x0 + grid * size / 2, -0.75, f"frame t={t}: spatial, bidirectional", ha="center", fontsize=8,
                color="tab:green")
        if t:
            ax.add_patch(FancyArrowPatch((x0 - gap + 0.1, grid * size / 2), (x0 - 0.1, grid * size / 2),
                                         arrowstyle="-|>", mutation_scale=15, color="tab:red", lw=2))
    ax.text(frames * (grid * size + gap) / 2 - gap / 2, grid * size + 1.7,
            "temporal layers: one causal scan over (t, token) in time order; state carried frame to frame",
            ha="center", color="tab:red", fontsize=9)
    ax.set_xlim(-0.5, frames * (grid * size + gap)), ax.set_ylim(-1.1, grid * size + 2.1)
    ax.set_aspect("equal"), ax.axis("off")
    return ax


@torch.no_grad()
def stream_diffs(model, x, chunk: int) -> torch.Tensor:
    """x: (B, 3, T, H, W) -> (T,) max |stream - whole clip| per frame, streaming `chunk` frames per call."""
    full = model(x)
    state, outs = model.init_stream(x.shape[0]), []
    for s in range(0, x.shape[2], chunk):
        out, state = model.step(x[:, :, s:s + chunk], state)
        outs.append(out)
    return (torch.cat(outs, 1) - full).abs().amax(dim=(0, 2))
