"""Commands that bring radiographs in and look after them: import (files), receive (DICOM
C-STORE), pull (from a PACS), image (export-png, list, joints, register, qc, reassign, mask,
region-missing, reissue)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

from scorer.cli.options import CliError, Login, Passwords, run_store
from scorer.cli.output import EXIT_ERROR, EXIT_OK, OutputFormat, emit, err, visible
from scorer.cli.registry import Opt, command, group
from scorer.core.methods import REGIONS
from scorer.core.printable import printable


@command("import")
def import_images(
    paths: Annotated[list[str], Opt(metavar="PATH")],
    *,
    trial: str,
    manifest: Annotated[str | None, Opt(metavar="FILE.csv")] = None,
    format: OutputFormat = "text",
    workers: int = 2,
    timeout: Annotated[float, Opt(metavar="SECONDS")] = 60.0,
    max_mb: Annotated[float, Opt(metavar="MB")] = 1024.0,
    quiet: bool = False,
    login: Login,
) -> int:
    """import DICOM (and PNG/JPEG/TIFF with a manifest)

    Args:
        paths: files, folders or zip archives
        manifest: file,patient,visit,date,regions for each file
        workers: decode worker processes
        timeout: time limit to decode one file
        max_mb: refuse files larger than this, from their size, unread (1024 MB)
        quiet: no progress bar
    """
    from scorer.imaging.manifest import ManifestError, parse_manifest

    parsed = None
    if manifest:
        try:
            parsed = parse_manifest(Path(manifest).read_text(encoding="utf-8"))
        except (OSError, ManifestError, UnicodeDecodeError) as exc:
            err(f"manifest {manifest}: {exc}")
            return EXIT_ERROR

    def progress(done: int, total: int, name: str) -> None:
        if quiet or not total:
            return
        width = 30
        filled = int(width * done / total)
        shown = visible(name[-40:]).replace("\n", " ") if name else ""
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {shown:<40}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        report = ws.images.import_images(
            s,
            trial,
            [Path(p) for p in paths],
            parsed,
            progress,
            workers=workers,
            timeout_s=timeout,
            max_mb=max_mb,
            manifest_names=[Path(manifest).name] if manifest else [],
        )
        res = report.to_dict()
        emit(format, res, _import_lines)
        if res["refused"]:
            err(f"{res['refused']} of {len(res['files'])} file(s) refused, each with its reason")
            return EXIT_ERROR
        return EXIT_OK

    return run_store(login, body)


def _import_lines(res: dict[str, Any]) -> Iterator[str]:
    if res["partial_removed"] or res["orphans_removed"]:
        yield (
            f"removed what an interrupted import left: {res['partial_removed']} partial "
            f"file(s), {res['orphans_removed']} readers' copy(ies) without an image"
        )
    for f in res["files"]:
        detail = f.get("reason") or "; ".join(f.get("flags", []))
        if f.get("qc") == "pending":
            detail = f"QC pending: {detail}"
        img = f" -> {f['image']}" if f.get("image") else ""
        # A file name or a quoted header value is untrusted: escaped (one line each).
        yield (
            f"{f['status']:<9} {printable(f['file'])}{img}"
            + (f"  ({printable(detail)})" if detail else "")
        )
    yield (
        f"imported {res['imported']}, duplicates {res['duplicates']}, refused "
        f"{res['refused']}, flagged for the coordinator {res['flagged']}"
        + (f", skipped {res['skipped']}" if res["skipped"] else "")
    )
    if res.get("registration"):
        yield printable(res["registration"])


def _log_network_to_stderr() -> None:
    """scorer.network's log lines on standard error, untrusted text in them escaped."""
    import logging

    class PrintableFormatter(logging.Formatter):
        """Log lines with untrusted text (AE titles, UIDs, reasons) escaped, one line each."""

        def format(self, record: logging.LogRecord) -> str:
            return printable(super().format(record))

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PrintableFormatter("%(asctime)s %(levelname)s %(message)s"))
    net_log = logging.getLogger("scorer.network")
    net_log.addHandler(handler)
    net_log.setLevel(logging.INFO)


