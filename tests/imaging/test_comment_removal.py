"""Text in the compressed stream is cut at the marker level, and the pixels stay the same.

For every compressed syntax the importer takes, a 64 x 64 image is encoded by a real encoder
(DCMTK's dcmcjpeg, pyjpegls, OpenJPEG, pylibjpeg-rle), text is planted in each frame's COM and
APPn segments (JPEG 2000: COM in the main and a tile-part header) and after the end marker,
and :func:`scorer.imaging.codestream.clean_pixel_data` removes it: the text is gone, no
comment or application segment is left, the entropy-coded data is byte-identical, and the
frame decodes to exactly the pixels it decoded to before.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.encaps import encapsulate, generate_frames

from scorer.imaging.codestream import CodestreamError, clean_frame, clean_pixel_data
from scorer.imaging.deidentify import deidentify
from scorer.imaging.pixels import stored_values
from tests.intake.codestreams import COMPRESSED, encode, plant_in_pixel_data, sample_image

TEXTS = [b"PATIENT DOE^JANE MRN 4711", "DR. M\xdcLLER, ST. ANNA".encode("latin-1")]
TAIL = b"AFTER-END DOE^JANE"
J2K = (uid.JPEG2000, uid.JPEG2000Lossless)


def _header_markers(frame: bytes, syntax: str) -> list[int]:
    """The markers of the headers before the image data (an independent little walk): JPEG
    up to the first SOS, JPEG 2000 the main header and the first tile-part's up to SOD."""
    markers, i = [], 2
    stop = (0xFF93,) if syntax in J2K else (0xFFDA,)
    while True:
        marker = int.from_bytes(frame[i : i + 2], "big")
        markers.append(marker)
        if marker in stop:
            return markers
        i += 12 if marker == 0xFF90 else 2 + int.from_bytes(frame[i + 2 : i + 4], "big")


def _image_data(frame: bytes, syntax: str) -> bytes:
    """From the first SOS (JPEG) or SOD (JPEG 2000) to the end marker: the coded image."""
    start = frame.index(b"\xff\x93" if syntax in J2K else b"\xff\xda")
    return frame[start : frame.rindex(b"\xff\xd9") + 2]


@pytest.mark.parametrize("name", list(COMPRESSED))
def test_every_compressed_syntax_loses_its_text_and_keeps_every_pixel(name: str) -> None:
    syntax, bits = COMPRESSED[name]
    ds = encode(sample_image(bits=bits, seed=5), syntax, bits)
    reference = stored_values(ds)
    original_frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    plant_in_pixel_data(ds, TEXTS, TAIL)
    planted = ds.PixelData
    before = stored_values(ds)
    np.testing.assert_array_equal(before, reference)  # the decoders skip the planted text

    cleaned = clean_pixel_data(planted, syntax, 1)
    ds.PixelData = cleaned
    after = stored_values(ds)
    np.testing.assert_array_equal(after, before)  # every pixel

    if syntax == uid.RLELossless:
        assert cleaned is planted  # nowhere to hide text: left as it is
        return
    for text in (*TEXTS, TAIL):
        assert text in planted and text not in cleaned, (name, text)
    frame = next(generate_frames(cleaned, number_of_frames=1))
    markers = _header_markers(frame, syntax)
    if syntax in J2K:
        assert 0xFF64 not in markers
    else:
        assert 0xFFFE not in markers and not any(0xFFE0 <= m <= 0xFFEF for m in markers)
    # The coded image is byte for byte the encoder's.
    assert _image_data(frame, syntax) == _image_data(original_frame, syntax)
    assert frame.rstrip(b"\0").endswith(b"\xff\xd9")  # (and the even-length padding)


@pytest.mark.parametrize("name", ["jpeg-lossless-sv1", "jpeg-ls-lossless", "j2k-lossless"])
def test_multi_frame_pixel_data_is_cleaned_frame_by_frame_with_its_offset_table(
    name: str,
) -> None:
    syntax, bits = COMPRESSED[name]
    frames = [
        next(generate_frames(encode(sample_image(bits=bits, seed=s), syntax, bits).PixelData))
        for s in (1, 2, 3)
    ]
    ds = encode(sample_image(bits=bits, seed=1), syntax, bits)
    ds.NumberOfFrames = 3
    ds.PixelData = encapsulate(frames, has_bot=True)
    plant_in_pixel_data(ds, TEXTS)
    cleaned = clean_pixel_data(ds.PixelData, syntax, 3)
    assert TEXTS[0] in ds.PixelData and TEXTS[0] not in cleaned
    offsets = np.frombuffer(cleaned[8 : 8 + int.from_bytes(cleaned[4:8], "little")], "<u4")
    assert len(offsets) == 3 and offsets[0] == 0  # a Basic Offset Table, as the original had
    for k, frame in enumerate(generate_frames(cleaned, number_of_frames=3)):
        one = encode(sample_image(bits=bits, seed=k + 1), syntax, bits)
        expected = stored_values(one)
        one.PixelData = encapsulate([frame], has_bot=False)
        np.testing.assert_array_equal(stored_values(one), expected)


