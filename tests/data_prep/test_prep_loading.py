"""Where rows come from: the hub by default (mocked here: tests never touch the network) or local files/folders."""

import datasets
import pytest

from duet_verl.data_prep import DATASETS, get_spec
from duet_verl.data_prep.common import DataPrepError, load_splits, prepare

ROW = {"problem": "What is 2+3?", "answer": "5", "solution": ""}


@pytest.fixture
def fake_hub(monkeypatch):
    """Replace ``datasets.load_dataset`` for hub ids; record each call (local builders pass through)."""
    calls = []
    real = datasets.load_dataset

    def load_dataset(path, name=None, split=None, **kwargs):
        if path in ("json", "parquet", "csv", "arrow"):
            return real(path, name, split=split, **kwargs)
        calls.append((path, name, split))
        return datasets.Dataset.from_list([ROW])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


@pytest.mark.parametrize(
    ("name", "hub_call"),
    [
        ("deepscaler", ("agentica-org/DeepScaleR-Preview-Dataset", None, "train")),
        ("dapo_math17k", ("open-r1/DAPO-Math-17k-Processed", "en", "train")),
        ("math_lighteval", ("DigitalLearningGmbH/MATH-lighteval", None, "test")),
        ("math500", ("HuggingFaceH4/MATH-500", None, "test")),
        ("aime24", ("Maxwell-Jia/AIME_2024", None, "train")),
        ("aime25", ("yentinglin/aime_2025", None, "train")),
        ("amc23", ("math-ai/amc23", None, "test")),
        ("gpqa_diamond", ("Idavidrein/gpqa", "gpqa_diamond", "train")),
        ("gsm8k", ("openai/gsm8k", "main", "test")),
    ],
)
def test_hub_ids_configs_and_splits(fake_hub, name, hub_call):
    spec = get_spec(name)
    last_split = list(spec.splits)[-1]
    load_splits(spec, [last_split], None)
    assert fake_hub == [hub_call]


def test_hub_default_end_to_end(fake_hub, tmp_path, read_parquet):
    written = prepare(get_spec("deepscaler"), output_root=tmp_path)
    assert fake_hub == [("agentica-org/DeepScaleR-Preview-Dataset", None, "train")]
    assert [row["reward_model"]["ground_truth"] for row in read_parquet(written["train"])] == ["5"]


def test_gated_dataset_failure_says_how_to_log_in(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise datasets.exceptions.DatasetNotFoundError("Dataset 'Idavidrein/gpqa' is a gated dataset on the Hub.")

    monkeypatch.setattr(datasets, "load_dataset", refuse)
    with pytest.raises(DataPrepError, match="gated") as error:
        prepare(get_spec("gpqa_diamond"), output_root=tmp_path)
    assert "hf auth login" in str(error.value) and "--local-path" in str(error.value)
    assert not (tmp_path / "gpqa_diamond").exists()


def test_single_file_for_a_two_split_dataset_needs_splits(tmp_path, dataset_fixtures, read_parquet):
    file = dataset_fixtures / "gsm8k" / "main" / "test-00000-of-00001.parquet"
    with pytest.raises(DataPrepError, match="one file but splits"):
        prepare(get_spec("gsm8k"), file, tmp_path)
    written = prepare(get_spec("gsm8k"), file, tmp_path, splits=["test"])
    assert list(written) == ["test"] and len(read_parquet(written["test"])) == 3
    with pytest.raises(DataPrepError, match="unknown splits"):
        prepare(get_spec("gsm8k"), file, tmp_path, splits=["validation"])


def test_folder_with_files_named_after_hub_or_output_split(tmp_path, write_jsonl, read_parquet):
    folder = tmp_path / "aime"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [{"Problem": "P", "Answer": 7, "ID": "a"}])  # AIME's hub split name
    write_jsonl(folder / "notes.jsonl", [{"x": 1}])
    rows = read_parquet(prepare(get_spec("aime24"), folder, tmp_path / "out")["test"])
    assert rows[0]["reward_model"]["ground_truth"] == "7"


def test_hub_snapshot_layout_with_metadata_and_hidden_files(tmp_path, write_jsonl, read_parquet):
    snapshot = tmp_path / "snapshot"
    (snapshot / ".cache" / "huggingface").mkdir(parents=True)
    write_jsonl(snapshot / ".cache" / "huggingface" / "stale.jsonl", [{"x": 1}])
    (snapshot / "dataset_infos.json").write_text("{}")
    (snapshot / "README.md").write_text("card")
    write_jsonl(snapshot / "aime_2025.jsonl", [{"id": 0, "problem": "P", "solution": "", "answer": "070", "url": ""}])
    rows = read_parquet(prepare(get_spec("aime25"), snapshot, tmp_path / "out")["test"])  # the only data file
    assert [row["reward_model"]["ground_truth"] for row in rows] == ["70"]


def test_folder_without_a_file_for_the_split_lists_what_it_found(tmp_path, write_jsonl):
    folder = tmp_path / "math"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [{"problem": "p", "solution": "\\boxed{1}", "level": "Level 1", "type": "A"}])
    with pytest.raises(DataPrepError, match=r"no file for split 'test'.*train\.jsonl"):
        prepare(get_spec("math_lighteval"), folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_save_to_disk_folder(tmp_path, read_parquet):
    saved = tmp_path / "saved"
    rows = [{"question": "What is 1+1?", "answer": "1+1=2\n#### 2"}]
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(rows)}
    ).save_to_disk(str(saved))
    written = prepare(get_spec("gsm8k"), saved, tmp_path / "out")
    truths = [read_parquet(written[split])[0]["reward_model"]["ground_truth"] for split in ("train", "test")]
    assert truths == ["2", "2"]


def test_missing_local_path(tmp_path):
    with pytest.raises(DataPrepError, match="does not exist"):
        prepare(get_spec("math500"), tmp_path / "nope.jsonl", tmp_path)


def test_every_dataset_reads_its_fixture_from_the_local_root_layout(dataset_fixtures):
    from duet_verl.data_prep.prepare_all import local_source

    for name in DATASETS:
        assert local_source(dataset_fixtures, name).name.split(".")[0] == name
