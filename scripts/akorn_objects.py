"""Unsupervised object discovery with AKOrN vs a same-size non-oscillatory baseline.

Flags -> :class:`Config` -> :func:`run` (importable; everything here can be done from a notebook).
Both models are trained with the same SimCLR objective (``brainmodels.akorn.nt_xent`` on two
augmented views) on synthetic multi-object images (``brainmodels.datasets.multi_objects``);
objects are then discovered by clustering each model's final features (k-means and Ward
agglomerative clustering, with each image's own number of objects plus the background) and
scored with the foreground ARI against the ground-truth masks, beside references without a
model (the mean colour of each patch, up-tiled and clustered the same way; pixel colours). Writes to ``--out``: ``results.nc`` (FG-ARI per
image and model, training losses), ``summary.txt``, ``masks.png``, ``phases.png``, ``loss.png``.

Examples
--------
    python scripts/akorn_objects.py --out runs/akorn_cpu            # CPU-sized (minutes)
    python scripts/akorn_objects.py --config gpu --out runs/akorn   # GPU-sized
    python scripts/akorn_objects.py --quick --out /tmp/akorn        # smoke run (seconds)
    python scripts/akorn_objects.py --config fair --dataset tetrominoes --seeds 3 \
        --state runs/akorn_fair_state --out runs/akorn_fair  # stops and resumes; one line per seed
                                   # the authors' recipe at a CPU budget (~1 CPU-hour a model)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

CONFIGS = {
    # ~1e5 parameters; a few minutes on two CPU cores
    "cpu": dict(image_size=32, n_train=2048, n_eval=128, channels=32, patch=4, n=4, T=4,
                blocks=1, heads=4, coupling="attn", steps=600, batch=32, lr=1e-3, uptile=4),
    # the paper's object-discovery scale (ch 256, N 4, T 8, attention J, 2 blocks)
    "gpu": dict(image_size=32, n_train=50000, n_eval=1000, channels=256, patch=2, n=4, T=8,
                blocks=2, heads=8, coupling="attn_gta", steps=20000, batch=256, lr=5e-4,
                uptile=2),
    # the authors' recipe for objects at a CPU budget (issue 21): Omega off, no normalisation
    # of c, T 8, N 4, 64 channels, batch 64, 3,000 steps, crops + hue + grayscale, EMA
    # weights for evaluation, positions inside the attention (GTA); against the ItrSA twin
    # (oscillatory=False, the same J). ~1 CPU-hour a model
    "fair": dict(image_size=32, n_train=4096, n_eval=256, channels=64, patch=4, n=4, T=8,
                 blocks=1, heads=4, coupling="attn_gta", steps=3000, batch=64, lr=1e-3, uptile=4,
                 omega=None, learn_omega=False, c_norm=False, ema=0.999, augment="crops"),
    # seconds: for smoke tests
    "quick": dict(image_size=16, n_train=64, n_eval=8, channels=16, patch=4, n=4, T=2,
                  blocks=1, heads=2, coupling="attn", steps=3, batch=8, lr=1e-3, uptile=2),
}


@dataclasses.dataclass(frozen=True)
class Config:
    """Experiment settings (see :data:`CONFIGS` for the named presets)."""

    image_size: int = 32
    n_train: int = 2048
    n_eval: int = 128
    channels: int = 32
    patch: int = 4
    n: int = 4
    T: int = 4
    blocks: int = 1
    heads: int = 4
    coupling: str = "attn"
    steps: int = 600
    batch: int = 32
    lr: float = 1e-3
    temperature: float = 0.1
    uptile: int = 4
    permute_colors: bool = False
    objects: tuple[int, int] = (2, 4)
    colors: str = "random"
    dataset: str = "multi_objects"  # or "tetrominoes": 3 pieces, 35 x 35, no occlusion
    augment: str = "crops"  # the authors' recipe (akorn.augment); "shift": flips and shifts
    ema: float | None = None  # evaluate a moving average of the weights (the authors: yes)
    omega: float | None = 0.1  # None (with learn_omega False): no Omega, as the authors
    learn_omega: bool = True
    c_norm: bool = True  # the authors: no normalisation of c
    seed: int = 0


def build_models(cfg: Config) -> dict:
    """The AKOrN network and its non-oscillatory twin (same J, embedding, readout width, head)."""
    from flax import nnx

    from brainmodels import akorn

    kw = dict(image_size=cfg.image_size, patch=cfg.patch, channels=cfg.channels, n=cfg.n,
              blocks=cfg.blocks, T=cfg.T, coupling=cfg.coupling, heads=cfg.heads,
              out_features=cfg.channels, omega=cfg.omega, learn_omega=cfg.learn_omega,
              c_norm=cfg.c_norm)
    return {"akorn": akorn.AKOrN(**kw, oscillatory=True, rngs=nnx.Rngs(cfg.seed)),
            "baseline": akorn.AKOrN(**kw, oscillatory=False, rngs=nnx.Rngs(cfg.seed))}


def train(model, images: np.ndarray, cfg: Config, *, desc: str = "", checkpoint_dir=None):
    """SimCLR training for ``cfg.steps`` minibatches; returns the loss per step and the model
    to evaluate (the moving average of the weights with ``cfg.ema``, as the authors
    evaluate; else the trained model)."""
    from functools import partial

    from brainmodels import akorn
    from brainmodels.cli._common import progress
    from brainmodels.training import TrainConfig

    # the loss is recorded every step; checkpoints (with --state) every 100 steps at most
    every = None if checkpoint_dir is None else min(100, cfg.steps)
    config = TrainConfig(steps=cfg.steps, batch_size=cfg.batch, lr=cfg.lr, optimizer="adamw",
                         weight_decay=1e-4, eval_every=1, seed=cfg.seed, ema=cfg.ema,
                         checkpoint_every=every)
    result = akorn.train_contrastive(model, images, config, temperature=cfg.temperature,
                                     permute_colors=cfg.permute_colors, recipe=cfg.augment,
                                     checkpoint_dir=checkpoint_dir,
                                     progress=partial(progress, desc=desc))
    return result.history.train_loss.values, result.ema_model or model


def evaluate(model, images, masks, n_objects, cfg: Config, use: str = "features",
             method: str = "kmeans"):
    """FG-ARI per image of clustering the model's final features with each image's own k
    (its objects plus the background), as the authors evaluate."""
    import jax

    from brainmodels import akorn

    pred = akorn.discover_objects(model, images, n_clusters=np.asarray(n_objects) + 1,
                                  key=jax.random.key(cfg.seed + 1), uptile=cfg.uptile, use=use,
                                  method=method)
    return akorn.fg_ari(masks, pred), pred


def pixel_reference(images, masks, n_objects, cfg: Config) -> np.ndarray:
    """FG-ARI of k-means on the raw pixel colours (no model): how far colour alone goes."""
    import jax

    from brainmodels import akorn

    b, h, w, c = images.shape
    k = np.asarray(n_objects) + 1
    lab = np.empty((b, h * w), np.int64)
    for kk in np.unique(k):
        sel = np.flatnonzero(k == kk)
        out, _ = akorn.kmeans(images[sel].reshape(sel.size, h * w, c), int(kk),
                              key=jax.random.key(cfg.seed))
        lab[sel] = np.asarray(out)
    return akorn.fg_ari(masks, lab.reshape(b, h, w))


def _padded(ds, patch: int):
    """Images and masks padded with background at the bottom and right to a multiple of the
    patch size (Tetrominoes' 35 x 35 for patches of 2 or 4): the padding is background in
    the mask, so FG-ARI does not count it."""
    size = ds.sizes["height"]
    extra = -size % patch
    if not extra:
        return ds
    return ds.pad(height=(0, extra), width=(0, extra), constant_values=0)


def run(cfg: Config, out: Path, *, checkpoints: Path | None = None) -> dict:
    """Train and evaluate both models; write results and plots to ``out``; return a summary."""
    from brainmodels import akorn
    from brainmodels.data import provenance, save_netcdf
    from brainmodels.datasets.multi_objects import make_multi_objects

    if cfg.dataset == "tetrominoes":
        from brainmodels.datasets.multi_objects import make_tetrominoes

        def make(n, seed):
            return make_tetrominoes(n, seed=seed, colors=cfg.colors)
    else:
        def make(n, seed):
            return make_multi_objects(n, seed=seed, size=cfg.image_size, objects=cfg.objects,
                                      colors=cfg.colors)
    tr = _padded(make(cfg.n_train, cfg.seed), cfg.patch)
    ev = _padded(make(cfg.n_eval, cfg.seed + 10_000), cfg.patch)
    x_tr, x_ev, m_ev = tr["image"].values, ev["image"].values, ev["mask"].values
    k_ev = ev["n_objects"].values
    scores, preds, losses, info = {}, {}, {}, {}
    for name, model in build_models(cfg).items():
        untrained, _ = evaluate(model, x_ev, m_ev, k_ev, cfg)
        t0 = time.perf_counter()
        losses[name], model = train(model, x_tr, cfg, desc=name, checkpoint_dir=None
                                    if checkpoints is None else checkpoints / name)
        seconds = time.perf_counter() - t0
        scores[name], preds[name] = evaluate(model, x_ev, m_ev, k_ev, cfg)
        scores[f"{name} (agglomerative)"], _ = evaluate(model, x_ev, m_ev, k_ev, cfg,
                                                        method="agglomerative")
        info[name] = dict(params=akorn.count_params(model), train_s=seconds,
                          fg_ari_untrained=float(untrained.mean()))
        if name == "akorn":
            _plot_phases(model, x_ev[:6], cfg, out / "phases.png")
            scores["akorn_states"], _ = evaluate(model, x_ev, m_ev, k_ev, cfg, use="states")
    # references: no model at all (the mean colour of each patch, up-tiled and clustered as
    # the models' features; the colour of each pixel)
    colour = akorn.PatchColour(cfg.patch)
    scores["patch colour"], _ = evaluate(colour, x_ev, m_ev, k_ev, cfg)
    scores["patch colour (agglomerative)"], _ = evaluate(colour, x_ev, m_ev, k_ev, cfg,
                                                         method="agglomerative")
    scores["pixels"] = pixel_reference(x_ev, m_ev, k_ev, cfg)
    ds = _results(scores, losses, cfg)
    ds.attrs.update(provenance("akorn_objects", params=dataclasses.asdict(cfg), seed=cfg.seed))
    save_netcdf(ds, out / "results.nc")
    _plot_masks(x_ev[:6], m_ev[:6], {k: v[:6] for k, v in preds.items()}, scores,
                out / "masks.png")
    _plot_losses(losses, out / "loss.png")
    summary = _summary(scores, info, cfg)
    from brainmodels._io import write_text_atomic

    write_text_atomic(out / "summary.txt", summary + "\n")
    print(summary)
    return {"scores": {k: float(v.mean()) for k, v in scores.items()}, "info": info}


def _results(scores, losses, cfg):
    import xarray as xr

    models = list(scores)
    fg = np.stack([scores[m] for m in models])
    loss = np.stack([losses[m] for m in losses])
    return xr.Dataset({"fg_ari": (("model", "stimulus"), fg),
                       "loss": (("network", "step"), loss)},
                      coords={"model": models, "network": list(losses),
                              "step": np.arange(cfg.steps)})


def _summary(scores, info, cfg):
    from brainmodels.cli._common import format_table

    rows = []
    for name, s in scores.items():
        extra = info.get(name, {})
        rows.append({"model": name, "params": extra.get("params", 0),
                     "FG-ARI": float(s.mean()), "sem": float(s.std(ddof=1) / np.sqrt(s.size)),
                     "untrained": extra.get("fg_ari_untrained", float("nan")),
                     "train_s": extra.get("train_s", 0.0)})
    head = (f"object discovery, {cfg.n_eval} eval images {cfg.image_size}px, {cfg.steps} steps "
            f"x {cfg.batch}, J={cfg.coupling}, T={cfg.T}, ch={cfg.channels}")
    return head + "\n" + format_table(rows)


def _plot_phases(model, images, cfg, path):
    import jax
    import matplotlib.pyplot as plt

    from brainmodels._io import savefig_atomic

    st = np.asarray(model(images, key=jax.random.key(cfg.seed + 2)).states)
    phase = np.arctan2(st[..., 1], st[..., 0])  # first 2D plane of the first oscillator
    fig, ax = plt.subplots(2, len(images), figsize=(2 * len(images), 4), squeeze=False)
    for i in range(len(images)):
        ax[0, i].imshow(images[i])
        ax[1, i].imshow(phase[i], cmap="hsv", vmin=-np.pi, vmax=np.pi)
        for a in ax[:, i]:
            a.set_axis_off()
    ax[1, 0].set_title("oscillator phase", fontsize=8, loc="left")
    savefig_atomic(fig, path, dpi=100)
    plt.close(fig)


def _plot_masks(images, masks, preds, scores, path):
    import matplotlib.pyplot as plt

    from brainmodels._io import savefig_atomic

    rows = ["image", "truth", *preds]
    fig, ax = plt.subplots(len(rows), len(images), figsize=(2 * len(images), 2 * len(rows)),
                           squeeze=False)
    for i in range(len(images)):
        panels = [images[i], masks[i], *(p[i] for p in preds.values())]
        for r, panel in enumerate(panels):
            ax[r, i].imshow(panel, cmap=None if r == 0 else "tab10", interpolation="nearest")
            ax[r, i].set_axis_off()
            if r >= 2:
                ax[r, i].set_title(f"{rows[r]} {scores[rows[r]][i]:.2f}", fontsize=8)
    savefig_atomic(fig, path, dpi=100)
    plt.close(fig)


def _plot_losses(losses, path):
    import matplotlib.pyplot as plt

    from brainmodels._io import savefig_atomic

    fig, ax = plt.subplots(figsize=(5, 3))
    for name, loss in losses.items():
        ax.plot(loss, label=name)
    ax.set(xlabel="step", ylabel="NT-Xent loss")
    ax.legend()
    savefig_atomic(fig, path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=sorted(CONFIGS), default="cpu",
                   help="preset size (default: cpu)")
    p.add_argument("--quick", action="store_true", help="same as --config quick")
    p.add_argument("--steps", type=int, help="override the number of training steps")
    p.add_argument("--coupling", choices=["attn", "attn_gta", "conv"],
                   help="override the connectivity J (attn_gta: attention with GTA's position "
                        "transforms, the authors' choice for objects)")
    p.add_argument("--colors", choices=["random", "distinct", "same"], default="random",
                   help="object colouring of the synthetic images (default: random)")
    p.add_argument("--out", type=Path, default=Path("akorn_objects_out"), metavar="DIR",
                   help="output folder, written all or nothing")
    p.add_argument("--permute-colors", action="store_true",
                   help="add colour-channel permutations to the SimCLR augmentations")
    p.add_argument("--dataset", choices=["multi_objects", "tetrominoes"],
                   default="multi_objects",
                   help="mixed shapes with occlusion (2-4 objects, --config's image size), or "
                        "Tetrominoes-like images (3 pieces, 35 x 35, no occlusion)")
    p.add_argument("--augment", choices=["crops", "shift"], default=None,
                   help="SimCLR views: the AKOrN authors' recipe (random resized crops, hue "
                        "jitter, grayscale, no vertical flip; the default) or flips and shifts")
    p.add_argument("--ema", type=float, default=None, metavar="DECAY",
                   help="evaluate the moving average of the weights with this decay, as the "
                        "authors do (e.g. 0.999 for runs of thousands of steps; default: off)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--seeds", type=int, default=1,
                   help="run seeds seed .. seed + SEEDS - 1 (default: 1)")
    p.add_argument("--state", type=Path, default=None, metavar="DIR",
                   help="a folder kept between runs: training checkpoints (an interrupted "
                        "run resumes) and results.jsonl, one line per finished seed (finished "
                        "seeds are skipped); --out then holds the summary over all of them")
    args = p.parse_args(argv)
    preset = dict(CONFIGS["quick" if args.quick else args.config])
    preset.update({k: v for k, v in (("steps", args.steps), ("coupling", args.coupling))
                   if v is not None})
    from brainmodels._io import output_dir

    argv = sys.argv[1:] if argv is None else list(argv)
    # the whole --out folder or nothing; a folder of the user's is refused, never replaced
    with output_dir(args.out, command=["python", "scripts/akorn_objects.py", *argv]) as tx:
        if args.dataset == "tetrominoes":  # 35 x 35, padded to a multiple of the patch
            preset["image_size"] = 35 + (-35 % preset["patch"])
        if args.augment is not None:
            preset["augment"] = args.augment
        if args.ema is not None:
            preset["ema"] = args.ema
        base = Config(**preset, colors=args.colors, permute_colors=args.permute_colors,
                      dataset=args.dataset, seed=args.seed)
        if args.state is None and args.seeds == 1:
            run(base, tx.path)
        else:
            run_seeds(base, args.seeds, args.state or tx.path / "state", tx.path)
    return 0


def run_seeds(cfg: Config, n_seeds: int, state: Path, out: Path) -> list[dict]:
    """Seeds ``cfg.seed .. cfg.seed + n_seeds - 1``, each trained with checkpoints under
    ``state`` and recorded in ``state/results.jsonl`` when finished (a seed already there is
    skipped: a long run stops and continues later); writes the mean +- SE over all recorded
    seeds of this configuration to ``out/seeds.txt`` and returns the records."""
    import json

    from brainmodels._io import write_text_atomic
    from brainmodels.cli._common import format_table

    state.mkdir(parents=True, exist_ok=True)
    results = state / "results.jsonl"
    same = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "seed"}

    def load():
        if not results.exists():
            return []
        lines = [json.loads(x) for x in results.read_text().splitlines() if x.strip()]
        return [r for r in lines if r["config"] == json.loads(json.dumps(same))]

    for seed in range(cfg.seed, cfg.seed + n_seeds):
        if any(r["seed"] == seed for r in load()):
            print(f"seed {seed}: recorded already, skipped")
            continue
        one = dataclasses.replace(cfg, seed=seed)
        summary = run(one, _fresh(state / f"seed{seed}" / "outputs"),
                      checkpoints=state / f"seed{seed}" / "checkpoints")
        with results.open("a") as f:  # one whole line per finished seed
            f.write(json.dumps({"seed": seed, "config": same, "scores": summary["scores"]})
                    + "\n")
    records = load()
    rows = []
    for name in records[0]["scores"] if records else []:
        v = np.array([r["scores"][name] for r in records])
        se = v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else float("nan")
        rows.append({"model": name, "FG-ARI (mean over seeds)": float(v.mean()), "SE": se,
                     "seeds": v.size})
    text = (f"{cfg.dataset}, {cfg.steps} steps x {cfg.batch}, T={cfg.T}, ch={cfg.channels}, "
            f"seeds {sorted(r['seed'] for r in records)}\n" + format_table(rows))
    write_text_atomic(out / "seeds.txt", text + "\n")
    print(text)
    return records


def _fresh(path: Path) -> Path:
    """An empty folder for one seed's outputs (a previous, interrupted attempt's removed)."""
    import shutil

    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
