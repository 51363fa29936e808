"""End-to-end evaluation with the tiny random models (HF backend, CPU), base vs trained M, sharing, resume and
bad input."""

import json
import shutil
import time

import pandas as pd
import pytest

from duet_verl.core import extract_signal, score_answer
from duet_verl.core.records import ANSWER_FIELDS, EVALUATE_FIELDS
from duet_verl.evaluate.__main__ import main
from duet_verl.evaluate.config import EvalConfig
from duet_verl.evaluate.inputs import EvalInputError
from duet_verl.evaluate.runner import run
from duet_verl.inference import Sampling, backends
from duet_verl.inference.backends import Generation
from duet_verl.worlds import tiny

ALL_MODES = ["duet", "large", "small", "concise"]
QUESTIONS = 5  # of the fixture's 8: enough for two chunks of 3, quick on a busy 2-core machine
COMPARED = ("samples", "accuracy", "mean_large_tokens", "mean_large_thinking_tokens", "mean_small_tokens")


def cli_args(tiny_assets, out, *extra):
    return [
        "--large", str(tiny_assets["large"]), "--small", str(tiny_assets["small"]),
        "--data", str(tiny_assets["test"]), "--out", str(out), "--backend", "hf", "--no-progress",
        "--large-max-tokens", "10", "--small-max-tokens", "5", "--chunk-size", "3", *extra,
    ]  # fmt: skip


def records_of(out):
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def samples(out):
    """What a sample is, without its timing: per-sample seeds make it independent of batching and resume."""
    fields = ("large_text", "small_text", "prediction", "correct", "large_tokens", "small_tokens")
    return {(r["mode"], r["row"]): tuple(r[f] for f in fields) for r in records_of(out)}


def comparable(summary):
    return {b: {m: {k: s[k] for k in COMPARED} for m, s in modes.items()} for b, modes in summary.items()}


@pytest.fixture(scope="module")
def full_run(tiny_assets, tmp_path_factory, record_wall_time):
    out = tmp_path_factory.mktemp("eval") / "full"
    start = time.perf_counter()
    assert main(cli_args(tiny_assets, out, "--modes", *ALL_MODES, "--max-samples", str(QUESTIONS))) == 0
    record_wall_time(f"evaluate: tiny models, {QUESTIONS} questions x 4 modes (hf)", time.perf_counter() - start)
    return out


def test_every_mode_end_to_end(full_run, tiny_assets):
    records = records_of(full_run)
    summary = json.loads((full_run / "summary.json").read_text())
    assert list(summary) == ["tiny_math"] and list(summary["tiny_math"]) == ALL_MODES
    assert {m: s["samples"] for m, s in summary["tiny_math"].items()} == dict.fromkeys(ALL_MODES, QUESTIONS)
    assert len(records) == 4 * QUESTIONS and len({(r["mode"], r["row"]) for r in records}) == 4 * QUESTIONS
    assert all(set(r) == set(ANSWER_FIELDS) | set(EVALUATE_FIELDS) for r in records), "one record schema"
    by_key = {(r["mode"], r["row"]): r for r in records}
    for row in range(QUESTIONS):
        large, duet, small, concise = (by_key[(m, row)] for m in ("large", "duet", "small", "concise"))
        # duet reads the signal of the very response that `large` was scored on
        assert duet["large_text"] == large["large_text"] and duet["large_tokens"] == large["large_tokens"]
        assert duet["signal"] == extract_signal(large["large_text"]).text
        assert 0 < large["large_tokens"] <= 10 and 0 < concise["large_tokens"] <= 10
        assert 0 < duet["small_tokens"] <= 5 and 0 < small["small_tokens"] <= 5 and small["large_tokens"] == 0
        assert large["small_text"] is None and concise["small_text"] is None
        assert large["large_model"] == duet["large_model"] == concise["large_model"] == str(tiny_assets["large"])
        for record in (large, concise):
            assert record["correct"] == score_answer("tiny_math", record["large_text"], record["ground_truth"]).score
        for record in (duet, small):
            assert record["correct"] == score_answer("tiny_math", record["small_text"], record["ground_truth"]).score
        assert duet["small_prompt_tokens"] > 0 and duet["large_seconds"] > 0 and duet["small_seconds"] > 0
    table = (full_run / "summary.md").read_text()
    assert "### tiny_math" in table and all(f"| {m} | {QUESTIONS}×1 |" in table for m in ALL_MODES)
    assert (full_run / "accuracy_vs_tokens.png").read_bytes()[:4] == b"\x89PNG"


