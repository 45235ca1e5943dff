"""Run-record helpers: secrets never leave the process, W&B mode resolution, flattening."""

import json

import pytest

from nas import tracking


def test_redact_masks_url_passwords_and_secret_fields():
    cfg = {
        "storage": "postgresql://alice:s3cret@db.example:5432/optuna",
        "nested": {"api_key": "abc123", "password": "pw", "lr": 0.1},
        "list": ["redis://bob:hunter2@localhost/0", "plain"],
    }
    out = tracking.redact(cfg)
    text = json.dumps(out)
    for secret in ("s3cret", "abc123", "hunter2", '"pw"'):
        assert secret not in text
    assert out["storage"] == "postgresql://alice:***@db.example:5432/optuna"
    assert out["nested"]["lr"] == 0.1 and out["list"][1] == "plain"


def test_wandb_mode_auto_is_offline_without_a_key(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert tracking.resolve_wandb_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert tracking.resolve_wandb_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert tracking.resolve_wandb_mode("auto") == "disabled"
    with pytest.raises(ValueError, match="valid modes"):
        tracking.resolve_wandb_mode("sometimes")


def test_unknown_logger_lists_choices():
    with pytest.raises(ValueError, match="valid loggers: wandb, csv, tensorboard, none"):
        tracking.validate_logger({"name": "comet"})


def test_flatten():
    assert tracking.flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


def test_write_json_is_atomic_and_redacted(tmp_path):
    path = tmp_path / "x.json"
    tracking.write_json(path, {"token": "t0k3n", "v": 1})
    assert json.loads(path.read_text()) == {"token": "***", "v": 1}
    assert not list(tmp_path.glob("*.tmp"))
