"""`podium download` against a fake Kaggle on 127.0.0.1, driven by the real `kaggle` client."""
import io
import json
import tarfile
from pathlib import Path

import pytest
from kaggle_fake_server import fake_kaggle, zip_bytes

from podium.competitions import get
from podium.competitions.base import Competition
from podium.errors import PodiumError
from podium.cli.main import main
from podium.kaggle.download import MARKER, STAGING, download, unsafe_member

SLUG = "dogs-vs-cats-redux-kernels-edition"
DATA = Path("data/dogs-vs-cats-redux")  # the default --to, relative to the test's folder


@pytest.fixture
def kaggle(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with fake_kaggle(monkeypatch, tmp_path) as server:
        yield server


def folder_zip(folder: Path) -> bytes:
    """`folder` zipped the way Kaggle zips train/ and test/: under their own folder name."""
    members = {f"{folder.name}/": b""}
    members.update({f"{folder.name}/{p.name}": p.read_bytes() for p in sorted(folder.iterdir())})
    return zip_bytes(members)


def redux_archive(data_dir: Path) -> bytes:
    """Kaggle's competition zip for Dogs vs. Cats Redux: train.zip and test.zip inside it."""
    return zip_bytes({"train.zip": folder_zip(data_dir / "train"), "test.zip": folder_zip(data_dir / "test"),
                      "sample_submission.csv": (data_dir / "sample_submission.csv").read_bytes()})


def test_download_unpacks_nested_archives_into_the_layout_the_plugin_reads(kaggle, redux_data, capfd):
    kaggle.add_competition(SLUG, redux_archive(redux_data))

    assert main(["download", "dogs-vs-cats-redux"]) == 0

    out = capfd.readouterr().out
    assert "layout ok: 120 labelled rows, 40 test rows" in out
    assert kaggle.api_calls() == ["DownloadDataFiles"]
    assert kaggle.body_of("DownloadDataFiles") == {"competitionName": SLUG}
    assert sorted(p.name for p in DATA.iterdir()) == [MARKER, "sample_submission.csv", "test", "train"]
    assert (DATA / "train" / "cat.7.jpg").read_bytes() == (redux_data / "train" / "cat.7.jpg").read_bytes()
    table = get("dogs-vs-cats-redux").read_table(DATA)
    assert table["split"].value_counts().to_dict() == {"train": 120, "test": 40}
    assert sorted(table.loc[table["split"] == "test", "id"].astype(int)) == list(range(1, 41))


def test_a_nested_archive_with_several_folders_unpacks_into_its_own_folder(kaggle, tmp_path, capfd):
    # State Farm's original archive: imgs.zip holds train/ and test/, and the plugin reads imgs/train.
    raw = get("state-farm").make_demo_data(tmp_path / "raw", drivers=2, per_class=1, test_images=3, size=(16, 16))
    images = {p.relative_to(raw / "imgs").as_posix(): p.read_bytes() for p in sorted((raw / "imgs").rglob("*.jpg"))}
    kaggle.add_competition("state-farm-distracted-driver-detection", zip_bytes({
        "imgs.zip": zip_bytes(images),
        "driver_imgs_list.csv.zip": zip_bytes({"driver_imgs_list.csv": (raw / "driver_imgs_list.csv").read_bytes()}),
        "sample_submission.csv.zip": zip_bytes({"sample_submission.csv": (raw / "sample_submission.csv").read_bytes()}),
    }))

    assert main(["download", "state-farm", "--to", "sf"]) == 0

    assert "layout ok: 20 labelled rows, 3 test rows" in capfd.readouterr().out
    assert sorted(p.name for p in Path("sf").iterdir()) == [MARKER, "driver_imgs_list.csv", "imgs", "sample_submission.csv"]
    assert sorted(p.name for p in Path("sf/imgs").iterdir()) == ["test", "train"]


def test_a_complete_download_is_not_downloaded_again_and_a_damaged_one_is(kaggle, redux_data, capfd):
    kaggle.add_competition(SLUG, redux_archive(redux_data))
    assert main(["download", "dogs-vs-cats-redux"]) == 0
    requests_after_first = len(kaggle.requests)

    assert main(["download", "dogs-vs-cats-redux"]) == 0
    assert "already downloaded (161 files" in capfd.readouterr().out
    assert len(kaggle.requests) == requests_after_first

    # A truncated file means the download is no longer complete: it is fetched and unpacked again.
    (DATA / "test" / "3.jpg").write_bytes(b"partial")
    assert main(["download", "dogs-vs-cats-redux"]) == 0
    assert kaggle.api_calls() == ["DownloadDataFiles", "DownloadDataFiles"]
    assert (DATA / "test" / "3.jpg").read_bytes() == (redux_data / "test" / "3.jpg").read_bytes()

    assert main(["download", "dogs-vs-cats-redux", "--force"]) == 0
    assert kaggle.api_calls().count("DownloadDataFiles") == 3


def test_a_partial_archive_left_by_an_interrupted_download_is_completed(kaggle, redux_data):
    archive = redux_archive(redux_data)
    kaggle.add_competition(SLUG, archive)
    (DATA / STAGING).mkdir(parents=True)
    (DATA / STAGING / f"{SLUG}.zip").write_bytes(archive[: len(archive) // 2])

    assert main(["download", "dogs-vs-cats-redux"]) == 0

    assert len(list((DATA / "train").iterdir())) == 120
    assert not (DATA / STAGING).exists()
    assert json.loads((DATA / MARKER).read_text())["archive_bytes"] == len(archive)


def test_files_the_download_did_not_write_are_replaced_only_with_force(kaggle, redux_data, capfd):
    kaggle.add_competition(SLUG, redux_archive(redux_data))
    (DATA / "train").mkdir(parents=True)
    (DATA / "train" / "mine.txt").write_text("the user's own file")

    assert main(["download", "dogs-vs-cats-redux"]) == 2
    assert "train already exists and was not written by `podium download`" in capfd.readouterr().err
    assert (DATA / "train" / "mine.txt").is_file()
    assert not (DATA / MARKER).exists() and not (DATA / "test").exists()

    assert main(["download", "dogs-vs-cats-redux", "--force"]) == 0
    assert sorted(p.name for p in (DATA / "train").iterdir()) == sorted(p.name for p in (redux_data / "train").iterdir())


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            bundle.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@pytest.mark.parametrize("where", ["nested zip", "outer zip", "nested tar"])
def test_archives_with_members_outside_the_folder_are_refused(kaggle, tmp_path, capfd, where):
    escaped = tmp_path / "escaped.txt"
    bad_name = {"nested zip": "../../escaped.txt", "outer zip": str(escaped), "nested tar": str(escaped)}[where]
    good = {"train/cat.0.jpg": b"cat"}
    if where == "outer zip":
        archive = zip_bytes({"sample_submission.csv": b"id,label\n", bad_name: b"gotcha"})
    elif where == "nested zip":
        archive = zip_bytes({"sample_submission.csv": b"id,label\n", "train.zip": zip_bytes({**good, bad_name: b"gotcha"})})
    else:
        archive = zip_bytes({"sample_submission.csv": b"id,label\n", "train.tar.gz": tar_gz({**good, bad_name: b"gotcha"})})
    kaggle.add_competition(SLUG, archive)

    assert main(["download", "dogs-vs-cats-redux"]) == 2

    err = capfd.readouterr().err
    assert "refused to unpack it" in err and repr(bad_name) in err
    assert not escaped.exists()
    assert not any(tmp_path.rglob("escaped.txt"))
    assert not (DATA / MARKER).exists() and not (DATA / "sample_submission.csv").exists()


@pytest.mark.parametrize("name, unsafe", [
    ("train/cat.0.jpg", False), ("a/b/../c.txt", True), ("../x", True), ("/etc/passwd", True),
    ("C:\\Windows\\x", True), ("..\\x", True), ("dir/..hidden", False),
])
def test_unsafe_member_names(name, unsafe):
    assert unsafe_member(name) is unsafe


class TinyRatings(Competition):
    """A plugin whose files are a Kaggle dataset, like MovieLens: not registered, used directly."""
    name = "tiny-ratings"
    slug = "tiny-ratings"
    kaggle_dataset = "grouplens/tiny-ratings"
    task = "rating"

    def read_table(self, data_dir):
        raise NotImplementedError

    def make_demo_data(self, out_dir, seed=0):
        raise NotImplementedError


def test_dataset_plugins_download_through_the_datasets_api(kaggle, tmp_path):
    ratings = b"userId,movieId,rating\n1,1,4.0\n"
    kaggle.add_dataset("grouplens/tiny-ratings", zip_bytes({"ml-tiny/ratings.csv": ratings}))

    marker, downloaded = download(TinyRatings(), tmp_path / "ratings")

    assert downloaded and marker["source"] == "dataset:grouplens/tiny-ratings"
    assert kaggle.body_of("DownloadDataset") == {"ownerSlug": "grouplens", "datasetSlug": "tiny-ratings"}
    assert (tmp_path / "ratings" / "ml-tiny" / "ratings.csv").read_bytes() == ratings
    assert download(TinyRatings(), tmp_path / "ratings") == (marker, False)


def test_an_unknown_competition_is_one_clear_error(kaggle):
    with pytest.raises(PodiumError, match=r"HTTP 404: Competition not found"):
        download(get("dogs-vs-cats-redux"), Path("elsewhere"))
