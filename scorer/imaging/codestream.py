"""Removing text from compressed pixel data: a marker-level rewrite of each frame's codestream.

A JPEG, JPEG-LS or JPEG 2000 codestream may carry text the decoder never needs — comment
segments (JPEG and JPEG-LS COM 0xFFFE, JPEG 2000 COM 0xFF64), application segments (APP0 to
APP15: JFIF, Exif, vendor blocks) and bytes after the end-of-image marker — where a scanner or
a hostile file can put a patient's name. The rewrite walks the markers, drops those segments
and copies every other segment and all entropy-coded data byte for byte, so the image decodes
to the same pixels (the importer checks that by decoding again).

What is kept: every marker segment a decoder reads (SOF, DHT, DQT, DRI, DNL, DAC, SOS, the
JPEG-LS preset parameters LSE 0xFFF8; JPEG 2000's SIZ, COD, COC, QCD, QCC, RGN, POC, PPM, PLM,
CRG and each tile-part's header but its COMs). No APPn segment is needed: the importer takes
greyscale images only, where JFIF and Adobe (APP14) colour-transform flags have no meaning.
JPEG 2000's TLM (tile-part lengths, an optional index) is dropped when a tile-part's length
changes. A JP2 file wrapped around a JPEG 2000 codestream is replaced by the codestream alone
(DICOM stores the bare codestream; the wrapper's boxes can hold XML and UUID text).
RLE has no place for text and is left as it is; native pixel data has no markers.
"""

from __future__ import annotations

import struct

from pydicom import uid
from pydicom.encaps import encapsulate, generate_frames

JPEG_SYNTAXES = frozenset(
    {uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLossless, uid.JPEGLosslessSV1}
)
JPEG_LS_SYNTAXES = frozenset({uid.JPEGLSLossless, uid.JPEGLSNearLossless})
JPEG_2000_SYNTAXES = frozenset({uid.JPEG2000Lossless, uid.JPEG2000})

_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RST0-RST7: no length
_RST = frozenset(range(0xD0, 0xD8))


class CodestreamError(ValueError):
    """A frame whose markers cannot be walked; the file is refused rather than copied."""


def _is_text_segment(marker: int) -> bool:
    """JPEG / JPEG-LS segments that can hold text and that no greyscale decoder needs."""
    return marker == 0xFE or 0xE0 <= marker <= 0xEF


def _scan_end(data: bytes, pos: int, jpeg_ls: bool) -> int:
    """Where the entropy-coded data that starts at ``pos`` ends: at the next marker.

    JPEG stuffs a zero after a data byte 0xFF, so a marker is 0xFF followed by anything but
    0x00 or a restart marker; JPEG-LS stuffs a zero bit, so a marker is 0xFF followed by a
    byte with its high bit set (restart markers stay inside the scan in both)."""
    while True:
        k = data.find(b"\xff", pos)
        if k < 0 or k + 1 >= len(data):
            raise CodestreamError("the entropy-coded data runs to the end without a marker")
        nxt = data[k + 1]
        if nxt in _RST or (nxt < 0x80 if jpeg_ls else nxt == 0x00):
            pos = k + 2
            continue
        return k


def clean_jpeg(frame: bytes) -> bytes:
    """A JPEG or JPEG-LS frame without COM and APPn segments and without bytes after EOI;
    every other segment and the entropy-coded data unchanged."""
    return _walk_jpeg(frame)[0]


