"""The demo model's retrieval quality, measured on demo data from a seed never used in
training: the figures docs/demo-model.md and the model card state."""

import json
from pathlib import Path

from helpers._offline.train import TRAINING_SEED
from helpers.cli import main


def test_eval_json_precisions_hold_on_unseen_demo_data(demo_set: Path, capsys) -> None:
    assert json.loads((demo_set / "demo.json").read_text())["seed"] != TRAINING_SEED
    assert main(["eval", "--data", str(demo_set), "--model", "demo", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["stand_in"] is True and result["images"] == 128
    assert result["classes_scored"] >= 20
    assert result["text_to_image_precision_at_5"] >= 0.8
    assert result["image_to_image_precision_at_5"] >= 0.8


def test_eval_on_a_missing_folder_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main(["eval", "--data", str(tmp_path / "nope"), "--model", "demo"]) == 2
    assert "does not exist" in capsys.readouterr().err
