"""The study's summary: best value and parameters, trial counts, failures, and plots, in its folder."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

from podium.files import write_json

__all__ = ["summarize", "write_report", "format_summary"]


def summarize(study, *, storage: str = "") -> dict:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): sum(t.state == state for t in trials) for state in TrialState}
    summary = {
        "study": study.study_name,
        "storage": storage,
        "competition": study.user_attrs.get("competition"),
        "metric": study.user_attrs.get("metric"),
        "direction": study.direction.name.lower(),
        "sample": study.user_attrs.get("sample"),
        "trials": {"complete": counts["complete"], "pruned": counts["pruned"], "failed": counts["fail"],
                   "running": counts["running"], "waiting": counts["waiting"]},
        "failures": [{"trial": t.number, "error": t.user_attrs.get("error") or t.system_attrs.get("fail_reason", "")}
                     for t in trials if t.state == TrialState.FAIL],
        "best_value": None, "best_params": None, "best_trial": None, "best_run": None,
    }
    if counts["complete"]:
        best = study.best_trial
        summary.update(best_value=best.value, best_params=best.params, best_trial=best.number,
                       best_run=best.user_attrs.get("run_dir"))
    return summary


def write_report(study, folder: Path, *, storage: str = "") -> dict:
    """`summary.json` and PNG plots (optimisation history, parameter importances, per-epoch values)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    summary = summarize(study, storage=storage)
    summary["plots"], summary["plot_notes"] = {}, {}
    for name, plot in (("history", "plot_optimization_history"), ("importances", "plot_param_importances"),
                       ("intermediate_values", "plot_intermediate_values")):
        path = folder / f"{name}.png"
        note = _plot(study, plot, path)
        if note:
            summary["plot_notes"][name] = note
        else:
            summary["plots"][name] = str(path)
    write_json(folder / "summary.json", summary)
    return summary


def _plot(study, function_name: str, out: Path) -> str:
    """Draw one optuna plot into `out`; return why not when the study cannot show it yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as optuna_plots

    from podium.files import atomic_write_bytes

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if function_name == "plot_param_importances" and len(complete) < 2:
        return "needs at least two complete trials"
    if not complete and function_name == "plot_optimization_history":
        return "no complete trial yet"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            axes = getattr(optuna_plots, function_name)(study)
    except (ValueError, RuntimeError) as exc:  # e.g. importances when no parameter varied
        plt.close("all")
        return f"not drawn: {exc}"
    figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
    figure.set_size_inches(8, 5)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    atomic_write_bytes(out, buffer.getvalue())
    return ""


def format_summary(summary: dict) -> str:
    counts = summary["trials"]
    lines = [f"study {summary['study']} ({summary['competition']}): {counts['complete']} complete, "
             f"{counts['pruned']} pruned, {counts['failed']} failed"
             + (f", {counts['running']} running" if counts["running"] else "")]
    if summary["best_value"] is not None:
        lines.append(f"  best {summary['metric']} {summary['best_value']:.5f} (trial {summary['best_trial']})")
        lines += [f"    {key} = {value:.4g}" if isinstance(value, float) else f"    {key} = {value}"
                  for key, value in summary["best_params"].items()]
        if summary["best_run"]:
            lines.append(f"  best run: {summary['best_run']}")
    for failure in summary["failures"][-5:]:
        reason = failure["error"].splitlines()[0] if failure["error"] else "no error recorded"
        lines.append(f"  trial {failure['trial']} failed: {reason}")
    for name, path in summary.get("plots", {}).items():
        lines.append(f"  {name}: {path}")
    return "\n".join(lines)
