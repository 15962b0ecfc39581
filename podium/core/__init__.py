"""The contract every task shares: the canonical table and its split and sample set, run directories and
their records (config, metrics, predictions, the submission file), and the `Stage` base of the techniques.

Imports only `podium.errors`, `podium.files` and `podium.config`."""

__all__ = ["annotations", "backend", "imagefiles", "manifest", "metrics", "rundir", "split", "stage", "submission_format",
           "table", "writer"]
