"""The warm-start cache: a model is trained once per (world, recipe, seed), found again by what it is made of, and
trained again, never reused, when a file of it no longer matches its manifest (verl's SFT is replaced by a stand-in
that writes a model folder and counts its calls)."""

import json

import pandas as pd
import pytest

from duet_verl.worlds import warm_start
from duet_verl.worlds.warm_start import SFTRecipe

RECIPES = {"large": SFTRecipe("large", "large_sft", 1, 1e-3), "small": SFTRecipe("small", "small_sft", 1, 1e-3)}


@pytest.fixture
def world(tmp_path):
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "tokenizer" / "tokenizer.json").write_text('{"vocab": 1}')
    paths = {"tokenizer": tmp_path / "tokenizer"}
    for name in ("large_sft", "small_sft"):
        paths[name] = tmp_path / f"{name}.parquet"
        pd.DataFrame({"sft_prompt": [f"{name} prompt"], "sft_completion": ["answer"]}).to_parquet(paths[name])
    return paths


@pytest.fixture
def trained(monkeypatch):
    calls: list[list[str]] = []

    def fake_warm_start(world_paths, out_dir, seed, recipes):
        calls.append(sorted(recipes))
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in recipes:
            (out_dir / name).mkdir()
            (out_dir / name / "model.safetensors").write_bytes(f"{name} {seed}".encode())
        (out_dir / "warm_start.json").write_text(json.dumps({"wall_s": {name: 1.0 for name in recipes}}))
        return {name: out_dir / name for name in recipes}

    monkeypatch.setattr(warm_start, "warm_start", fake_warm_start)
    return calls


def test_a_warm_start_is_trained_once_and_found_by_its_content(world, tmp_path, trained):
    cache = tmp_path / "cache"
    first = warm_start.cached_warm_start(world, cache, seed=0, recipes=RECIPES)
    assert trained == [["large", "small"]]
    assert warm_start.cached_warm_start(world, cache, seed=0, recipes=RECIPES) == first
    assert trained == [["large", "small"]], "the second call trains nothing"
    assert (first["large"] / "model.safetensors").read_bytes() == b"large 0"
    manifest = json.loads((first["large"].parent / "manifest.json").read_text())
    assert manifest["files"] == {"model.safetensors": warm_start._sha256(b"large 0")} and manifest["wall_s"] == 1.0
    assert not list(cache.glob("scratch-*")), "the scratch folder goes"

    warm_start.cached_warm_start(world, cache, seed=1, recipes=RECIPES)  # another seed: other models
    pd.DataFrame({"sft_prompt": ["other"], "sft_completion": ["answer"]}).to_parquet(world["small_sft"])
    changed = warm_start.cached_warm_start(world, cache, seed=0, recipes=RECIPES)  # another SFT set for m
    assert trained[1:] == [["large", "small"], ["small"]]
    assert changed["large"] == first["large"] and changed["small"] != first["small"]


def test_a_model_that_differs_from_its_manifest_is_trained_again(world, tmp_path, trained, capsys):
    cache = tmp_path / "cache"
    models = warm_start.cached_warm_start(world, cache, seed=0, recipes=RECIPES)
    (models["small"] / "model.safetensors").write_bytes(b"damaged")
    again = warm_start.cached_warm_start(world, cache, seed=0, recipes=RECIPES)
    assert trained == [["large", "small"], ["small"]]
    assert "not what its manifest says" in capsys.readouterr().out
    assert (again["small"] / "model.safetensors").read_bytes() == b"small 0"
    (models["large"] / "extra.bin").write_bytes(b"?")  # a file the manifest does not list
    warm_start.cached_warm_start(world, cache, seed=0, recipes=RECIPES)
    assert trained[-1] == ["large"]
