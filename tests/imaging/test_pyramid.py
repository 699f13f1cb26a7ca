"""The multi-resolution pyramid and its cache on disk (scorer.imaging.pyramid)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from scorer.imaging.pixels import ImageFormatError
from scorer.imaging.pyramid import (
    FORMAT_VERSION,
    Pyramid,
    build_pyramid,
    cached_pyramid,
    compact_values,
    file_sha256,
    halve,
    load_pyramid,
    manifest_path,
    save_pyramid,
)

KEY = "ab" * 32


def reference_halving(values: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """2 × 2 means rounded half up, computed independently: pad odd edges, reshape, sum."""
    rows, cols = values.shape
    padded = np.pad(values.astype(np.int64), ((0, rows % 2), (0, cols % 2)), mode="edge")
    blocks = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2)
    total = blocks.sum(axis=(1, 3))
    return np.floor((total + 2) / 4).astype(np.int64)


def test_halving_rounds_half_up() -> None:
    values = np.array([[0, 1, 5, 5], [1, 0, 5, 6]], dtype=np.uint16)  # means 0.5 and 5.25
    np.testing.assert_array_equal(halve(values), [[1, 5]])
    assert halve(values).dtype == np.uint16


def test_halving_repeats_an_odd_edge() -> None:
    values = np.array([[10, 20, 31], [30, 40, 50], [7, 9, 100]], dtype=np.uint8)
    # right column pairs 31 with itself; bottom row pairs 7, 9 with themselves
    np.testing.assert_array_equal(halve(values), [[25, 41], [8, 100]])


def test_halving_does_not_overflow_16_bits() -> None:
    values = np.full((4, 4), 65535, dtype=np.uint16)
    np.testing.assert_array_equal(halve(values), np.full((2, 2), 65535))


def test_pyramid_levels_match_an_independent_downsampling() -> None:
    rng = np.random.default_rng(3)
    stored = rng.integers(0, 4096, size=(1111, 777)).astype(np.uint16)
    pyramid = build_pyramid(stored)
    assert [level.shape for level in pyramid.levels] == [
        (1111, 777),
        (556, 389),
        (278, 195),
        (139, 98),
    ]
    expected: npt.NDArray[Any] = stored
    for level in pyramid.levels[1:]:
        expected = reference_halving(expected)
        np.testing.assert_array_equal(level, expected)
    assert pyramid.offset == 0 and pyramid.maximum == int(stored.max())


def test_small_images_have_a_single_level() -> None:
    pyramid = build_pyramid(np.zeros((256, 100), np.uint8))
    assert len(pyramid.levels) == 1


def test_signed_values_are_kept_compact_with_an_offset() -> None:
    stored = np.array([[-1024, 0], [3071, -5]], dtype=np.int16)
    compact, offset = compact_values(stored)
    assert offset == -1024 and compact.dtype == np.uint16
    np.testing.assert_array_equal(compact.astype(np.int64) + offset, stored)
    small, small_offset = compact_values(np.array([[-3, 100]], dtype=np.int16))
    assert small.dtype == np.uint8 and small_offset == -3


def test_values_wider_than_16_bits_are_refused() -> None:
    with pytest.raises(ImageFormatError, match="more than 16 bits"):
        compact_values(np.array([[0, 70000]], dtype=np.int32))


@pytest.mark.parametrize(
    ("zoom", "level"), [(4.0, 0), (1.0, 0), (0.99, 0), (0.5, 1), (0.4, 1), (0.25, 2), (0.01, 3)]
)
def test_level_for_zoom(zoom: float, level: int) -> None:
    pyramid = build_pyramid(np.zeros((2000, 1000), np.uint16))
    assert len(pyramid.levels) == 4
    assert pyramid.level_for_zoom(zoom) == level


def test_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_cache_keys_must_be_sha256(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        manifest_path(tmp_path, "../../etc/passwd")


def _sample() -> npt.NDArray[np.uint16]:
    rng = np.random.default_rng(5)
    values: npt.NDArray[np.uint16] = rng.integers(0, 1024, size=(600, 530)).astype(np.uint16)
    return values


def _same(a: Pyramid, b: Pyramid) -> bool:
    return (
        len(a.levels) == len(b.levels)
        and all(np.array_equal(x, y) for x, y in zip(a.levels, b.levels, strict=True))
        and (a.offset, a.maximum) == (b.offset, b.maximum)
    )


def test_cache_round_trip_is_memory_mapped(tmp_path: Path) -> None:
    built = build_pyramid(_sample())
    save_pyramid(built, tmp_path, KEY)
    loaded = load_pyramid(tmp_path, KEY, verify=True)
    assert loaded is not None and _same(built, loaded)
    assert all(isinstance(level, np.memmap) for level in loaded.levels)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        [f"{KEY}.v{FORMAT_VERSION}.json"]
        + [f"{KEY}.v{FORMAT_VERSION}.level{k}.npy" for k in range(len(built.levels))]
    )  # nothing temporary left behind


class Decoder:
    """Counts how often the cache had to decode the image."""

    def __init__(self, values: npt.NDArray[Any]) -> None:
        self.values = values
        self.calls = 0

    def __call__(self) -> npt.NDArray[Any]:
        self.calls += 1
        return self.values


def test_cached_pyramid_builds_once(tmp_path: Path) -> None:
    decode = Decoder(_sample())
    first = cached_pyramid(tmp_path, KEY, decode)
    second = cached_pyramid(tmp_path, KEY, decode)
    assert decode.calls == 1
    assert _same(first, second) and _same(first, build_pyramid(decode.values))


def test_missing_cache_is_none(tmp_path: Path) -> None:
    assert load_pyramid(tmp_path, KEY) is None
    assert load_pyramid(tmp_path / "nowhere", KEY) is None


def _damage_truncate(directory: Path) -> None:
    level = directory / f"{KEY}.v{FORMAT_VERSION}.level1.npy"
    level.write_bytes(level.read_bytes()[:-100])


def _damage_manifest(directory: Path) -> None:
    (directory / f"{KEY}.v{FORMAT_VERSION}.json").write_text("{not json")


def _damage_shape(directory: Path) -> None:
    np.save(directory / f"{KEY}.v{FORMAT_VERSION}.level2.npy", np.zeros((3, 3), np.uint16))


def _damage_dtype(directory: Path) -> None:
    manifest = directory / f"{KEY}.v{FORMAT_VERSION}.json"
    document = json.loads(manifest.read_text())
    np.save(directory / document["levels"][0]["file"], np.zeros((600, 530), np.float32))


def _damage_version(directory: Path) -> None:
    manifest = directory / f"{KEY}.v{FORMAT_VERSION}.json"
    document = json.loads(manifest.read_text())
    document["version"] = FORMAT_VERSION + 1
    manifest.write_text(json.dumps(document))


def _damage_missing_level(directory: Path) -> None:
    (directory / f"{KEY}.v{FORMAT_VERSION}.level0.npy").unlink()


def _damage_pickle(directory: Path) -> None:
    np.save(directory / f"{KEY}.v{FORMAT_VERSION}.level0.npy", np.array([{"a": 1}], dtype=object))


@pytest.mark.parametrize(
    "damage",
    [
        _damage_truncate,
        _damage_manifest,
        _damage_shape,
        _damage_dtype,
        _damage_version,
        _damage_missing_level,
        _damage_pickle,
    ],
)
def test_stale_or_corrupt_cache_is_rebuilt(tmp_path: Path, damage: Any) -> None:
    decode = Decoder(_sample())
    cached_pyramid(tmp_path, KEY, decode)
    damage(tmp_path)
    assert load_pyramid(tmp_path, KEY) is None
    rebuilt = cached_pyramid(tmp_path, KEY, decode)
    assert decode.calls == 2
    assert _same(rebuilt, build_pyramid(decode.values))
    assert load_pyramid(tmp_path, KEY, verify=True) is not None


def test_verify_catches_a_flipped_byte(tmp_path: Path) -> None:
    save_pyramid(build_pyramid(_sample()), tmp_path, KEY)
    level = tmp_path / f"{KEY}.v{FORMAT_VERSION}.level0.npy"
    data = bytearray(level.read_bytes())
    data[-7] ^= 0x01
    level.write_bytes(bytes(data))
    assert load_pyramid(tmp_path, KEY) is not None  # same size and header: only a checksum sees it
    assert load_pyramid(tmp_path, KEY, verify=True) is None


def test_other_versions_of_the_same_image_are_removed(tmp_path: Path) -> None:
    old = tmp_path / f"{KEY}.v0.level0.npy"
    old.write_bytes(b"old")
    other_image = tmp_path / f"{'cd' * 32}.v0.json"
    other_image.write_text("{}")
    save_pyramid(build_pyramid(_sample()), tmp_path, KEY)
    assert not old.exists()
    assert other_image.exists()


def test_a_changed_source_has_its_own_cache(tmp_path: Path) -> None:
    first, second = tmp_path / "a.dcm", tmp_path / "b.dcm"
    first.write_bytes(b"one image")
    second.write_bytes(b"another image")
    decode_a, decode_b = Decoder(np.zeros((4, 4), np.uint16)), Decoder(np.ones((4, 4), np.uint16))
    a = cached_pyramid(tmp_path, file_sha256(first), decode_a)
    b = cached_pyramid(tmp_path, file_sha256(second), decode_b)
    assert (decode_a.calls, decode_b.calls) == (1, 1)
    assert int(a.levels[0].max()) == 0 and int(b.levels[0].max()) == 1
