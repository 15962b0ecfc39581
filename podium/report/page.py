"""A run's report: its sections in order (per pipeline), rendered by `templates/report.html` into one HTML file
with every figure and photo embedded, so it opens from disk on any machine."""
from __future__ import annotations

import time
from pathlib import Path

from podium import __version__
from podium.errors import PodiumError
from podium.files import atomic_write_text
from podium.log import logger
from podium.report import collab, common, image
from podium.report.run import RunFiles, guarded

REPORT = "report.html"

# pipeline -> (section id, title, builder) in the order of the page
SECTIONS = {
    "image_classification": (
        ("run", "Run", common.summary),
        ("metrics", "Metrics", common.metrics_table),
        ("learning-curves", "Learning curves", common.learning_curves),
        ("confusion", "Confusion matrix", image.confusion),
        ("calibration", "Reliability before and after calibration", image.reliability),
        ("per-class", "Log loss per class", image.per_class),
        ("per-group", "Log loss per group", image.per_group),
        ("top-losses", "Top losses", image.top_losses),
        ("boxes", "Boxes", image.boxes),
        ("pseudo-labels", "Pseudo-labels", image.pseudo_labels),
        ("config", "Config", common.config),
    ),
    "collaborative_filtering": (
        ("run", "Run", common.summary),
        ("metrics", "Metrics", common.metrics_table),
        ("learning-curves", "Learning curves", common.learning_curves),
        ("rmse-by-count", "RMSE by user activity and movie popularity", collab.rmse_by_activity),
        ("analysis", "Movie biases and vectors", collab.analysis),
        ("recommendations", "Sample recommendations", collab.recommendations),
        ("config", "Config", common.config),
    ),
}


def environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined)


def build_report(run_dir: Path) -> tuple[str, list]:
    """(the report's HTML, its sections) of a finished run; a directory that is no finished run is one
    PodiumError line, a section the run's files cannot fill is left out with the reason."""
    run = RunFiles(run_dir)
    pipeline = run.record.get("pipeline")
    sections = [guarded(section_id, title, builder, run)
                for section_id, title, builder in SECTIONS.get(pipeline, SECTIONS["image_classification"])]
    html = environment().get_template(REPORT).render(
        title=f"{run.record.get('competition', '')} · {run.id}", run_dir=str(run.dir.resolve()),
        built=time.strftime("%Y-%m-%d %H:%M:%S"), version=__version__, sections=sections,
        left_out=[section for section in sections if section.left_out])
    return html, sections


def write_report(run_dir: Path, out: Path | None = None) -> tuple[Path, list]:
    """Write the report (default: `report.html` in the run directory, replaced whole); (path, sections)."""
    html, sections = build_report(run_dir)
    path = Path(out) if out else Path(run_dir) / REPORT
    atomic_write_text(path, html)
    return path, sections


def report_after_run(run_dir: Path, config: dict) -> Path | None:
    """The report at the end of `podium run` (unless `report.enabled` is false): the run has finished, so a
    report that cannot be written is said in one line and the run stays as it is."""
    if not (config.get("report") or {}).get("enabled", True):
        return None
    try:
        return write_report(run_dir)[0]
    except (PodiumError, OSError) as exc:
        logger.warning(f"report not written ({exc}); `podium report {run_dir}` tries again")
        return None