@command("receive")
def receive(
    *,
    trial: str,
    port: int = 11112,
    aet: str = "SCORER",
    host: str = "0.0.0.0",
    allow: Annotated[Sequence[str], Opt(nargs="+", metavar="AET")] = (),
    max_mb: int = 1024,
    workers: int = 1,
    login: Login,
) -> int:
    """receive radiographs over DICOM (C-STORE SCP) into a trial, until stopped

    Args:
        port: TCP port to listen on (11112)
        aet: this workstation's AE title (SCORER)
        host: address to listen on (all; 127.0.0.1 for this host)
        allow: calling AE titles allowed to send, besides the trial's dicom_senders
        max_mb: refuse instances larger than this (1024 MB)
        workers: decode worker processes
    """
    import signal
    import threading

    from scorer.network.common import NetworkError
    from scorer.network.receiver import Receiver

    _log_network_to_stderr()

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        try:
            receiver = Receiver(
                ws,
                s,
                trial,
                aet=aet,
                port=port,
                host=host,
                allow=allow,
                max_mb=max_mb,
                workers=workers,
            )
            receiver.start()
        except NetworkError as exc:
            err(str(exc))
            return EXIT_ERROR
        stop = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        print(
            f"receiving for trial {trial} as {receiver.aet} on {host}:{receiver.port}; "
            f"allowed: {', '.join(receiver.allowed)}. Stop with Ctrl-C or SIGTERM.",
            flush=True,
        )
        try:
            receiver.wait(stop)
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
        counts = {
            k: sum(1 for a in receiver.arrivals if a.status == k)
            for k in ("imported", "duplicate", "refused")
        }
        print(
            f"stopped: imported {counts['imported']}, duplicates {counts['duplicate']}, "
            f"refused {counts['refused']}",
            flush=True,
        )
        return EXIT_OK

    return run_store(login, body, on_server_host=True)


@command("pull")
def pull(
    *,
    trial: str,
    source: Annotated[str, Opt(flag="--from", metavar="AET@HOST:PORT")],
    patient: Annotated[str, Opt(metavar="ID")],
    study: Annotated[str | None, Opt(metavar="UID")] = None,
    aet: str = "SCORER",
    move_to: Annotated[str | None, Opt(metavar="AET")] = None,
    timeout: Annotated[float, Opt(metavar="SECONDS")] = 120.0,
    format: OutputFormat = "text",
    quiet: bool = False,
    login: Login,
) -> int:
    """query a PACS for a patient's studies and retrieve them into a trial

    Args:
        patient: the patient ID at the PACS
        study: only this Study Instance UID
        aet: this workstation's AE title (SCORER)
        move_to: C-MOVE to this receiver (scorer receive) instead of C-GET
        quiet: no progress
    """
    from scorer.network.common import NetworkError, Peer
    from scorer.network.pull import pull as run_pull

    def progress(done: int, total: int | None, what: str) -> None:
        if quiet:
            return
        of = f"/{total}" if total is not None else ""
        sys.stderr.write(f"\r{done}{of} instance(s) retrieved ({what})        ")
        sys.stderr.flush()

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        try:
            report = run_pull(
                ws,
                s,
                trial,
                Peer.parse(source),
                patient,
                study,
                aet=aet,
                move_to=move_to,
                progress=progress,
                timeout_s=timeout,
            )
        except NetworkError as exc:
            if not quiet:
                sys.stderr.write("\n")
            err(str(exc))
            return EXIT_ERROR
        if not quiet:
            sys.stderr.write("\n")
        res = report.to_dict()
        emit(format, res, lambda r: _pull_lines(r, move_to))
        if res["refused"] or res["failures"]:
            err(
                f"{len(res['refused']) if isinstance(res['refused'], list) else res['refused']} "
                f"instance(s) refused, {len(res['failures'])} failure(s)"
            )
            return EXIT_ERROR
        return EXIT_OK

    return run_store(login, body, on_server_host=True)


def _pull_lines(res: dict[str, Any], move_to: str | None) -> Iterator[str]:
    for st in res["studies"]:
        yield printable(
            f"study {st['study_instance_uid']} {st['date']} {st['description']}"
        ).rstrip()
    for a in res["instances"]:
        detail = a["reason"] or "; ".join(a["flags"])
        img = f" -> {a['image']}" if a["image"] else ""
        yield (
            f"{a['status']:<9} {printable(a['sop_instance_uid'])}{img}"
            + (f"  ({printable(detail)})" if detail else "")
        )
    if move_to:
        m = res["moved"]
        yield (
            f"moved to {move_to}: completed {m.get('completed', 0)}, failed "
            f"{m.get('failed', 0)}, warnings {m.get('warning', 0)}"
        )
    else:
        yield (
            f"imported {res['imported']}, duplicates {res['duplicates']}, refused {res['refused']}"
        )
    for f in res["failures"]:
        yield f"failed: {printable(f)}"


