from pathlib import Path

HELP = "List your Kaggle submissions to a competition with their scores, and the runs they came from."

_PAGE = 50
_MAX_PAGES = 20


def add_arguments(parser) -> None:
    parser.add_argument("competition", help="competition name (see `podium competitions`) or Kaggle slug")
    parser.add_argument("--runs", type=Path, default=Path("runs"), metavar="DIR",
                        help="runs root where `podium submit` recorded the submissions (default: runs)")


def run(args) -> int:
    from podium.competitions import get
    from podium.errors import PodiumError
    from podium.kaggle.client import client, kaggle_errors
    from podium.kaggle.submit import local_records, record_scores

    plugin = get(args.competition)
    if plugin.kaggle_dataset:
        raise PodiumError(f"{plugin.name} uses the Kaggle dataset {plugin.kaggle_dataset}, which takes no submissions")
    api = client()
    submissions = []
    with kaggle_errors(f"list the submissions to {plugin.slug}", competition=plugin.slug):
        for page in range(1, _MAX_PAGES + 1):
            batch = api.competition_submissions(plugin.slug, page_number=page, page_size=_PAGE) or []
            submissions += batch
            if len(batch) < _PAGE:
                break
    if not submissions:
        print(f"no submissions to {plugin.slug} yet")
        return 0
    runs = {record.get("kaggle_ref"): record.get("run_id") for record in local_records(args.runs, plugin.name)}
    # Kept beside each run's record, so its report and `podium runs` show the public score offline.
    record_scores(args.runs, plugin.name, {item.ref: {"public_score": item.public_score or None,
                                                      "private_score": item.private_score or None}
                                           for item in submissions if item.ref})
    print(f"{'date':19s}  {'status':8s}  {'public':>10s}  {'private':>10s}  {'run':24s}  {'file':24s}  description")
    for item in submissions:
        date = item.date.strftime("%Y-%m-%d %H:%M:%S") if item.date else ""
        print(f"{date:19s}  {item.status.name.lower():8s}  {item.public_score or '':>10s}  "
              f"{item.private_score or '':>10s}  {runs.get(item.ref) or '':24s}  {item.file_name or '':24s}  "
              f"{item.description or ''}{f' (error: {item.error_description})' if item.error_description else ''}")
    return 0