def test_a_jp2_file_in_the_pixel_data_becomes_its_bare_codestream() -> None:
    syntax, bits = COMPRESSED["j2k-lossless"]
    ds = encode(sample_image(bits=bits, seed=9), syntax, bits)
    expected = stored_values(ds)
    codestream = next(generate_frames(ds.PixelData, number_of_frames=1))

    def box(kind: bytes, payload: bytes) -> bytes:
        return (8 + len(payload)).to_bytes(4, "big") + kind + payload

    jp2 = (
        box(b"jP  ", b"\r\n\x87\n")
        + box(b"ftyp", b"jp2 \0\0\0\0jp2 ")
        + box(b"xml ", b"<patient>DOE^JANE</patient>")
        + box(b"jp2c", codestream)
    )
    cleaned = clean_frame(jp2, syntax)
    assert cleaned.startswith(b"\xff\x4f") and b"DOE" not in cleaned
    ds.PixelData = encapsulate([cleaned], has_bot=False)
    np.testing.assert_array_equal(stored_values(ds), expected)


def test_a_stream_without_text_is_kept_as_it_is_and_a_broken_one_refused() -> None:
    syntax, bits = COMPRESSED["jpeg-ls-lossless"]
    ds = encode(sample_image(bits=bits), syntax, bits)  # pyjpegls writes no COM or APPn
    assert clean_pixel_data(ds.PixelData, syntax, 1) is ds.PixelData
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    with pytest.raises(CodestreamError, match="marker"):
        clean_frame(frame[:40], syntax)  # cut inside the scan
    with pytest.raises(CodestreamError, match="SOI"):
        clean_frame(b"\x00" + frame, syntax)


def test_the_readers_copy_carries_the_cleaned_stream(tmp_path: object) -> None:
    syntax, bits = COMPRESSED["j2k"]
    ds = encode(sample_image(bits=bits, seed=4), syntax, bits)
    ds.StudyInstanceUID = uid.generate_uid()
    ds.SeriesInstanceUID = uid.generate_uid()
    plant_in_pixel_data(ds, TEXTS, TAIL)
    before = stored_values(ds)
    copy = deidentify(ds, b"k" * 32)
    assert copy.file_meta.TransferSyntaxUID == syntax
    assert TEXTS[0] not in copy.PixelData and TAIL not in copy.PixelData
    np.testing.assert_array_equal(stored_values(copy), before)
    assert isinstance(copy, pydicom.Dataset)


@pytest.mark.parametrize("name", ["jpeg-lossless-sv1", "jpeg-ls-lossless", "j2k-lossless", "j2k"])
def test_a_second_codestream_after_the_first_is_counted_and_never_kept(name: str) -> None:
    """A second image appended after the first one's end marker (the last JPEG 2000 tile-part
    running to EOC, Psot 0, included) is counted as a second frame, and the cleaned frame
    ends at the first image's end marker: the second never rides along."""
    from scorer.imaging.codestream import count_codestreams

    syntax, bits = COMPRESSED[name]
    first = encode(sample_image(bits=bits, seed=11), syntax, bits)
    frame = next(generate_frames(first.PixelData, number_of_frames=1))
    other = encode(sample_image(80, 72, bits=bits, seed=12), syntax, bits)
    hidden = next(generate_frames(other.PixelData, number_of_frames=1))
    if syntax in J2K:  # the last tile-part "runs to EOC"
        sot = frame.index(b"\xff\x90")
        frame = frame[: sot + 6] + b"\0\0\0\0" + frame[sot + 10 :]
    frame = frame.rstrip(b"\0")  # a codec's even-length padding
    assert count_codestreams(frame, syntax) == 1
    assert count_codestreams(frame + hidden, syntax) == 2
    assert count_codestreams(frame + b"JUNK" + hidden + hidden, syntax) == 3
    cleaned = clean_frame(frame + hidden, syntax)
    assert cleaned == clean_frame(frame, syntax) and hidden not in cleaned
    assert count_codestreams(frame, uid.RLELossless) == 0