@pytest.fixture
def logged_hf(monkeypatch):
    """The HF backend, logging which model loads, closes and reads which prompts (decoded)."""
    events, prompts = [], {}

    class LoggedHF(backends.HFGenerator):
        def __init__(self, model_path, **kwargs):
            super().__init__(model_path, **kwargs)
            self.path = model_path
            events.append(("load", model_path))

        def generate(self, prompts_token_ids, *args):
            prompts.setdefault(self.path, []).extend(self.tokenizer.decode(ids) for ids in prompts_token_ids)
            return super().generate(prompts_token_ids, *args)

        def close(self):
            events.append(("close", self.path))
            super().close()

    monkeypatch.setattr(backends, "HFGenerator", LoggedHF)
    return events, prompts


def test_base_m_answers_alone_and_trained_m_writes_the_signals(full_run, base_large, tiny_assets, tmp_path, logged_hf):
    events, _ = logged_hf
    base, trained, small = str(base_large), str(tiny_assets["large"]), str(tiny_assets["small"])
    out = tmp_path / "compare"
    assert main(cli_args(tiny_assets, out, "--base-large", base, "--modes", *ALL_MODES, "--max-samples", "3")) == 0
    # base M runs its modes first and is released before trained M loads: one M in memory at a time
    assert events.index(("load", base)) < events.index(("close", base)) < events.index(("load", trained))
    assert ("load", small) in events and ("close", trained) not in events
    by_key = {(r["mode"], r["row"]): r for r in records_of(out)}
    rows = range(3)
    assert {by_key[(mode, row)]["large_model"] for mode in ("large", "concise") for row in rows} == {base}
    assert {by_key[("duet", row)]["large_model"] for row in rows} == {trained}
    # duet read trained M's responses: those of full_run, whose only M was trained M (per-sample seeds) ...
    duet_texts = [by_key[("duet", row)]["large_text"] for row in rows]
    assert duet_texts == [samples(full_run)[("large", row)][0] for row in rows]
    # ... and `large` holds base M's: what base M writes as the only M
    alone = tmp_path / "base_alone"
    assert main(cli_args(tiny_assets, alone, "--large", base, "--modes", "large", "--max-samples", "3")) == 0
    base_texts = [samples(alone)[("large", row)][0] for row in rows]
    assert [by_key[("large", row)]["large_text"] for row in rows] == base_texts != duet_texts
    assert f"M: {trained} (`duet`); {base} (`large`, `concise`)" in (out / "summary.md").read_text()


def test_small_alone_reads_ms_prompt_with_the_answer_format(tiny_assets, tmp_path, logged_hf):
    """The scorer reads the last \\boxed{}: m alone must be asked for one, as M is (the data's prompt)."""
    _, prompts = logged_hf
    assert main(cli_args(tiny_assets, tmp_path / "small", "--modes", "small", "--max-samples", "2")) == 0
    alone = prompts[str(tiny_assets["small"])]
    questions = pd.read_parquet(tiny_assets["test"])["prompt"].iloc[:2]
    assert len(alone) == 2
    for prompt, messages in zip(alone, questions, strict=True):
        assert messages[0]["content"].endswith(tiny.MATH_INSTRUCTION)
        assert f"<|im_start|>user\n{messages[0]['content']}<|im_end|>" in prompt
        assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")  # thinking off


