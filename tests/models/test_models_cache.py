"""Atomic, locked, checksummed conversion cache (flare_xlt.models.cache)."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from flare_xlt.models import cache

PACKAGES = {"some-weights-package": "1.0.0"}


class Converter:
    """A stand-in conversion: writes weights + config, counting its runs."""

    def __init__(self, payload: bytes = b"weights", delay: float = 0.0) -> None:
        self.payload, self.delay, self.runs = payload, delay, 0

    def __call__(self, out_dir: Path) -> None:
        self.runs += 1
        time.sleep(self.delay)
        (out_dir / "model.safetensors").write_bytes(self.payload)
        (out_dir / "sub").mkdir()
        (out_dir / "sub" / "config.json").write_text("{}")


def _crash_midway(out_dir: Path) -> None:
    (out_dir / "model.safetensors").write_bytes(b"half")
    raise RuntimeError("killed mid-conversion")


def _hard_crash(target: Path) -> None:
    def build(out_dir: Path) -> None:
        (out_dir / "model.safetensors").write_bytes(b"half")
        os._exit(3)  # no cleanup handlers run, as with SIGKILL or a power cut

    cache.build_dir(target, "tiny", PACKAGES, build)


def _leftovers(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}."))


def test_build_once_then_reuse(tmp_path):
    target, convert = tmp_path / "models" / "tiny", Converter()
    assert cache.check_dir(target, "tiny", PACKAGES) == "not prepared"
    assert cache.build_dir(target, "tiny", PACKAGES, convert) == target
    assert cache.build_dir(target, "tiny", PACKAGES, convert, full_check=False) == target
    assert cache.build_dir(target, "tiny", PACKAGES, convert, full_check=True) == target
    assert convert.runs == 1
    manifest = cache.read_manifest(target)
    assert manifest.builtin == "tiny"
    assert manifest.packages == PACKAGES
    assert manifest.created[:2] == "20"
    assert set(manifest.files) == {"model.safetensors", "sub/config.json"}
    weights = manifest.files["model.safetensors"]
    assert weights.size == 7
    assert weights.sha256 == cache.sha256_file(target / "model.safetensors")
    assert _leftovers(target) == [".tiny.lock"]


def test_failed_conversion_leaves_nothing_loadable(tmp_path):
    target = tmp_path / "tiny"
    with pytest.raises(RuntimeError, match="killed"):
        cache.build_dir(target, "tiny", PACKAGES, _crash_midway)
    assert not target.exists()
    assert _leftovers(target) == [".tiny.lock"]
    convert = Converter()
    cache.build_dir(target, "tiny", PACKAGES, convert)
    assert convert.runs == 1
    assert cache.check_dir(target, "tiny", PACKAGES, full=True) is None


def test_killed_process_leaves_a_temp_dir_that_is_ignored_and_cleaned(tmp_path):
    target = tmp_path / "tiny"
    child = multiprocessing.get_context("fork").Process(target=_hard_crash, args=(target,))
    child.start()
    child.join(30)
    assert child.exitcode == 3
    assert not target.exists()
    (stale,) = [name for name in _leftovers(target) if ".tmp-" in name]
    assert (target.parent / stale / "model.safetensors").read_bytes() == b"half"
    assert cache.check_dir(target, "tiny", PACKAGES) == "not prepared"
    cache.build_dir(target, "tiny", PACKAGES, Converter())
    assert _leftovers(target) == [".tiny.lock"]
    assert (target / "model.safetensors").read_bytes() == b"weights"


@pytest.mark.parametrize("damage", ["package_version", "no_manifest", "wrong_size", "other_name"])
def test_damaged_or_stale_cache_is_rebuilt(tmp_path, damage):
    target, convert = tmp_path / "tiny", Converter()
    cache.build_dir(target, "tiny", PACKAGES, convert)
    packages, name = PACKAGES, "tiny"
    if damage == "package_version":
        packages = {"some-weights-package": "1.0.1"}
    elif damage == "no_manifest":
        (target / cache.MANIFEST_NAME).unlink()
    elif damage == "wrong_size":
        (target / "model.safetensors").write_bytes(b"truncated")
    else:
        cache.write_manifest(target, "other", PACKAGES)
    assert cache.check_dir(target, name, packages) is not None
    cache.build_dir(target, name, packages, convert, full_check=False)
    assert convert.runs == 2
    assert cache.check_dir(target, name, packages, full=True) is None


def test_sha256_is_checked_by_the_full_check_only(tmp_path):
    target, convert = tmp_path / "tiny", Converter()
    cache.build_dir(target, "tiny", PACKAGES, convert)
    (target / "model.safetensors").write_bytes(b"WEIGHTS")  # same size, other bytes
    assert cache.check_dir(target, "tiny", PACKAGES) is None
    assert "sha256" in cache.check_dir(target, "tiny", PACKAGES, full=True)
    cache.build_dir(target, "tiny", PACKAGES, convert, full_check=False)
    assert convert.runs == 1
    cache.build_dir(target, "tiny", PACKAGES, convert, full_check=True)
    assert convert.runs == 2
    assert (target / "model.safetensors").read_bytes() == b"weights"


def test_concurrent_builds_convert_once(tmp_path):
    target, convert = tmp_path / "tiny", Converter(delay=0.3)
    threads = [
        threading.Thread(target=cache.build_dir, args=(target, "tiny", PACKAGES, convert))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert convert.runs == 1
    assert cache.check_dir(target, "tiny", PACKAGES, full=True) is None
