"""The embedded local model's file, offline: assembled from its parts in order and checksummed,
a damaged cache reassembled, an override path, the cache outside the repository, and missing
parts naming the install command."""

import hashlib

import pytest

from gepa_graph import local as lm
from gepa_graph.local import model_file


def _parts(tmp_path, chunks):
    paths = []
    for number, data in enumerate(chunks, start=1):
        path = tmp_path / f"part{number:02d}.bin"
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_assemble_concatenates_in_order_and_verifies(tmp_path):
    chunks = [b"alpha-", b"beta-", b"gamma"]
    whole = b"".join(chunks)
    messages = []
    out = model_file.assemble(
        _parts(tmp_path, chunks),
        tmp_path / "cache" / "m.gguf",
        sha256=hashlib.sha256(whole).hexdigest(),
        size=len(whole),
        progress=messages.append,
    )
    assert out.read_bytes() == whole
    assert "assembling the local model" in messages[0] and "ready" in messages[-1]
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".part")]


def test_checksum_mismatch_fails_clearly_and_leaves_nothing(tmp_path):
    destination = tmp_path / "cache" / "m.gguf"
    with pytest.raises(lm.ModelChecksumError) as caught:
        model_file.assemble(
            _parts(tmp_path, [b"a", b"b"]), destination, sha256="0" * 64, size=2, progress=None
        )
    message = str(caught.value)
    assert "does not match" in message and "0" * 64 in message
    assert hashlib.sha256(b"ab").hexdigest() in message
    assert "reinstall" in message and lm.ENV_MODEL in message
    assert not destination.exists()
    assert list(destination.parent.iterdir()) == []


def test_size_mismatch_fails(tmp_path):
    with pytest.raises(lm.ModelChecksumError):
        model_file.assemble(
            _parts(tmp_path, [b"ab"]),
            tmp_path / "m.gguf",
            sha256=hashlib.sha256(b"ab").hexdigest(),
            size=3,
            progress=None,
        )


def test_model_path_override_and_missing_override(tmp_path, monkeypatch):
    model = tmp_path / "any.gguf"
    model.write_bytes(b"gguf")
    monkeypatch.setenv(lm.ENV_MODEL, str(model))
    assert lm.model_path(progress=None) == model
    monkeypatch.setenv(lm.ENV_MODEL, str(tmp_path / "nope.gguf"))
    with pytest.raises(lm.LocalModelError, match="is not a file"):
        lm.model_path(progress=None)


def test_cache_dir_is_outside_the_repo(monkeypatch, tmp_path):
    monkeypatch.delenv(model_file.ENV_CACHE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert model_file.cache_dir() == tmp_path / "xdg" / "gepa_graph"
    monkeypatch.setenv(model_file.ENV_CACHE, str(tmp_path / "mine"))
    assert model_file.cached_model_path().parent == tmp_path / "mine" / "models"


def test_model_path_reassembles_a_damaged_cache(tmp_path, monkeypatch):
    """A cached file whose hash is wrong is thrown away and assembled again from the parts."""
    whole = b"the-model"
    parts = _parts(tmp_path, [b"the-", b"model"])
    monkeypatch.delenv(lm.ENV_MODEL, raising=False)
    monkeypatch.setenv(model_file.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setattr(model_file, "MODEL_SHA256", hashlib.sha256(whole).hexdigest())
    monkeypatch.setattr(model_file, "part_paths", lambda: parts)
    original_assemble = model_file.assemble
    monkeypatch.setattr(
        model_file,
        "assemble",
        lambda p, d, progress=None: original_assemble(
            p, d, sha256=model_file.MODEL_SHA256, size=len(whole), progress=progress
        ),
    )
    path = lm.model_path(progress=None)
    assert path.read_bytes() == whole
    path.write_bytes(b"damaged!!")
    messages = []
    assert lm.model_path(progress=messages.append).read_bytes() == whole
    assert any("assembling it again" in m for m in messages)


def test_missing_parts_name_the_install_command(monkeypatch):
    monkeypatch.setattr(
        model_file, "PART_PACKAGES", ("gepa_graph_no_such_part_1", "gepa_graph_no_such_part_2")
    )
    with pytest.raises(lm.LocalModelError, match=r'pip install "\.\[local\]"'):
        model_file.part_paths()
