"""Every transfer syntax decodes right: lossless ones pixel-exactly, lossy ones within tolerance.

Variants are made from 512 x 512 crops of real CR radiographs (pydicom-data: RG3, 10-bit
MONOCHROME1 lower leg; RG1, 15-bit MONOCHROME1 chest) with DCMTK's encoders (dcmconv,
dcmcjpeg, dcmcjpls, dcmcrle; CI installs DCMTK, so these never skip) and pydicom's encoders
(pylibjpeg-openjpeg for JPEG 2000, pyjpegls, pylibjpeg-rle), then read back through
``scorer.imaging.pixels.stored_values``.

Lossy tolerance, stated once for every lossy syntax:

- against a reference decoder (DCMTK's dcmdjpeg, i.e. the IJG library, for JPEG; GDCM's
  JPEG 2000 decoder for JPEG 2000): at most 1 stored-value step anywhere (IDCT / inverse
  wavelet rounding may differ by one; in practice the results here are identical);
- against the uncompressed original: PSNR at least :data:`MIN_PSNR_DB` for the syntax
  (peak = 2^BitsStored − 1) and, for JPEG-LS near-lossless, the codec's guarantee
  |error| <= NEAR.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from pydicom import uid

from scorer.imaging.pixels import read_dataset, stored_values

MakePath = Callable[..., Path]
Dcmtk = Callable[..., None]

REFERENCE_DECODER_MAX_DIFFERENCE = 1
MIN_PSNR_DB = {
    # measured here: 51.1, 60.7, 56.8 (RG3 crop) / 53.5 (RG1 crop), 57.8, 54.3 dB
    "JPEG baseline q90, 8-bit": 45.0,
    "JPEG extended q90, 12-bit": 55.0,
    "JPEG 2000 irreversible, 10:1": 50.0,
    "real CR, JPEG 2000 irreversible (RG3_J2KI)": 55.0,
    "real CR, JPEG 2000 irreversible (RG1_J2KI)": 52.0,
}


def psnr(decoded: npt.NDArray[Any], original: npt.NDArray[Any], bits: int) -> float:
    """Peak signal-to-noise ratio in dB of ``decoded`` against ``original``, peak 2^bits − 1."""
    mse = float(np.mean((decoded.astype(np.float64) - original.astype(np.float64)) ** 2))
    peak = float((1 << bits) - 1)
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def max_difference(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> int:
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


@pytest.fixture(scope="module")
def sources(
    rg3_values: npt.NDArray[np.uint16], rg1_values: npt.NDArray[np.uint16]
) -> dict[str, tuple[npt.NDArray[Any], int, str]]:
    """Crops to encode: name → (stored values, Bits Stored, photometric interpretation)."""
    rng = np.random.default_rng(7)
    signed = (rg3_values[200:712, 400:912].astype(np.int32) * 4 - 2048).astype(np.int16)
    signed[::37, ::41] = rng.integers(-2048, 2047, size=signed[::37, ::41].shape)
    return {
        "rg3-10bit": (rg3_values[200:712, 400:912].copy(), 10, "MONOCHROME1"),
        "rg1-15bit": (rg1_values[900:1412, 700:1212].copy(), 15, "MONOCHROME1"),
        "signed-12bit": (signed, 12, "MONOCHROME2"),
    }


def _source_file(
    write_dataset: MakePath, sources: dict[str, tuple[npt.NDArray[Any], int, str]], name: str
) -> tuple[Path, npt.NDArray[Any]]:
    values, bits, photometric = sources[name]
    return write_dataset(values, bits_stored=bits, photometric=photometric), values


DCMTK_LOSSLESS = {
    "explicit-little-endian": ("dcmconv", ("+te",), uid.ExplicitVRLittleEndian),
    "implicit-little-endian": ("dcmconv", ("+ti",), uid.ImplicitVRLittleEndian),
    "explicit-big-endian": ("dcmconv", ("+tb",), uid.ExplicitVRBigEndian),
    "deflated": ("dcmconv", ("+td",), uid.DeflatedExplicitVRLittleEndian),
    "jpeg-lossless-process-14": ("dcmcjpeg", ("+el",), uid.JPEGLossless),
    "jpeg-lossless-sv1": ("dcmcjpeg", ("+e1",), uid.JPEGLosslessSV1),
    "jpeg-ls-lossless": ("dcmcjpls", ("+el",), uid.JPEGLSLossless),
    "rle": ("dcmcrle", (), uid.RLELossless),
}
# Signed data is covered with the syntaxes that carry it most often.
SIGNED_WITH_DCMTK = ("explicit-little-endian", "explicit-big-endian", "rle", "jpeg-ls-lossless")
DCMTK_CASES = [
    (source, variant) for source in ("rg3-10bit", "rg1-15bit") for variant in DCMTK_LOSSLESS
] + [("signed-12bit", variant) for variant in SIGNED_WITH_DCMTK]


@pytest.mark.parametrize(("source", "variant"), DCMTK_CASES)
def test_lossless_dcmtk_variants_decode_exactly(
    write_dataset: MakePath,
    dcmtk: Dcmtk,
    sources: dict[str, tuple[npt.NDArray[Any], int, str]],
    tmp_path: Path,
    source: str,
    variant: str,
) -> None:
    original_path, original = _source_file(write_dataset, sources, source)
    tool, options, syntax = DCMTK_LOSSLESS[variant]
    encoded = tmp_path / f"{variant}.dcm"
    dcmtk(tool, *options, original_path, encoded)
    ds = read_dataset(encoded)
    assert ds.file_meta.TransferSyntaxUID == syntax
    decoded = stored_values(ds)
    assert decoded.dtype.kind == original.dtype.kind
    np.testing.assert_array_equal(decoded, original)


PYDICOM_LOSSLESS = {
    "jpeg-2000-lossless": (uid.JPEG2000Lossless, {}),
    "jpeg-ls-lossless-pyjpegls": (uid.JPEGLSLossless, {}),
    "rle-pylibjpeg": (uid.RLELossless, {"encoding_plugin": "pylibjpeg"}),
}


@pytest.mark.parametrize("source", ["rg3-10bit", "rg1-15bit", "signed-12bit"])
@pytest.mark.parametrize("variant", list(PYDICOM_LOSSLESS))
def test_lossless_pydicom_variants_decode_exactly(
    write_dataset: MakePath,
    sources: dict[str, tuple[npt.NDArray[Any], int, str]],
    tmp_path: Path,
    source: str,
    variant: str,
) -> None:
    original_path, original = _source_file(write_dataset, sources, source)
    syntax, options = PYDICOM_LOSSLESS[variant]
    ds = pydicom.dcmread(original_path)
    ds.compress(syntax, **options)  # type: ignore[arg-type]
    encoded = tmp_path / f"{variant}.dcm"
    ds.save_as(encoded, enforce_file_format=True)
    reread = read_dataset(encoded)
    assert reread.file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(stored_values(reread), original)


@pytest.mark.parametrize("base", ["RG3", "RG1"])
def test_real_jpeg_2000_lossless_cr_equals_its_uncompressed_original(
    testdata: Callable[[str], Path], base: str
) -> None:
    compressed = read_dataset(testdata(f"{base}_J2KR.dcm"))
    assert compressed.file_meta.TransferSyntaxUID == uid.JPEG2000Lossless
    original = stored_values(read_dataset(testdata(f"{base}_UNCR.dcm")))
    np.testing.assert_array_equal(stored_values(compressed), original)


def test_jpeg_baseline_8bit_within_tolerance(
    write_dataset: MakePath, dcmtk: Dcmtk, rg3_values: npt.NDArray[np.uint16], tmp_path: Path
) -> None:
    original = (rg3_values[200:712, 400:912] >> 2).astype(np.uint8)
    source = write_dataset(original, bits_stored=8, photometric="MONOCHROME1")
    encoded, reference = tmp_path / "baseline.dcm", tmp_path / "baseline-dcmdjpeg.dcm"
    # +sr keeps the stored values (the default +sp would shift them to start at 0).
    dcmtk("dcmcjpeg", "+eb", "+sr", "+q", "90", source, encoded)
    dcmtk("dcmdjpeg", encoded, reference)
    ds = read_dataset(encoded)
    assert ds.file_meta.TransferSyntaxUID == uid.JPEGBaseline8Bit
    assert ds.LossyImageCompression == "01"
    decoded = stored_values(ds)
    expected = stored_values(read_dataset(reference))
    assert max_difference(decoded, expected) <= REFERENCE_DECODER_MAX_DIFFERENCE
    assert psnr(decoded, original, 8) >= MIN_PSNR_DB["JPEG baseline q90, 8-bit"]


def test_jpeg_extended_12bit_within_tolerance(
    write_dataset: MakePath, dcmtk: Dcmtk, rg1_values: npt.NDArray[np.uint16], tmp_path: Path
) -> None:
    original = (rg1_values[900:1412, 700:1212] >> 3).astype(np.uint16)  # 15 → 12 bits
    source = write_dataset(original, bits_stored=12, photometric="MONOCHROME1")
    encoded, reference = tmp_path / "extended.dcm", tmp_path / "extended-dcmdjpeg.dcm"
    dcmtk("dcmcjpeg", "+ee", "+sr", "+q", "90", source, encoded)
    dcmtk("dcmdjpeg", encoded, reference)
    ds = read_dataset(encoded)
    assert ds.file_meta.TransferSyntaxUID == uid.JPEGExtended12Bit
    assert int(ds.BitsStored) == 12
    decoded = stored_values(ds)
    expected = stored_values(read_dataset(reference))
    assert max_difference(decoded, expected) <= REFERENCE_DECODER_MAX_DIFFERENCE
    assert psnr(decoded, original, 12) >= MIN_PSNR_DB["JPEG extended q90, 12-bit"]


@pytest.mark.parametrize("source", ["rg3-10bit", "rg1-15bit"])
def test_jpeg_2000_lossy_within_tolerance(
    write_dataset: MakePath,
    sources: dict[str, tuple[npt.NDArray[Any], int, str]],
    tmp_path: Path,
    source: str,
) -> None:
    original_path, original = _source_file(write_dataset, sources, source)
    bits = sources[source][1]
    ds = pydicom.dcmread(original_path)
    ds.compress(uid.JPEG2000, j2k_cr=[10])
    encoded = tmp_path / "j2k-lossy.dcm"
    ds.save_as(encoded, enforce_file_format=True)
    decoded = stored_values(read_dataset(encoded))
    for reference_plugin in ("gdcm", "pylibjpeg"):
        expected = stored_values(read_dataset(encoded), decoding_plugin=reference_plugin)
        assert max_difference(decoded, expected) <= REFERENCE_DECODER_MAX_DIFFERENCE
    assert max_difference(decoded, original) > 0  # it really is lossy
    assert psnr(decoded, original, bits) >= MIN_PSNR_DB["JPEG 2000 irreversible, 10:1"]


@pytest.mark.parametrize("base", ["RG3", "RG1"])
def test_real_jpeg_2000_lossy_cr_within_tolerance(
    testdata: Callable[[str], Path], base: str
) -> None:
    compressed = testdata(f"{base}_J2KI.dcm")
    assert read_dataset(compressed, pixels=False).file_meta.TransferSyntaxUID == uid.JPEG2000
    original = stored_values(read_dataset(testdata(f"{base}_UNCR.dcm")))
    decoded = stored_values(read_dataset(compressed))
    expected = stored_values(read_dataset(compressed), decoding_plugin="gdcm")
    assert max_difference(decoded, expected) <= REFERENCE_DECODER_MAX_DIFFERENCE
    bits = 10 if base == "RG3" else 15
    limit = MIN_PSNR_DB[f"real CR, JPEG 2000 irreversible ({base}_J2KI)"]
    assert psnr(decoded, original, bits) >= limit


@pytest.mark.parametrize("near", [2])
def test_jpeg_ls_near_lossless_keeps_its_error_bound_dcmtk(
    write_dataset: MakePath,
    dcmtk: Dcmtk,
    sources: dict[str, tuple[npt.NDArray[Any], int, str]],
    tmp_path: Path,
    near: int,
) -> None:
    original_path, original = _source_file(write_dataset, sources, "rg1-15bit")
    encoded = tmp_path / "near.dcm"
    dcmtk("dcmcjpls", "+en", "+md", str(near), original_path, encoded)
    ds = read_dataset(encoded)
    assert ds.file_meta.TransferSyntaxUID == uid.JPEGLSNearLossless
    decoded = stored_values(ds)
    assert 0 < max_difference(decoded, original) <= near


def test_jpeg_ls_near_lossless_keeps_its_error_bound_pyjpegls(
    write_dataset: MakePath, sources: dict[str, tuple[npt.NDArray[Any], int, str]], tmp_path: Path
) -> None:
    original_path, original = _source_file(write_dataset, sources, "rg3-10bit")
    ds = pydicom.dcmread(original_path)
    ds.compress(uid.JPEGLSNearLossless, jls_error=3)
    encoded = tmp_path / "near-pyjpegls.dcm"
    ds.save_as(encoded, enforce_file_format=True)
    assert max_difference(stored_values(read_dataset(encoded)), original) <= 3