group("image", help="images: export-png", dest="image_cmd")

ImageId = Annotated[str, Opt(metavar="IMAGE_ID")]


def _qc_decisions() -> tuple[str, ...]:
    """The QC states a coordinator may give an image (all but pending, the state it waits in)."""
    from scorer.workspace import QC_STATES

    return tuple(state for state in QC_STATES if state != "pending")


@command("image", "export-png")
def image_export_png(
    image: Annotated[str, Opt(metavar="IMAGE_ID", help="the image code (from the import)")],
    *,
    out: Annotated[str, Opt(metavar="FILE.png")],
    window: Annotated[str | None, Opt(metavar="C,W")] = None,
    max_size: Annotated[int | None, Opt(metavar="PX")] = None,
    login: Login,
) -> int:
    """what a reader sees of an image, as a PNG

    Args:
        window: window centre,width instead of the default
        max_size: scale down to this longer side
    """

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        path = ws.images.export_image_png(s, image, Path(out), window, max_size)
        print(f"wrote {path}")
        return EXIT_OK

    return run_store(login, body)


@command("image", "list")
def image_list(
    *, trial: str, flagged: bool = False, format: OutputFormat = "text", login: Login
) -> int:
    """the trial's images with their flags

    Args:
        flagged: only images flagged at import
    """

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        images = ws.images.list_images(s, trial)
        if flagged:
            images = [i for i in images if i.flags]
        emit(format, [i.to_dict() for i in images], _image_lines)
        return EXIT_OK

    return run_store(login, body)


def _image_lines(images: list[dict[str, Any]]) -> Iterator[str]:
    for i in images:
        flags = "; ".join(i["flags"])
        qc = i["qc"] + (f" ({i['qc_reason']})" if i["qc_reason"] else "")
        yield (
            f"{i['code']}  {i['patient'] or '?':<12} {i['visit'] or '?':<6} "
            f"{','.join(i['regions']) or '?':<6} QC {qc:<8} {flags}".rstrip()
        )


@command("image", "joints")
def image_joints(
    *, trial: str, to_check: bool = False, format: OutputFormat = "text", login: Login
) -> int:
    """the joint locator's results and registration's disagreements, per image

    Args:
        to_check: only images with joints to place or disagreements to look at
    """

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        checks = ws.joints.joint_checks(s, trial, to_check)
        emit(format, [_check_dict(c) for c in checks], _check_lines)
        return EXIT_OK

    return run_store(login, body)


def _check_dict(c: Any) -> dict[str, Any]:
    return {
        "image": c.image,
        "patient": c.patient,
        "visit": c.visit,
        "regions": list(c.regions),
        "located": c.located,
        "reason": c.reason,
        "sure": c.sure,
        "unsure": list(c.unsure),
        "unplaced": list(c.unplaced),
        "disagreements": [
            {
                "joint": f"{d.region} {d.joint}",
                "distance_mm": d.distance_mm,
                "reference": d.reference,
            }
            for d in c.disagreements
        ],
        "summary": c.summary(),
    }


def _check_lines(checks: list[dict[str, Any]]) -> Iterator[str]:
    if not checks:
        yield "no images"
        return
    yield f"{'image':<12}  {'patient':<12} {'visit':<6} {'region':<6} {'found':<6} joints"
    for c in checks:
        yield (
            f"{c['image']}  {c['patient'] or '?':<12} {c['visit'] or '?':<6} "
            f"{','.join(c['regions']) or '?':<6} {c['located'] or 'not run':<6} "
            f"{printable(c['summary'])}"
        )
        if c["unplaced"]:
            yield f"    to place: {', '.join(c['unplaced'])}"
        for d in c["disagreements"]:
            yield (
                f"    {d['joint']}: {d['distance_mm']:.1f} mm from where the film "
                f"{d['reference']} puts it"
            )


