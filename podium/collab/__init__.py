"""Collaborative filtering on explicit ratings: Keras embedding models, analysis, recommendations.

The MovieLens file readers live in `podium.competitions.movielens_files`.

- `data`: ids re-indexed on the training ratings, the fallback baseline, the time features, the lookup tables.
- `layers`, `models`: the Keras models (dot product with biases, neural net, metadata fusion; time-aware biases).
- `stream`: training batches read from memory-mapped rating files.
- `recommender`: `Recommender`, the trainable, savable model with the unseen-id fallback.
- `run`: the `collaborative_filtering` pipeline behind `podium run` and `podium predict`.
- `analysis`: learned movie biases and a PCA of the movie embeddings. `recommend`: top-N for users.
"""
__all__ = ["analysis", "data", "layers", "models", "recommend", "recommender", "run", "stream"]
