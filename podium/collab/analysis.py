"""What a rating model learned about movies: its biases, and the main directions of its movie vectors.

Only the most-rated movies are analysed (`movies`, 1000 by default, as in the fast.ai lesson):
a movie with three ratings has a bias and vector that say more about the noise than the movie.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from podium.files import atomic_write_bytes, atomic_write_text

TEXT_FILE = "analysis.txt"
PLOT_FILE = "movie_pca.png"


def analyse_movies(recommender, ratings: pd.DataFrame, movies: pd.DataFrame | None, out_dir: Path, *,
                   top_movies: int = 1000, show: int = 10, labelled: int = 40) -> dict:
    """Print and save the movies with the highest and lowest learned bias and the ends of the first
    principal components of the movie vectors; save a titled PCA scatter. Returns the paths and findings."""
    from sklearn.decomposition import PCA

    out_dir = Path(out_dir)
    counts = ratings["movieId"].value_counts(sort=False)
    chosen = counts.sort_values(ascending=False, kind="stable").index[:top_movies].to_numpy()
    offsets, vectors = recommender.movie_representation(chosen)
    titles = _titles(chosen, movies)

    order = np.argsort(offsets, kind="stable")
    findings = {"lowest_bias": [(titles[k], float(offsets[k])) for k in order[:show]],
                "highest_bias": [(titles[k], float(offsets[k])) for k in order[::-1][:show]]}
    lines = [f"Analysis of the {len(chosen)} most-rated movies ({recommender.kind} model)", "",
             "Highest learned bias (liked beyond what the users' tastes explain):"]
    lines += [f"  {bias:+.3f}  {title}" for title, bias in findings["highest_bias"]]
    lines += ["", "Lowest learned bias:"]
    lines += [f"  {bias:+.3f}  {title}" for title, bias in findings["lowest_bias"]]

    components = min(3, len(chosen), vectors.shape[1])
    pca = PCA(n_components=components, random_state=0)
    projected = pca.fit_transform(vectors)
    findings["explained_variance"] = pca.explained_variance_ratio_.tolist()
    for c in range(min(2, components)):
        ranked = np.argsort(projected[:, c], kind="stable")
        findings[f"pc{c + 1}_low"] = [titles[k] for k in ranked[:show]]
        findings[f"pc{c + 1}_high"] = [titles[k] for k in ranked[::-1][:show]]
        lines += ["", f"Principal component {c + 1} of the movie vectors "
                      f"({pca.explained_variance_ratio_[c]:.1%} of their variance)",
                  "  one end:   " + "; ".join(findings[f"pc{c + 1}_high"]),
                  "  other end: " + "; ".join(findings[f"pc{c + 1}_low"])]
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_text(out_dir / TEXT_FILE, text)
    plot = _scatter(projected, titles, out_dir / PLOT_FILE, labelled=labelled, show=show,
                    kind=recommender.kind) if components >= 2 else None
    return {"text": out_dir / TEXT_FILE, "plot": plot, **findings}


def _titles(movie_ids: np.ndarray, movies: pd.DataFrame | None) -> list[str]:
    known = {} if movies is None else dict(zip(movies["movieId"], movies["title"]))
    return [str(known.get(movie_id) or f"movie {movie_id}") for movie_id in movie_ids]


def _scatter(projected: np.ndarray, titles: list[str], out: Path, *, labelled: int, show: int, kind: str) -> Path:
    """PC1 against PC2; the most-rated movies and both ends of each axis carry their titles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(13, 10))
    ax.scatter(projected[:, 0], projected[:, 1], s=8, c="lightsteelblue")
    ends = set()
    for c in range(2):
        ranked = np.argsort(projected[:, c], kind="stable")
        ends.update(ranked[:max(show // 2, 1)].tolist() + ranked[::-1][:max(show // 2, 1)].tolist())
    for k in sorted(set(range(min(labelled, len(titles)))) | ends):
        ax.scatter(projected[k, 0], projected[k, 1], s=14, c="crimson" if k in ends else "steelblue")
        ax.annotate(titles[k][:40], (projected[k, 0], projected[k, 1]), fontsize=7, alpha=0.85,
                    xytext=(3, 2), textcoords="offset points")
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.set_title(f"Movie vectors of the {kind} model, first two principal components "
                 f"({len(titles)} most-rated movies; labelled: most rated, and the ends of each axis)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return atomic_write_bytes(out, buffer.getvalue())
