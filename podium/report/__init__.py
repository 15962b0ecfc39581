"""What a run learned, to look at: one self-contained HTML report per run (`podium report`, also written at the
end of `podium run`) and a leaderboard of a competition's runs (`podium runs`), built from the runs' files alone."""

__all__ = ["collab", "common", "image", "leaderboard", "page", "plots", "run"]  # the package's modules