def _walk_jpeg(frame: bytes) -> tuple[bytes, int]:
    """The cleaned JPEG / JPEG-LS codestream at the start of ``frame`` and where it ends
    (just after its EOI)."""
    if frame[:2] != b"\xff\xd8":
        raise CodestreamError("a JPEG frame does not start with the SOI marker")
    out = bytearray(b"\xff\xd8")
    i, n, jpeg_ls = 2, len(frame), False
    while True:
        if i >= n or frame[i] != 0xFF:
            raise CodestreamError(f"a JPEG frame has no marker where one belongs (byte {i})")
        start = i
        while i < n and frame[i] == 0xFF:  # fill bytes before a marker, kept with it
            i += 1
        if i >= n:
            raise CodestreamError("a JPEG frame ends inside a marker")
        marker = frame[i]
        i += 1
        if marker == 0xD9:  # EOI: whatever follows is not part of the image
            out += frame[start:i]
            return bytes(out), i
        if marker in _STANDALONE:
            out += frame[start:i]
            continue
        if marker in (0x00, 0xD8):
            raise CodestreamError(f"a JPEG frame has a misplaced marker 0xFF{marker:02X}")
        if i + 2 > n:
            raise CodestreamError("a JPEG frame ends inside a segment length")
        length = int.from_bytes(frame[i : i + 2], "big")
        if length < 2 or i + length > n:
            raise CodestreamError(f"a JPEG segment 0xFF{marker:02X} is longer than the frame")
        if marker == 0xF7:  # SOF55: JPEG-LS
            jpeg_ls = True
        if not _is_text_segment(marker):
            out += frame[start : i + length]
        i += length
        if marker == 0xDA:  # SOS: the entropy-coded data follows, copied as it is
            end = _scan_end(frame, i, jpeg_ls)
            out += frame[i:end]
            i = end


def _jp2_codestream(data: bytes) -> bytes:
    """The contiguous codestream box ('jp2c') of a JP2 file."""
    i = 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        head = 8
        if size == 1:
            if i + 16 > len(data):
                break
            size, head = struct.unpack(">Q", data[i + 8 : i + 16])[0], 16
        elif size == 0:
            size = len(data) - i
        if size < head or i + size > len(data):
            break
        if kind == b"jp2c":
            return data[i + head : i + size]
        i += size
    raise CodestreamError("a JP2 file holds no readable codestream box")


def _j2k_segment(data: bytes, i: int) -> tuple[int, int]:
    """The marker at ``i`` and the end of its segment."""
    if i + 4 > len(data) or data[i] != 0xFF:
        raise CodestreamError(f"a JPEG 2000 codestream has no marker where one belongs (byte {i})")
    marker = int.from_bytes(data[i : i + 2], "big")
    length = int.from_bytes(data[i + 2 : i + 4], "big")
    if length < 2 or i + 2 + length > len(data):
        raise CodestreamError(f"a JPEG 2000 segment 0x{marker:04X} is longer than the codestream")
    return marker, i + 2 + length


def clean_j2k(frame: bytes) -> bytes:
    """A JPEG 2000 codestream without COM segments (main and tile-part headers, each tile-part's
    Psot adjusted) and without bytes after EOC; tile data unchanged."""
    if frame[4:12] == b"jP  \r\n\x87\n":
        frame = _jp2_codestream(frame)
    return _walk_j2k(frame)[0]


def _walk_j2k(frame: bytes) -> tuple[bytes, int]:
    """The cleaned JPEG 2000 codestream at the start of ``frame`` and where it ends (just
    after its EOC, or after its last tile-part when it has none)."""
    if frame[:2] != b"\xff\x4f":
        raise CodestreamError("a JPEG 2000 frame does not start with the SOC marker")
    main: list[tuple[int, bytes]] = []
    i, n = 2, len(frame)
    while frame[i : i + 2] != b"\xff\x90":
        marker, end = _j2k_segment(frame, i)
        if marker != 0xFF64:
            main.append((marker, frame[i:end]))
        i = end
    tiles = bytearray()
    resized = False
    while frame[i : i + 2] == b"\xff\x90":  # SOT: a tile-part
        marker, header_end = _j2k_segment(frame, i)
        if header_end - i != 12:
            raise CodestreamError("a JPEG 2000 SOT segment is not 10 bytes long")
        isot, psot, tpsot, tnsot = struct.unpack(">HIBB", frame[i + 4 : i + 12])
        if psot:
            end = i + psot
        else:  # the last tile-part runs to EOC: the first one, as no tile data holds 0xFFD9
            # (bytes after it, another codestream among them, are not this image's)
            eoc = frame.find(b"\xff\xd9", header_end)
            end = eoc if eoc > i else n
        if end > n or end < header_end + 2:
            raise CodestreamError("a JPEG 2000 tile-part is longer than the codestream")
        kept = bytearray()
        j = header_end
        while frame[j : j + 2] != b"\xff\x93":  # up to SOD
            marker, seg_end = _j2k_segment(frame, j)
            if seg_end > end:
                raise CodestreamError("a JPEG 2000 tile-part header runs past its tile-part")
            if marker != 0xFF64:
                kept += frame[j:seg_end]
            j = seg_end
        body = frame[j:end]  # SOD and the tile data, as they are
        new_psot = (12 + len(kept) + len(body)) if psot else 0
        resized |= new_psot != psot
        tiles += b"\xff\x90\x00\x0a" + struct.pack(">HIBB", isot, new_psot, tpsot, tnsot)
        tiles += kept + body
        i = end
    out = bytearray(b"\xff\x4f")
    for marker, segment in main:
        if not (resized and marker == 0xFF55):  # TLM would give the old lengths
            out += segment
    out += tiles
    if frame[i : i + 2] == b"\xff\xd9":
        out += b"\xff\xd9"
        i += 2
    elif i < n:
        raise CodestreamError(f"a JPEG 2000 codestream has unexpected bytes at {i}")
    return bytes(out), i


