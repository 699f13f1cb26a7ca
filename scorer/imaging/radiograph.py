"""A radiograph ready to display: its pixel pyramid and everything the header says about showing it.

:func:`open_radiograph` reads a DICOM file (pyramid from the cache when one is given) and
:func:`radiograph_from_dataset` takes a dataset already in memory (e.g. a scanned film made
into a Secondary Capture dataset). The renderer (``render``) draws a :class:`Radiograph`.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset

from scorer.imaging.pixels import (
    ModalityTransform,
    PaddingRange,
    Polarity,
    bone_bright_polarity,
    modality_transform,
    padding_range,
    read_dataset,
    stored_values,
)
from scorer.imaging.pyramid import Pyramid, build_pyramid, cached_pyramid, file_sha256
from scorer.imaging.spacing import Spacing, pixel_spacing
from scorer.imaging.windowing import (
    Preset,
    VoiTransform,
    Window,
    automatic_window,
    display_lut,
    header_presets,
)


@dataclass(frozen=True, eq=False)
class Radiograph:
    """A radiograph's pixel pyramid with its modality transform, polarity, presets and spacing.

    ``presets`` are the header's; ``automatic`` is the percentile window used when the header
    has none. ``default_preset`` is what a reader sees first. ``patient_orientation`` is the
    header's Patient Orientation (0020,0020), upper case, () when absent: the patient
    directions of the rows (increasing column) and the columns (increasing row), e.g.
    ``("L", "F")``; ``laterality`` is Image Laterality (0020,0062) (else Laterality), "" when
    absent. The readers' copy keeps both (de-identification's keep-list).
    """

    pyramid: Pyramid
    modality: ModalityTransform
    polarity: Polarity
    presets: tuple[Preset, ...]
    automatic: Preset
    spacing: Spacing | None
    padding: PaddingRange | None = None
    patient_orientation: tuple[str, ...] = ()
    laterality: str = ""
    _last_lut: list[tuple[VoiTransform, bool, npt.NDArray[np.uint8]]] = field(
        default_factory=list, init=False, repr=False
    )

    @property
    def shape(self) -> tuple[int, int]:
        """Rows and columns at full resolution."""
        return self.pyramid.shape

    def value_at(self, row: int, col: int) -> float:
        """The modality value of a full-resolution pixel (for a cursor read-out)."""
        stored = int(self.pyramid.levels[0][row, col]) + self.pyramid.offset
        return float(self.modality.apply(stored))

    @property
    def default_preset(self) -> Preset:
        """The first header preset, else the automatic window."""
        return self.presets[0] if self.presets else self.automatic

    def display_lut(
        self, voi: VoiTransform | None = None, *, invert: bool = False
    ) -> npt.NDArray[np.uint8]:
        """The table from compact pyramid values to display pixels, bone bright.

        ``voi`` None means the default preset; ``invert`` is the reader's own inversion on top
        of the polarity the header asks for. The last table built is kept, so redrawing with
        an unchanged window (pan, zoom) does not rebuild it.
        """
        chosen = self.default_preset.voi if voi is None else voi
        flip = self.polarity.invert != invert
        for cached_voi, cached_flip, cached_lut in self._last_lut:
            same = cached_voi is chosen or (isinstance(chosen, Window) and cached_voi == chosen)
            if same and cached_flip == flip:
                return cached_lut
        lut = display_lut(
            self.modality,
            chosen,
            invert=flip,
            first_stored=self.pyramid.offset,
            count=self.pyramid.maximum + 1,
        )
        self._last_lut[:] = [(chosen, flip, lut)]
        return lut


def radiograph_from_dataset(
    ds: Dataset,
    *,
    pyramid: Pyramid | None = None,
) -> Radiograph:
    """A :class:`Radiograph` of a dataset; its pixels are decoded unless ``pyramid`` is given."""
    modality = modality_transform(ds)
    polarity = bone_bright_polarity(ds)
    if pyramid is None:
        pyramid = build_pyramid(stored_values(ds))
    padding = padding_range(ds)
    automatic = Preset(
        "Automatic (0.5-99.5 percentiles)",
        automatic_window(_stored_sample(pyramid), modality, padding=padding),
        "automatic",
    )
    return Radiograph(
        pyramid=pyramid,
        modality=modality,
        polarity=polarity,
        presets=header_presets(ds),
        automatic=automatic,
        spacing=pixel_spacing(ds),
        padding=padding,
        patient_orientation=patient_orientation(ds),
        laterality=str(ds.get("ImageLaterality") or ds.get("Laterality") or "").strip().upper(),
    )


def radiograph_from_bytes(data: bytes) -> Radiograph:
    """A :class:`Radiograph` of a DICOM file's bytes (a film fetched into memory, as the desk's
    viewer gets the readers' copy from the images service). Raises ``ImageFormatError`` for
    bytes that cannot be shown."""
    return radiograph_from_dataset(read_dataset(io.BytesIO(data)))


def patient_orientation(ds: Dataset) -> tuple[str, ...]:
    """Patient Orientation (0020,0020) in upper case: two directions such as ("L", "F"), or
    () when the header is silent or the value is not two directions."""
    value = ds.get("PatientOrientation")
    if value is None or value == "":
        return ()
    values = [value] if isinstance(value, str) else list(value)
    out = tuple(str(v).strip().upper() for v in values)
    return out if len(out) == 2 and all(out) else ()


def patient_left_vector(orientation: tuple[str, ...]) -> tuple[int, int]:
    """Which way the patient's left lies on the stored image, as (x, y) signs: x for
    increasing columns, y for increasing rows (+1 towards the patient's left, -1 towards the
    right, 0 when that axis says neither). () gives (0, 0): the header is silent."""

    def sign(direction: str) -> int:
        return (1 if "L" in direction else 0) - (1 if "R" in direction else 0)

    if len(orientation) != 2:
        return 0, 0
    return sign(orientation[0]), sign(orientation[1])


def _stored_sample(pyramid: Pyramid, max_samples: int = 1 << 18) -> npt.NDArray[np.int64]:
    """A regular subsample of full-resolution stored values (level 0, every n-th pixel)."""
    base = pyramid.levels[0]
    step = max(1, int(np.ceil(np.sqrt(base.size / max_samples))))
    sample: npt.NDArray[np.int64] = base[::step, ::step].astype(np.int64) + pyramid.offset
    return sample


def open_radiograph(
    path: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    content_sha256: str | None = None,
) -> Radiograph:
    """A :class:`Radiograph` of a DICOM file, with its pyramid cached in ``cache_dir`` if given.

    With a cache the header is read without pixel data and the pixels are decoded only when
    the cache has no valid pyramid for the file's content hash (``content_sha256``, computed
    from the file when not given). Raises ``ImageFormatError`` for files that cannot be shown.
    """
    if cache_dir is None:
        return radiograph_from_dataset(read_dataset(path))
    header = read_dataset(path, pixels=False)
    key = content_sha256 or file_sha256(path)

    def decode() -> npt.NDArray[Any]:
        return stored_values(read_dataset(path))

    return radiograph_from_dataset(header, pyramid=cached_pyramid(cache_dir, key, decode))
