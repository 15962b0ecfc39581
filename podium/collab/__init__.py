"""Collaborative filtering on explicit ratings: GroupLens readers, Keras embedding models, analysis, recommendations.

- `readers`: MovieLens files (ratings.csv / u.data, movies.csv / u.item, users.csv / u.user, pairs) into frames.
- `data`: ids re-indexed on the training ratings, the fallback baseline, the lookup tables the models use.
- `layers`, `models`: the Keras models (dot product with biases, neural net, metadata fusion).
- `recommender`: `Recommender`, the trainable, savable model with the unseen-id fallback.
- `run`: the `collaborative_filtering` pipeline behind `podium run` and `podium predict`.
- `analysis`: learned movie biases and a PCA of the movie embeddings. `recommend`: top-N for a user.
"""