def count_codestreams(data: bytes, syntax: str) -> int:
    """How many JPEG, JPEG-LS or JPEG 2000 codestreams ``data`` (a frame's fragments joined)
    holds: the first walked marker by marker to its end marker, then every later start marker
    (SOI 0xFFD8; SOC and SIZ 0xFF4F 0xFF51) counted as another image. 1 when the first cannot
    be walked (the decoder and the cleaner say what is wrong); 0 for other syntaxes."""
    if syntax in JPEG_SYNTAXES or syntax in JPEG_LS_SYNTAXES:
        start, walk = b"\xff\xd8", _walk_jpeg
    elif syntax in JPEG_2000_SYNTAXES:
        start, walk = b"\xff\x4f\xff\x51", _walk_j2k
        if data[4:12] == b"jP  \r\n\x87\n":
            try:
                data = _jp2_codestream(data)
            except CodestreamError:
                return 1
    else:
        return 0
    try:
        end = walk(data)[1]
    except (CodestreamError, IndexError, struct.error):
        return 1
    count = 1
    while True:
        at = data.find(start, end)
        if at < 0:
            return count
        count += 1
        try:
            end = at + walk(data[at:])[1]
        except (CodestreamError, IndexError, struct.error):
            end = at + len(start)


def clean_frame(frame: bytes, syntax: str) -> bytes:
    """One frame's codestream without its text-holding segments (unchanged for RLE)."""
    if syntax in JPEG_SYNTAXES or syntax in JPEG_LS_SYNTAXES:
        return clean_jpeg(frame)
    if syntax in JPEG_2000_SYNTAXES:
        return clean_j2k(frame)
    return frame


def clean_pixel_data(value: bytes, syntax: str, frames: int) -> bytes:
    """Encapsulated pixel data with every frame cleaned; ``value`` itself when nothing was
    removed (and for native pixel data or RLE). The Basic Offset Table is rebuilt when the
    original had one; each frame becomes one fragment."""
    if syntax not in JPEG_SYNTAXES | JPEG_LS_SYNTAXES | JPEG_2000_SYNTAXES:
        return value
    try:
        originals = list(generate_frames(value, number_of_frames=max(1, frames)))
    except Exception as exc:  # pydicom raises several kinds for broken encapsulation
        raise CodestreamError(f"the encapsulated frames cannot be split: {exc}") from None
    cleaned = [clean_frame(f, syntax) for f in originals]
    # A frame padded to an even length with a zero after EOI / EOC has lost nothing.
    unchanged = all(
        f[: len(c)] == c and not f[len(c) :].strip(b"\x00")
        for f, c in zip(originals, cleaned, strict=True)
    )
    if unchanged:
        return value
    has_bot = len(value) >= 8 and int.from_bytes(value[4:8], "little") > 0
    return encapsulate(cleaned, has_bot=has_bot)
