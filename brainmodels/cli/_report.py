"""``report.html``: one self-contained file (figures embedded as base64 PNG, no scripts, no
network) that a browser opens from disk."""

from __future__ import annotations

import base64
import html
from pathlib import Path

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em;margin:1em 0}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0}img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#555}.note{color:#555;font-size:.92em}
"""

#: (figure name, heading, caption) in report order
_FIGURES = (
    ("model_brain", "Layer x ROI scores",
     "Encoding (top: median held-out r over the ROI's voxels) and RSA (bottom) per layer; "
     "error bars are 95 % bootstrap intervals over held-out stimuli; grey: noise ceiling; "
     "*: best layer."),
    ("best_layer", "Best layer per voxel (volume)",
     "The layer whose encoder predicts the voxel best (held-out r >= 0.1), in its colour of "
     "the bar chart above."),
    ("best_r_surface", "Best layer's prediction on the fsaverage5 surface",
     "Held-out r of the best layer per voxel, projected onto nilearn's fsaverage5."),
    ("rdms", "RDMs sorted by category",
     "Rank-transformed correlation-distance RDMs of held-out stimuli: data (mean over "
     "repeats) and the best RSA layer of the same ROI."),
    ("raster", "Spiking network", "Spike raster of the COBA network."),
    ("kuramoto_rK", "Kuramoto order parameter r(K)",
     "Stationary order parameter against coupling (dots: seeds), with the N -> inf theory."),
    ("waves", "Wave-RNN hidden states", "Hidden state over time for one image read row by row."),
    ("whitening_error", "Adaptive whitening",
     "Whitening error ||C_rr - I|| against samples seen, gains adapting online."),
)


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(Path(path).stem)}">'


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>(no rows)</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            text = f"{v:.3f}" if isinstance(v, float) else str(v)
            cells.append(f'<td class="num">{text}</td>' if num else
                         f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_report(path: Path, ds, result, rows: list[dict], figures: dict[str, Path], *,
                 reps=None) -> Path:
    """Write the report atomically; every figure in ``figures`` must exist."""
    from matplotlib.colors import to_hex

    from brainmodels.representations import layer_colors

    layers = [str(x) for x in result["layer"].values]
    rows_html = "".join(
        f'<tr><td class="num">{i + 1}</td><td><span style="display:inline-block;width:1.6em;'
        f'height:0.9em;background:{to_hex(c)}"></span></td><td>{html.escape(n)}</td></tr>'
        for i, (n, c) in enumerate(zip(layers, layer_colors(len(layers)), strict=True)))
    legend = ("<table><thead><tr><th>index</th><th>colour</th><th>layer</th></tr></thead>"
              f"<tbody>{rows_html}</tbody></table>")
    return _write(path, ds, result, rows, figures, reps, legend)


def _write(path, ds, result, rows, figures, reps, legend) -> Path:
    from brainmodels import __version__
    from brainmodels._io import write_text_atomic

    missing = [n for n, p in figures.items() if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"report figures missing: {missing}")
    params = result.attrs.get("params", {})
    models = ""
    if reps is not None:
        models = _table([{"model": name, "layers": ", ".join(
            f"{v} {tuple(r[v].shape[1:])}" for v in r.data_vars)} for name, r in reps.items()])
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>brainmodels demo: models meet the brain</title>",
        f"<style>{_CSS}</style>", "</head>", "<body>",
        "<h1>brainmodels demo: models meet the brain</h1>",
        f'<p class="note">brainmodels {html.escape(__version__)}; synthetic NSD-like dataset '
        f"(seed {html.escape(str(ds.attrs.get('seed', '')))}): {ds.sizes['stimulus']} stimuli, "
        f"{ds.sizes['trial']} trials, {ds.sizes['voxel']} voxels. Every model is small and "
        "untrained (random initial weights): the comparison shows the pipeline, not the "
        "models' trained quality. The Gabor-energy baseline is, by construction, the feature "
        "space behind the retinotopic ROIs.</p>",
        "<h2>Per-ROI summary</h2>", _table(rows),
        f'<p class="note">{int(params.get("n_test", 0))} held-out stimuli, '
        f'{int(params.get("n_train", 0))} training stimuli; RSA method '
        f'{html.escape(str(params.get("rsa_method", "")))}, {int(params.get("n_bootstrap", 0))} '
        "bootstrap samples. All numbers are also in models_brain.nc.</p>",
        "<h2>Models and layers</h2>", models,
    ]
    for name, heading, caption in _FIGURES:
        if name in figures:
            parts += [f"<h2>{html.escape(heading)}</h2>", "<figure>", _img(figures[name]),
                      f"<figcaption>{html.escape(caption)}</figcaption>", "</figure>"]
            if name == "best_layer":
                parts += ['<p class="note">Layer indices of the map:</p>', legend]
    parts += ["</body>", "</html>", ""]
    return write_text_atomic(path, "\n".join(parts))