def test_duet_m_reads_the_question_as_prompted_when_asked(tiny_assets, tmp_path, logged_hf):
    """--small-question as_prompted: m reads M's user message, the answer instruction included (the authors' form)."""
    _, prompts = logged_hf
    args = cli_args(tiny_assets, tmp_path / "duet", "--modes", "duet", "--max-samples", "2")
    assert main([*args, "--small-question", "as_prompted"]) == 0
    questions = pd.read_parquet(tiny_assets["test"])["prompt"].iloc[:2]
    small = prompts[str(tiny_assets["small"])]
    assert len(small) == 2
    for prompt, messages in zip(small, questions, strict=True):
        assert messages[0]["content"].endswith(tiny.MATH_INSTRUCTION)
        assert prompt.startswith(f"user\n{messages[0]['content']}\nassistant\n<think>\n")  # the paper template


def test_resume_after_truncated_records_matches_full_run(full_run, tiny_assets, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(full_run, out)
    lines = (out / "records.jsonl").read_text().splitlines(keepends=True)
    # keep 7 whole lines and half of the 8th, as a run killed while writing would leave them
    (out / "records.jsonl").write_text("".join(lines[:7]) + lines[7][:40])
    (out / "summary.json").unlink()
    assert main(cli_args(tiny_assets, out, "--modes", *ALL_MODES, "--max-samples", str(QUESTIONS))) == 0
    assert len(records_of(out)) == 4 * QUESTIONS
    resumed = json.loads((out / "summary.json").read_text())
    assert comparable(resumed) == comparable(json.loads((full_run / "summary.json").read_text()))
    assert samples(out) == samples(full_run)


def test_resume_after_max_samples_cap_matches_full_run(full_run, tiny_assets, tmp_path):
    out = tmp_path / "capped"
    assert main(cli_args(tiny_assets, out, "--modes", "duet", "large", "--max-samples", "2")) == 0
    assert json.loads((out / "summary.json").read_text())["tiny_math"]["duet"]["samples"] == 2
    assert main(cli_args(tiny_assets, out, "--modes", *ALL_MODES, "--max-samples", str(QUESTIONS))) == 0
    assert comparable(json.loads((out / "summary.json").read_text())) == comparable(
        json.loads((full_run / "summary.json").read_text())
    )
    assert samples(out) == samples(full_run)


def test_resume_with_other_settings_is_refused(full_run, tiny_assets, tmp_path, capsys):
    out = tmp_path / "other"
    shutil.copytree(full_run, out)
    assert main(cli_args(tiny_assets, out, "--modes", "duet", "--small-template", "chat_think")) == 2
    assert "other settings" in capsys.readouterr().err


class ScriptedGenerator:
    """Answers correctly unless told otherwise, and counts prompts, to test sharing and seeds without a model."""

    def __init__(self, answer_for_seed=lambda seed: "7"):
        self.prompts, self.answer_for_seed = 0, answer_for_seed

    def generate(self, prompts_token_ids, max_new_tokens, temperature, top_p, top_k, seeds, stop_ids=()):
        self.prompts += len(prompts_token_ids)
        return [Generation([1, 2, 3, 4], f"<think>x</think>\\boxed{{{self.answer_for_seed(s)}}}") for s in seeds]

    def close(self):
        self.closed = True


def scripted_data(tmp_path, num=3):
    rows = [
        {
            "data_source": "tiny_math",
            "prompt": [{"role": "user", "content": f"q{i}"}],
            "reward_model": {"style": "rule", "ground_truth": "7"},
            "extra_info": {"split": "test", "index": i, "question": f"q{i}"},
        }
        for i in range(num)
    ]
    path = tmp_path / "scripted.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


def scripted_generators():
    """``(generators, make)``: ``make`` builds a ``ScriptedGenerator`` per role and records it in ``generators``."""
    generators = {}

    def make(path, role):
        generators[role] = ScriptedGenerator()
        return generators[role]

    return generators, make


def test_duet_and_large_share_one_generation_of_m(tiny_assets, tmp_path):
    generators, make = scripted_generators()
    config = EvalConfig(
        data=[str(scripted_data(tmp_path))], out=str(tmp_path / "out"), modes=["duet", "large", "concise"],
        large=str(tiny_assets["large"]), small=str(tiny_assets["small"]), progress=False,
    )  # fmt: skip
    summary = run(config, make)["tiny_math"]
    assert generators["large"].prompts == 3 + 3  # thinking (shared by duet and large) + concise
    assert generators["small"].prompts == 3
    assert all(s["accuracy"] == 1.0 for s in summary.values())
    assert summary["large"]["mean_large_thinking_tokens"] == 4  # tiny tokenizer: ids 1-4 are not </think>


def test_a_separate_base_m_shares_no_generation_with_duet(base_large, tiny_assets, tmp_path):
    generators, make = scripted_generators()

    config = EvalConfig(
        data=[str(scripted_data(tmp_path))], out=str(tmp_path / "out"), modes=["duet", "large", "concise"],
        large=str(tiny_assets["large"]), base_large=str(base_large), small=str(tiny_assets["small"]), progress=False,
    )  # fmt: skip
    summary = run(config, make)["tiny_math"]
    assert generators["base"].prompts == 3 + 3 and generators["base"].closed  # large + concise, then released
    assert generators["large"].prompts == 3 and generators["small"].prompts == 3  # duet
    assert summary["duet"]["large_models"] == [str(tiny_assets["large"])]
    assert summary["large"]["large_models"] == summary["concise"]["large_models"] == [str(base_large)]


def test_resume_reuses_the_stored_response_of_m(tiny_assets, tmp_path):
    generators = []

    def make(path, role):
        generators.append((role, ScriptedGenerator()))
        return generators[-1][1]

    data, out = str(scripted_data(tmp_path)), str(tmp_path / "out")
    common = dict(data=[data], out=out, large=str(tiny_assets["large"]), small=str(tiny_assets["small"]))
    run(EvalConfig(modes=["large"], progress=False, **common), make)
    assert [(role, g.prompts) for role, g in generators] == [("large", 3)]
    run(EvalConfig(modes=["large", "duet"], progress=False, **common), make)
    # duet read the signals `large` already had: M did not even load
    assert [(role, g.prompts) for role, g in generators[1:]] == [("small", 3)]
    assert len(records_of(tmp_path / "out")) == 6


def test_resume_with_another_base_m_is_refused(base_large, tiny_assets, tmp_path):
    common = dict(data=[str(scripted_data(tmp_path))], out=str(tmp_path / "out"), large=str(tiny_assets["large"]))
    run(EvalConfig(modes=["large"], progress=False, **common), lambda path, role: ScriptedGenerator())
    with pytest.raises(EvalInputError, match="other settings.*base_large"):
        run(EvalConfig(modes=["large"], base_large=str(base_large), progress=False, **common), never_called)


def test_seeds_give_mean_and_std(tiny_assets, tmp_path):
    def make(path, role):  # correct on about half of the per-sample seeds
        return ScriptedGenerator(lambda seed: "7" if seed % 2 else "8")

    config = EvalConfig(
        data=[str(scripted_data(tmp_path, num=6))], out=str(tmp_path / "out"), modes=["large"],
        large=str(tiny_assets["large"]), seeds=3, progress=False,
    )  # fmt: skip
    summary = run(config, make)["tiny_math"]["large"]
    records = records_of(tmp_path / "out")
    per_seed = [sum(r["correct"] for r in records if r["seed"] == s) / 6 for s in range(3)]
    assert summary["seeds"] == 3 and summary["samples"] == 18
    assert summary["accuracy"] == pytest.approx(sum(per_seed) / 3)
    assert summary["accuracy_seed_std"] == pytest.approx(pd.Series(per_seed).std(ddof=0))
    assert len({r["large_text"] for r in records}) == 2  # per-sample seeds differ across seeds and questions


# ------------------------------------------------------------------------------------------------ bad input
def never_called(path, role):
    raise AssertionError("a model was loaded before the input was checked")


def write_rows(tmp_path, rows, name="bad.parquet"):
    path = tmp_path / name
    pd.DataFrame(rows).to_parquet(path)
    return path


def good_row(**changes):
    row = {
        "data_source": "tiny_math",
        "prompt": [{"role": "user", "content": "q"}],
        "reward_model": {"style": "rule", "ground_truth": "1"},
        "extra_info": {"split": "test", "index": 0, "question": "q"},
    }
    return row | changes


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing_column", "lacks column(s) ['reward_model']"),
        ("unknown_source", "no scorer for data_source 'mystery_bench'"),
        ("empty_file", "has no rows"),
        ("missing_file", "does not exist"),
        ("not_parquet", "not a readable parquet file"),
        ("no_question", "extra_info.question is missing"),
        ("model_folder_missing", "no such folder"),
        ("model_folder_without_config", "no config.json"),
    ],
)
def test_bad_input_is_reported_before_any_model_loads(case, expected, tiny_assets, tmp_path):
    data, large = tmp_path / "data.parquet", str(tiny_assets["large"])
    if case == "missing_column":
        data = write_rows(tmp_path, [{k: v for k, v in good_row().items() if k != "reward_model"}])
    elif case == "unknown_source":
        data = write_rows(tmp_path, [good_row(), good_row(data_source="mystery_bench")])
    elif case == "empty_file":
        data = write_rows(tmp_path, [good_row()]).with_name("empty.parquet")
        pd.read_parquet(tmp_path / "bad.parquet").iloc[:0].to_parquet(data)
    elif case == "not_parquet":
        data.write_text("not parquet")
    elif case == "no_question":
        data = write_rows(tmp_path, [good_row(extra_info={"split": "test", "index": 0})])
    elif case != "missing_file":
        data = write_rows(tmp_path, [good_row()])
        large = str(tmp_path / "no_model")
        if case == "model_folder_without_config":
            (tmp_path / "no_model").mkdir()
    config = EvalConfig(data=[str(data)], out=str(tmp_path / "out"), modes=ALL_MODES, large=large,
                        small=str(tiny_assets["small"]), small_sampling=Sampling(4, 0.0), progress=False)  # fmt: skip
    with pytest.raises(EvalInputError) as error:
        run(config, never_called)
    assert expected in str(error.value)
    assert not (tmp_path / "out" / "records.jsonl").exists()


