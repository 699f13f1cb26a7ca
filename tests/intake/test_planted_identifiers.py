"""Readers' copies that betray nothing: the planted-identifier corpus (tests/intake/planted.py)
in every transfer syntax the importer takes, imported from folders and files whose names hold
markers, and sent by dcmtk's storescu to the receiver that `scorer receive` runs.

Every byte of every readers' copy is searched for every marker, the planted names, every
original UID (ASCII, Latin-1, UTF-16-LE and -BE), every planted date, time and number; a copy
may hold no DA, DT or TM element, no private tag, and only neutral explanations. Each copy still
decodes to the pixels its source decodes to, and the real acquisition date is in the database.
"""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from pydicom.uid import DigitalXRayImageStorageForPresentation

from scorer.imaging.pixels import stored_values
from scorer.network.receiver import Receiver
from scorer.store import repository as repo
from tests.intake.conftest import Desk
from tests.intake.planted import NAME, PREFIX, SYNTAXES, Planted, check_copy, leaks, write_corpus

Corpus = tuple[Planted, Path, dict[str, tuple[Path, npt.NDArray[Any]]]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    planted = Planted()
    folder = tmp_path_factory.mktemp("corpus") / f"{PREFIX}0 {NAME}"
    return planted, folder, write_corpus(folder, planted)


def _decoded(path: Path) -> npt.NDArray[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stored_values(pydicom.dcmread(path))


def _check_readers_store(desk: Desk, planted: Planted, corpus: Corpus) -> None:
    """Every readers' copy of the trial betrays nothing and decodes as its source does; no
    name in the readers' store holds a marker; the database kept the real dates."""
    _, _, files = corpus
    sources = {
        pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p, _ in files.values()
    }
    loc = desk.ws.store.location
    with desk.ws.store.read() as db:
        trial = repo.trial_by_code(db, "T1")
        assert trial is not None
        images = list(repo.images_of(db, trial))
        rows = [(img.sop_instance_uid, img.reader_path, img.acquisition_date) for img in images]
    assert {sop for sop, _, _ in rows} == set(sources)
    for sop, reader_path, acquired in rows:
        source = sources[sop]
        copy = loc.image_file(reader_path)
        assert check_copy(copy, planted) == [], source.name
        np.testing.assert_array_equal(_decoded(copy), _decoded(source), err_msg=source.name)
        original = pydicom.dcmread(source, stop_before_pixels=True)
        when = str(original.AcquisitionDate)
        assert acquired == f"{when[:4]}-{when[4:6]}-{when[6:]}", source.name
    for path in loc.readers_store.rglob("*"):
        rel = str(path.relative_to(loc.readers_store))
        assert leaks(rel.encode(), planted, []) == [], rel
        if path.is_file() and path.suffix != ".dcm":  # (the copies are checked above)
            assert leaks(path.read_bytes(), planted, []) == [], rel


def test_the_planted_corpus_imported_from_files_leaves_nothing_in_the_readers_copies(
    desk: Desk, corpus: Corpus
) -> None:
    planted, folder, files = corpus
    assert set(files) == set(SYNTAXES)
    report = desk.ws.images.import_images(desk.s, "T1", [folder]).to_dict()
    statuses = {Path(f["file"]).name: (f["status"], f.get("reason")) for f in report["files"]}
    assert report["imported"] == len(SYNTAXES), statuses
    _check_readers_store(desk, planted, corpus)


@pytest.fixture
def receiver(desk: Desk) -> Iterator[Receiver]:
    r = Receiver(desk.ws, desk.s, "T1", aet="SCORER", port=0, host="127.0.0.1", allow=["MODALITY1"])
    r.start()
    yield r
    r.stop()


def test_the_planted_corpus_sent_to_the_receiver_leaves_nothing_in_the_readers_copies(
    desk: Desk, receiver: Receiver, corpus: Corpus, tmp_path: Path
) -> None:
    from tests.network.conftest import dcmtk

    planted, _, files = corpus
    # One presentation context per transfer syntax, each proposing that syntax alone, so
    # every film arrives in the syntax it was written in, as from a modality set up for it
    # (storescu's -x options cover neither JPEG process 14 nor all of them at once).
    config = tmp_path / "storescu.cfg"
    lines = ["[[TransferSyntaxes]]"]
    contexts = ["[[PresentationContexts]]", "[Corpus]"]
    for k, syntax in enumerate(SYNTAXES.values(), start=1):
        lines += [f"[TS{k}]", f"TransferSyntax1 = {syntax}"]
        contexts.append(f"PresentationContext{k} = {DigitalXRayImageStorageForPresentation}\\TS{k}")
    config.write_text("\n".join([*lines, *contexts, "[[Profiles]]", "[Corpus]",
                                 "PresentationContexts = Corpus", ""]))  # fmt: skip
    result = subprocess.run(
        [dcmtk("storescu"), "-xf", str(config), "Corpus", "--no-halt", "-aet", "MODALITY1",
         "-aec", "SCORER", "127.0.0.1", str(receiver.port), *(str(p) for p, _ in files.values())],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    arrivals = {a.sop_instance_uid: a for a in receiver.arrivals}
    assert len(arrivals) == len(SYNTAXES), result.stdout + result.stderr
    assert {a.status for a in arrivals.values()} == {"imported"}, [
        a.reason for a in arrivals.values()
    ]
    _check_readers_store(desk, planted, corpus)