@command("image", "register")
def image_register(
    *,
    trial: str,
    patient: Annotated[str | None, Opt(metavar="CODE")] = None,
    login: Login,
) -> int:
    """register a trial's films (or a patient's) across visits and propose joint positions

    Args:
        patient: only this patient's films (patient code)
    """

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        summary = ws.joints.register_visits(s, trial, patient)
        print(summary.describe() or "nothing to register: no patient has two films of a part")
        for problem in summary.problems:
            print(f"  {printable(problem)}")
        return EXIT_OK

    return run_store(login, body)


@command("image", "qc")
def image_qc(
    image: ImageId,
    state: Annotated[str, Opt(choices=_qc_decisions)],
    *,
    reason: str | None = None,
    login: Login,
) -> int:
    """pass an image held for QC (it reaches its cases), or fail it (never)

    Args:
        reason: why (required to fail an image)
    """

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        out = ws.images.image_qc(s, image, state, reason or "")
        print(f"{image}: QC {out.qc}" + (f" ({out.qc_reason})" if out.qc_reason else ""))
        if out.cases:
            print("  cases that showed it (their readers saw it; follow them up):")
            for c in out.cases:
                print(f"    {c.case}  {c.reader}")
        return EXIT_OK

    return run_store(login, body)


@command("image", "reassign")
def image_reassign(
    image: ImageId,
    *,
    patient: Annotated[str | None, Opt(metavar="CODE")] = None,
    visit: Annotated[str | None, Opt(metavar="LABEL")] = None,
    regions: Annotated[str | None, Opt(metavar="LH,RH")] = None,
    reason: str,
    login: Login,
) -> int:
    """move an image to another patient, visit or regions"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        new = ws.images.reassign_image(
            s,
            image,
            reason,
            patient=patient,
            visit=visit,
            regions=regions.split(",") if regions else None,
        )
        print(f"{image}: patient {new.patient}, visit {new.visit}, regions {','.join(new.regions)}")
        return EXIT_OK

    return run_store(login, body)


def _rectangle(text: str) -> tuple[int, int, int, int]:
    """X,Y,WIDTH,HEIGHT in pixels."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise CliError(f"a rectangle is X,Y,WIDTH,HEIGHT in pixels, not {text!r}") from None
    return x, y, w, h


@command("image", "mask")
def image_mask(
    image: ImageId,
    *,
    rect: Annotated[list[str], Opt(metavar="X,Y,W,H")],
    reason: str,
    login: Login,
) -> int:
    """black out burned-in text on the readers' copy"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        rects = [_rectangle(r) for r in rect]
        out = ws.images.mask_image(s, image, rects, reason)
        print(f"{image}: {len(rects)} rectangle(s) masked on the readers' copy")
        print(f"  readers' copy SHA-256 {out.reader_sha256} (the original is untouched)")
        return EXIT_OK

    return run_store(login, body)


@command("image", "region-missing")
def image_region_missing(
    *,
    trial: str,
    patient: Annotated[str, Opt(metavar="CODE")],
    visit: Annotated[str, Opt(metavar="LABEL")],
    region: Annotated[str, Opt(choices=REGIONS)],
    reason: str,
    login: Login,
) -> int:
    """a region without image: not assessable"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        out = ws.images.mark_region_missing(s, trial, patient, visit, region, reason)
        print(f"{region} of {patient} at {visit}: not assessable for all readers")
        print(f"  {out.reads_changed} read(s) marked")
        if out.signed_reads_left:
            left = ", ".join(out.signed_reads_left)
            print(f"  signed reads left as they are (their readers reopen them): {left}")
        return EXIT_OK

    return run_store(login, body)


@command("image", "reissue")
def image_reissue(*, trial: str, workers: int = 2, quiet: bool = False, login: Login) -> int:
    """write every readers' copy of a trial again from its original under the current rules
    (keep-list, UIDs drawn per image, masks painted again), audited

    Args:
        workers: decode worker processes
        quiet: no progress
    """

    def progress(done: int, total: int, _image: str) -> None:
        if not quiet and total:
            sys.stderr.write(f"\rwriting readers' copies: {done}/{total}")
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        out = ws.images.reissue_readers_copies(s, trial, progress, workers=workers)
        print(
            f"{out.trial}: {out.images} readers' copy(ies) written again from the "
            f"originals ({out.masked} with their masks painted again); the old ones removed"
        )
        return EXIT_OK

    return run_store(login, body)