def test_a_bad_base_m_is_reported_only_when_its_modes_run(tiny_assets, tmp_path):
    data = write_rows(tmp_path, [good_row()])
    common = dict(data=[str(data)], large=str(tiny_assets["large"]), small=str(tiny_assets["small"]),
                  base_large=str(tmp_path / "no_model"), progress=False)  # fmt: skip
    with pytest.raises(EvalInputError, match=r"^base M \(M alone in large and concise\) \(--base-large .*no such"):
        run(EvalConfig(out=str(tmp_path / "a"), modes=["duet", "concise"], **common), never_called)
    roles = []

    def make(path, role):
        roles.append(role)
        return ScriptedGenerator()

    run(EvalConfig(out=str(tmp_path / "b"), modes=["duet"], **common), make)
    assert roles == ["large", "small"]


def test_cli_prints_the_error_and_exits_2(tmp_path, capsys):
    code = main(["--large", str(tmp_path / "nope"), "--data", str(tmp_path / "x.parquet"), "--modes", "large",
                 "--out", str(tmp_path / "out"), "--backend", "hf"])  # fmt: skip
    assert code == 2
    assert capsys.readouterr().err.startswith("error: M (the capable model) (--large ")


def test_the_pipeline_api_is_the_chain_evaluation_runs(full_run, tiny_assets):
    """``DuetPipeline.run`` with a sample's seeds gives exactly the record ``duet`` mode wrote: one chain."""
    from transformers import AutoTokenizer

    from duet_verl.evaluate.inputs import load_questions
    from duet_verl.evaluate.runner import sample_seed
    from duet_verl.inference import DuetPipeline

    questions = load_questions([str(tiny_assets["test"])], QUESTIONS, ["duet"])["tiny_math"]
    tokenizers = {role: AutoTokenizer.from_pretrained(str(tiny_assets[role])) for role in ("large", "small")}
    pipeline = DuetPipeline(
        large=backends.HFGenerator(str(tiny_assets["large"]), batch_size=2),
        small=backends.HFGenerator(str(tiny_assets["small"]), batch_size=2),
        large_tokenizer=tokenizers["large"],
        small_tokenizer=tokenizers["small"],
        large_sampling=Sampling(10, 0.6, 0.95, 20),  # the CLI's M sampling with --large-max-tokens 10
        small_sampling=Sampling(5, 0.0),
    )
    outputs = pipeline.run(
        [q.question for q in questions], [q.messages for q in questions],
        [sample_seed(0, q.benchmark, q.row, "large") for q in questions],
        [sample_seed(0, q.benchmark, q.row, "duet") for q in questions],
    )  # fmt: skip
    duet = {r["row"]: r for r in records_of(full_run) if r["mode"] == "duet"}
    for q, output in zip(questions, outputs, strict=True):
        record = duet[q.row]
        assert (output.large.text, output.large.tokens, output.large.thinking_tokens) == (
            record["large_text"], record["large_tokens"], record["large_thinking_tokens"]
        )  # fmt: skip
        assert (output.small.signal, output.small.prompt_tokens, output.answer, output.small.tokens) == (
            record["signal"], record["small_prompt_tokens"], record["small_text"], record["small_tokens"]
        )  # fmt: skip


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--max-samples", "0"], "error: argument --max-samples: 0 is not a whole number ≥ 1"),
        (["--large-temperature", "-0.5"], "error: argument --large-temperature: -0.5 is not a number ≥ 0"),
        (["--chunk-size", "0"], "error: argument --chunk-size: 0 is not a whole number ≥ 1"),
        (["--large-top-p", "1.5"], "error: argument --large-top-p: 1.5 is not a number in (0, 1]"),
        (["--seeds", "4"], "error: --seeds is now --samples"),
    ],
)
def test_nonsense_values_are_refused_naming_the_flag(tiny_assets, tmp_path, capsys, flags, named):
    with pytest.raises(SystemExit) as exit_:
        main(cli_args(tiny_assets, tmp_path / "out", "--modes", "duet", *flags))
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith(named) and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists(), "nothing is written for a command that is refused"


