"""Keras rating models over (user index, movie index) pairs, all built from embedding layers.

- "dot": rating = squash(user bias + movie bias + user vector . movie vector);
- "nn": the two vectors concatenated through dense layers with dropout, plus both biases;
- "meta": "dot" whose vectors and biases also sum embeddings of metadata
  (user age group, gender, occupation; movie genres and decade).

With `implicit`, a user's vector also sums embeddings of the movies they rated and a movie's the
users who rated it (SVD++'s implicit feedback, both ways; the training ratings, plus the pairs to
predict when the caller gives them: who rated what, never their ratings). With `time_bins`, two
more inputs add timeSVD++'s drifting biases: a movie bias per time bin and a user slope times the
rating's drift from the user's mean date (see `podium.collab.data.TimeFeatures`). Every embedding
table has an L2 penalty. Named layers "user_vector", "movie_vector", "movie_offset" give analysis
the learned movie representation and bias.
"""
from __future__ import annotations

import keras

from podium.collab.layers import BagEmbedding, BinnedBias, DriftBias, RatedBag, RatingSquash

KINDS = ("dot", "nn", "meta")


def build_model(kind: str, *, n_users: int, n_movies: int, rating_range: tuple[float, float], mean: float,
                factors: int = 50, reg: float = 3e-4, bias_reg: float = 1e-5, implicit: bool = True,
                units=(128, 32), dropout: float = 0.3, init_scale: float = 0.01,
                user_features: int = 0, movie_features: int = 0, time_bins: int = 0,
                time_reg: float = 1e-3, rated_pairs: int = 0, seed: int | None = None) -> keras.Model:
    """The model for `kind`; BagEmbedding tables and RatedBag pairs are zeros until filled (see `fill_tables`).

    `rated_pairs`: the number of distinct (user, movie) pairs of the implicit feedback (`implicit`);
    `seed`: the implicit terms' sampling during training.
    `user_features` / `movie_features`: metadata vocabulary sizes ("meta" needs at least one).
    `time_bins` > 0: the time-aware biases, with inputs "time_bin" and "drift" beside "user" and "movie";
    `time_reg` is their L2 penalty (a bin or a slope has fewer ratings behind it than a static bias).
    """
    from podium.errors import PodiumError

    if kind not in KINDS:
        raise PodiumError(f"model.kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "meta" and not (user_features or movie_features):
        raise PodiumError("model.kind=meta needs user or movie metadata (users.csv or u.user, movies.csv or u.item), "
                          "and the data folder has neither")
    user = keras.Input(shape=(), dtype="int32", name="user")
    movie = keras.Input(shape=(), dtype="int32", name="movie")

    def embedding(count, dim, penalty, name):
        initializer = keras.initializers.RandomNormal(stddev=init_scale) if dim > 1 else "zeros"
        return keras.layers.Embedding(count, dim, embeddings_initializer=initializer, name=name,
                                      embeddings_regularizer=keras.regularizers.L2(penalty) if penalty else None)

    def bag(rows, vocabulary, dim, penalty, name):
        return BagEmbedding(rows, vocabulary, dim, l2=penalty, init_scale=init_scale, name=name)

    user_terms = [embedding(n_users, factors, reg, "user_factors")(user)]
    movie_terms = [embedding(n_movies, factors, reg, "movie_factors")(movie)]
    user_offsets = [embedding(n_users, 1, bias_reg, "user_bias")(user)]
    movie_offsets = [embedding(n_movies, 1, bias_reg, "movie_bias")(movie)]
    if implicit:
        user_terms.append(RatedBag(n_users, n_movies, rated_pairs, factors, l2=reg, init_scale=init_scale, seed=seed,
                                   name="user_implicit")(user))
        movie_terms.append(RatedBag(n_movies, n_users, rated_pairs, factors, l2=reg, init_scale=init_scale,
                                    seed=None if seed is None else seed + 1, name="movie_implicit")(movie))
    if kind == "meta":
        if user_features:
            user_terms.append(bag(n_users, user_features, factors, reg, "user_meta")(user))
            user_offsets.append(bag(n_users, user_features, 1, bias_reg, "user_meta_bias")(user))
        if movie_features:
            movie_terms.append(bag(n_movies, movie_features, factors, reg, "movie_meta")(movie))
            movie_offsets.append(bag(n_movies, movie_features, 1, bias_reg, "movie_meta_bias")(movie))

    user_vector = _sum(user_terms, "user_vector")
    movie_vector = _sum(movie_terms, "movie_vector")
    offsets = [_sum(user_offsets, "user_offset"), _sum(movie_offsets, "movie_offset")]
    if kind == "nn":
        hidden = keras.layers.Concatenate(name="pair")([user_vector, movie_vector])
        hidden = keras.layers.Dropout(dropout)(hidden)
        for k, width in enumerate(units):
            hidden = keras.layers.Dense(int(width), activation="relu", name=f"dense_{k}")(hidden)
            hidden = keras.layers.Dropout(dropout)(hidden)
        interaction = keras.layers.Dense(1, name="interaction")(hidden)
    else:
        interaction = keras.layers.Dot(axes=1, name="interaction")([user_vector, movie_vector])
    inputs = {"user": user, "movie": movie}
    if time_bins:
        inputs["time_bin"] = keras.Input(shape=(), dtype="int32", name="time_bin")
        inputs["drift"] = keras.Input(shape=(), dtype="float32", name="drift")
        # Apart from "movie_offset", so the analysis still reads the movie's static bias.
        offsets.append(BinnedBias(n_movies, time_bins, l2=time_reg, name="movie_time_bias")([movie, inputs["time_bin"]]))
        offsets.append(DriftBias(n_users, l2=time_reg, name="user_drift")([user, inputs["drift"]]))
    score = keras.layers.Add(name="score")([interaction, *offsets])
    low, high = rating_range
    margin = (high - low) / 8
    rating = RatingSquash(low - margin, high + margin, mean, name="rating")(score)
    return keras.Model(inputs, rating, name=f"{kind}_model")


def fill_tables(model: keras.Model, tables: dict) -> None:
    """Copy each BagEmbedding's table (layer name -> array) and each RatedBag's pairs (layer name ->
    `podium.collab.data.rated_pairs`) into the built model."""
    for layer in model.layers:
        if isinstance(layer, BagEmbedding):
            layer.set_table(tables[layer.name])
        elif isinstance(layer, RatedBag):
            layer.set_pairs(*tables[layer.name])


def _sum(terms: list, name: str):
    if len(terms) == 1:
        return keras.layers.Identity(name=name)(terms[0])
    return keras.layers.Add(name=name)(terms)