def test_one_line_for_a_mistake_found_before_any_model_loads(tiny_assets, tmp_path, capsys, monkeypatch):
    """The default backend without vLLM installed, and a hub id that is neither cached nor reachable (offline):
    one error line each, exit 2, before anything loads or is written."""
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real_find_spec(name, *a)
    )
    args = ["--large", str(tiny_assets["large"]), "--data", str(tiny_assets["test"]), "--modes", "large",
            "--out", str(tmp_path / "a")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --backend vllm needs vLLM, which is not installed here") and "--backend hf" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    args = ["--large", "nobody/no-such-model", "--data", str(tiny_assets["test"]), "--modes", "large",
            "--out", str(tmp_path / "b"), "--backend", "hf"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: M (the capable model) (--large nobody/no-such-model): not in the local Hugging Face")
    assert len(err.splitlines()) == 1 and not (tmp_path / "b").exists()


def test_a_run_that_failed_before_its_first_sample_leaves_a_folder_the_fixed_command_takes(tiny_assets, tmp_path):
    """A model that does not load (the wrong folder given) fails after the checks, with the folder made; rerun with
    the right model, the same --out is taken, not refused for "other settings"."""
    broken = tmp_path / "broken"
    shutil.copytree(tiny_assets["large"], broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    out = tmp_path / "out"
    assert main(cli_args(tiny_assets, out, "--modes", "large", "--large", str(broken), "--max-samples", "2")) == 1
    assert (out / "run_config.json").exists() and not (out / "records.jsonl").read_text()
    assert main(cli_args(tiny_assets, out, "--modes", "large", "--max-samples", "2")) == 0
