"""The reads CSV read as byte columns with numpy: the fast way into an analysis.

:func:`read_reads` gives the same reads as :func:`scorer.core.readscsv.parse_reads_csv` (the
one exchange format, spec §9) in a fraction of the time on a trial's file. It finds every
line end and comma with numpy, packs each row's fields into 64-bit words (a field of up to
eight bytes is one word), and so learns, without making a Python object per row, where each
read's rows begin and which few hundred distinct (area, score) values the million rows hold.
Only those distinct values become text, and each is checked once with the very checks of the
streaming reading in :mod:`scorer.core.readscsv`.

It takes the common shape of a file — no quotes, every read's rows together and in the
method's area order (as ``format_reads_csv`` writes them), LF or CR LF line ends — and hands
anything else, and any file with a problem, to ``parse_reads_csv``: that reading accepts every
valid layout and names every problem by line and column, so what is accepted, refused and
said about it does not depend on which reading ran (tests/reports/test_reads_columns.py holds
the two to byte-identical analyses).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date

import numpy as np
import numpy.typing as npt

from scorer.core.methods import Area, Method
from scorer.core.reads import READ_STATUSES, READ_TYPES, AreaScore, Read
from scorer.core.readscsv import (
    HEADER,
    clean_date,
    clean_text,
    header_end,
    parse_reads_csv,
    row_area_score,
)

_U64 = npt.NDArray[np.uint64]
_I64 = npt.NDArray[np.int64]
#: Per row of a file, which of its distinct (area, score) texts the row has.
_Codes = npt.NDArray[np.int32]

_BOM = "\ufeff".encode()
_FIELDS = len(HEADER)
#: Bytes handled per numpy pass: enough to keep numpy's per-call cost small, few enough that
#: the temporaries of one pass stay a few megabytes (and in the processor's cache's reach).
_BLOCK_BYTES = 1 << 20
#: The longest run of fields packed into words (a read's first seven columns, say); a file
#: with longer ones is left to the streaming reading.
_MAX_SEGMENT = 256
#: Masks keeping the first n bytes of a little-endian word, n = 0..8.
_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
_SLOT_BITS = 16
#: Odd 64-bit multipliers for the words of a text's digest (from SplitMix64's sequence).
_ODD = np.array(
    [0x9E3779B97F4A7C15 * (2 * i + 1) % (1 << 64) | 1 for i in range(_MAX_SEGMENT // 8)],
    dtype=np.uint64,
)


def read_reads(data: bytes, methods: Mapping[str, Method]) -> list[Read]:
    """The reads of a reads CSV: as :func:`scorer.core.readscsv.parse_reads_csv`, faster.

    Raises :class:`scorer.core.readscsv.ReadsCsvError` naming every problem, as it does.
    """
    reads = fast_reads(data, methods)
    return reads if reads is not None else parse_reads_csv(data, methods)


def fast_reads(data: bytes, methods: Mapping[str, Method]) -> list[Read] | None:
    """The reads of a file of the common shape without a problem; None for any other file
    (``parse_reads_csv`` then reads it)."""
    start = len(_BOM) if data.startswith(_BOM) else 0
    # The header plain or quoted (as R writes it): the rows below it are what count.
    body = header_end(data, start)
    if body is None:
        return None
    if data.startswith(b"\r\n", body - 2):
        if data.count(b"\r") != data.count(b"\r\n"):
            return None  # a CR that does not end a line
        data = data.replace(b"\r\n", b"\n")  # line numbers and fields unchanged
        body -= 1
    elif b"\r" in data:
        return None
    # No quoting in the rows (a comma or line end inside a field), no NUL (it would pack like
    # a shorter field), a final LF and at least one row: else the streaming reading. (An
    # empty line has no commas: the rows' count of 14 each refuses it.)
    if (
        len(data) <= body
        or not data.endswith(b"\n")
        or data.find(b'"', body) != -1
        or b"\0" in data
    ):
        return None
    rows = _Rows.of(data, body)
    if rows is None:
        return None
    return _reads(data, rows, methods)


class _Rows:
    """Per read (a run of rows with the same read columns): its first row and where its read
    columns are; per row, the code of its (method .. reason) text, shared by equal texts."""

    def __init__(self) -> None:
        self.heads: list[_I64] = []
        #: Per read: where its first row's trial .. read_type and read_id, status are.
        self.head_spans: list[_I64] = []
        #: Per row, its combo code (room for every line of the file, filled as rows come).
        self.codes: _Codes = np.empty(0, dtype=np.int32)
        self.combos: dict[bytes, int] = {}
        #: Per digest slot, a row seen with it (see _leaders).
        self.slots = np.zeros(1 << _SLOT_BITS, dtype=np.int32)
        self.n_rows = 0

    @classmethod
    def of(cls, data: bytes, body: int) -> _Rows | None:
        arr = np.frombuffer(data, dtype=np.uint8)
        rows = cls()
        rows.codes = np.empty(data.count(b"\n", body), dtype=np.int32)
        previous: tuple[_U64, _U64] | None = None
        line_start = body
        while line_start < len(data):
            # A block of whole lines: its line ends found in one pass over a few megabytes.
            block = arr[line_start : line_start + _BLOCK_BYTES]
            chunk_ends = np.flatnonzero(block == 10)
            if not len(chunk_ends):
                return None  # a line longer than a block: no reads CSV row is
            chunk_ends += line_start
            previous = rows._add_chunk(data, arr, line_start, chunk_ends, previous)
            if previous is None:
                return None
            line_start = int(chunk_ends[-1]) + 1
        return rows

    def _add_chunk(
        self,
        data: bytes,
        arr: npt.NDArray[np.uint8],
        line_start: int,
        line_ends: _I64,
        previous: tuple[_U64, _U64] | None,
    ) -> tuple[_U64, _U64] | None:
        """Add the rows ending at ``line_ends``; returns the packed read columns of the last
        row (to find a read running on into the next chunk), or None if a row does not fit."""
        n = len(line_ends)
        stop = int(line_ends[-1])
        found = np.flatnonzero(arr[line_start:stop] == 44)  # from line_start
        if len(found) != n * (_FIELDS - 1):
            return None
        # 14 commas a row on average; each row's 14 (its first after its start, its last
        # before its end) then means exactly 14 in every row.
        commas = found.reshape(n, _FIELDS - 1)
        starts = np.empty(n, dtype=np.int64)
        starts[0] = line_start
        starts[1:] = line_ends[:-1] + 1

        def comma(k: int) -> _I64:
            return commas[:, k] + line_start

        if not ((comma(0) >= starts).all() and (comma(13) < line_ends).all()):
            return None
        # The read's columns: trial .. read_type (before the 7th comma), read_id and status
        # (after the 13th); the row's own: method .. reason (method and read type again, so
        # that a combo's text says which method's area and score it is).
        c4, c6, c12 = comma(4), comma(6), comma(12)
        prefix = _pack(data, starts, c6)
        suffix = _pack(data, c12 + 1, line_ends)
        middle = _pack(data, c4 + 1, c12)
        if prefix is None or suffix is None or middle is None:
            return None
        new = np.empty(n, dtype=bool)
        new[1:] = _differs(prefix[1:], prefix[:-1]) | _differs(suffix[1:], suffix[:-1])
        if previous is None:
            new[0] = True
        else:
            new[0] = bool(
                _differs(prefix[:1], _fit(previous[0], prefix))[0]
                or _differs(suffix[:1], _fit(previous[1], suffix))[0]
            )
        heads = np.flatnonzero(new)
        self.head_spans.append(
            np.stack(
                (starts[heads], c6[heads], c12[heads] + 1, line_ends[heads]),
                axis=1,
            )
        )
        self.heads.append(heads + self.n_rows)
        codes = self._combo_codes(arr, middle, c4 + 1, c12)
        self.codes[self.n_rows : self.n_rows + n] = codes
        self.n_rows += n
        return prefix[-1:], suffix[-1:]

    def _combo_codes(
        self, arr: npt.NDArray[np.uint8], middle: _U64, begin: _I64, end: _I64
    ) -> _Codes:
        """Per row, the code of its method .. reason text (codes shared across chunks)."""
        # The words multiplied by odd constants and summed (mod 2^64), then mixed: cheap, and
        # any clash of two texts costs only another try in _leaders, never a wrong code.
        digest = middle @ _ODD[: middle.shape[1]]
        digest = _mix(digest)
        rows = np.arange(len(middle))
        first = _leaders(middle, digest, rows, self.slots)
        leaders = np.flatnonzero(first == rows)
        local = np.empty(len(middle), dtype=np.int32)
        raw = arr.data
        for i in leaders.tolist():
            text = bytes(raw[int(begin[i]) : int(end[i])])
            local[i] = self.combos.setdefault(text, len(self.combos))
        return local[first]


def _leaders(middle: _U64, digest: _U64, rows: _I64, slots: npt.NDArray[np.int32]) -> _I64:
    """Per row, the first row (a leader) with the same packed text.

    A row's slot (16 bits of its text's digest) names one of the rows written to it (which
    one, numpy does not say, nor need it: that row leads itself); the rows whose text is that
    row's have found their leader. The others (texts that met in a slot:
    a few among hundreds) try again with the digest's next 16 bits; any left after four
    tries are sorted out.
    """
    first = np.empty(len(rows), dtype=np.int64)
    todo = rows
    for shift in range(0, 64, _SLOT_BITS):
        slot = ((digest[todo] >> np.uint64(shift)) & np.uint64(len(slots) - 1)).astype(np.intp)
        slots[slot] = todo
        leader = slots[slot]
        same = (middle[todo] == middle[leader]).all(axis=1)
        first[todo[same]] = leader[same]
        todo = todo[~same]
        if not len(todo):
            return first
    _, group = np.unique(middle[todo], axis=0, return_inverse=True)
    group = group.reshape(-1)
    heads = np.empty(int(group.max()) + 1, dtype=np.int64)
    heads[group] = todo
    first[todo] = heads[group]
    return first


def _mix(z: _U64) -> _U64:
    """The 64-bit finaliser of SplitMix64 (Steele, Lea & Flood 2014): every input bit moves
    about half the output bits, the top ones included (they pick the slot)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _pack(data: bytes, begin: _I64, end: _I64) -> _U64 | None:
    """The bytes [begin, end) of each row as little-endian words, zero-padded (n x words)."""
    length = end - begin
    longest = int(length.max())
    if longest > _MAX_SEGMENT:
        return None
    n_words = max(1, -(-longest // 8))
    width = 8 * n_words
    # Rows whose words would run past the file's end are read from a zero-padded copy of it.
    limit = len(data) - width
    near_end = begin > limit
    out = _words(data, n_words)[np.where(near_end, 0, begin)]
    if near_end.any():
        tail_at = max(0, len(data) - 2 * _MAX_SEGMENT)
        tail = data[tail_at:] + bytes(width)
        out[near_end] = _words(tail, n_words)[begin[near_end] - tail_at]
    # Per length 0..longest, the masks keeping that many bytes of the row's words.
    keep = np.clip(np.arange(longest + 1)[:, None] - 8 * np.arange(n_words), 0, 8)
    out &= _MASKS[keep][length]
    return out


def _words(data: bytes, n_words: int) -> _U64:
    """For each byte position that has ``8 * n_words`` bytes from it: those bytes as words
    (a strided view over ``data``, unaligned; nothing is copied)."""
    count = len(data) - 8 * n_words + 1
    return np.ndarray(
        shape=(max(count, 0), n_words), dtype="<u8", buffer=data, offset=0, strides=(1, 8)
    )


def _differs(a: _U64, b: _U64) -> npt.NDArray[np.bool_]:
    return np.asarray((a != b).any(axis=1))


def _fit(row: _U64, like: _U64) -> _U64:
    """``row`` (1 x w) widened or narrowed with zero words to ``like``'s width."""
    out = np.zeros((1, like.shape[1]), dtype=np.uint64)
    w = min(row.shape[1], like.shape[1])
    out[:, :w] = row[:, :w]
    if row.shape[1] > w and row[:, w:].any():
        out[0, 0] ^= np.uint64(1)  # longer than any of these rows: differs from them all
    return out


def _reads(data: bytes, rows: _Rows, methods: Mapping[str, Method]) -> list[Read] | None:
    """The reads of ``rows`` once every distinct value is checked; None if any is not clean."""
    try:
        combo_texts = [t.decode("utf-8").split(",") for t in rows.combos]
    except UnicodeDecodeError:
        return None
    checked = _check_combos(combo_texts, methods)
    if checked is None:
        return None
    codes = rows.codes[: rows.n_rows]
    bounds = np.append(np.concatenate(rows.heads), rows.n_rows)
    if not _rising(codes, bounds, checked[2]):
        return None
    packed = PackedScores(*checked, codes)
    return _build(data, np.concatenate(rows.head_spans), bounds, packed, methods)


def _rising(codes: _Codes, bounds: _I64, places: npt.NDArray[np.int32]) -> bool:
    """Whether within each read the areas come in strictly rising method order (so none
    twice, none out of order); a million rows at a time, to keep the temporaries small."""
    step = 1 << 20
    for at in range(0, len(codes), step):
        order = places[codes[at : at + step + 1]]
        rising = order[1:] > order[:-1]
        # A read's first row may go down from the read before it.
        firsts = bounds[(bounds > at) & (bounds < at + len(order))] - at - 1
        rising[firsts] = True
        if not rising.all():
            return False
    return True


#: Per combo code: its area, its score, and the area's place in its method's order.
_Checked = tuple[list[Area], list[AreaScore], "npt.NDArray[np.int32]"]


def _check_combos(combo_texts: list[list[str]], methods: Mapping[str, Method]) -> _Checked | None:
    """The area, score and place of every (method, read type, region, joint, feature, score,
    assessable, reason) text; None if any is not clean."""
    areas: list[Area] = []
    values: list[AreaScore] = []
    places: list[int] = []
    for fields in combo_texts:
        if len(fields) != 8:
            return None
        mid, _, region, joint, feature, score, assessable, reason = fields
        found = row_area_score((mid, region, joint, feature, score, assessable, reason), methods)
        if found is None:
            return None
        area, value, method = found
        areas.append(area)
        values.append(value)
        places.append(method.order(area))
    return areas, values, np.array(places, dtype=np.int32)


def _build(
    data: bytes,
    spans: _I64,
    bounds: _I64,
    packed: PackedScores,
    methods: Mapping[str, Method],
) -> list[Read] | None:
    """One read per run of rows (``spans``: where its read columns are), each checked as the
    streaming reading checks it; None if any is not clean."""
    checked: dict[str, bool] = {}
    # Equal texts as one str object: 90,000 reads name a few thousand patients, visits, ...
    same: dict[str, str] = {}
    dates: dict[str, date | None] = {}
    reads: list[Read] = []
    read_ids: set[str] = set()
    sizes = {mid: len(m.areas) for mid, m in methods.items()}
    ends = bounds[1:].tolist()
    for r, (a, b, c, d) in enumerate(spans.tolist()):
        try:
            head = data[a:b].decode("utf-8").split(",")
            tail = data[c:d].decode("utf-8").split(",")
        except UnicodeDecodeError:
            return None
        if len(head) != 7 or len(tail) != 2:
            return None
        trial, patient, visit, vd, reader, mid, read_type = map(same.setdefault, head, head)
        rid, status = tail
        for text in (trial, patient, visit, reader):
            ok = checked.get(text)
            if ok is None:
                ok = checked[text] = clean_text(text)
            if not ok:
                return None
        if rid in read_ids or not clean_text(rid):
            return None  # a read's rows apart (or a read column changing within it), ...
        read_ids.add(rid)
        if read_type not in READ_TYPES or status not in READ_STATUSES:
            return None
        if vd not in dates:
            if not clean_date(vd):
                return None
            dates[vd] = date.fromisoformat(vd) if vd else None
        start, stop = ends[r - 1] if r else 0, ends[r]
        if status == "signed" and stop - start != sizes[mid]:
            return None
        reads.append(
            Read(
                trial=trial,
                patient=patient,
                visit=visit,
                reader=reader,
                method=mid,
                read_type=read_type,
                read_id=rid,
                status=same.setdefault(status, status),
                visit_date=dates[vd],
                scores=ColumnScores(packed, start, stop),
            )
        )
    return reads


class PackedScores:
    """The scores of every row of a file: per distinct (area, score) its area, score and
    place in the method's order; per row, which one it is."""

    def __init__(
        self,
        areas: list[Area],
        values: list[AreaScore],
        places: npt.NDArray[np.int32],
        codes: _Codes,
    ) -> None:
        self.areas = areas
        self.values = values
        self.places = places
        self.codes = codes
        self.grades = np.array(
            [np.nan if v.score is None else float(v.score) for v in values], dtype=np.float64
        )
        self.operated = np.array([v.reason == "operated" for v in values], dtype=bool)


class ColumnScores(Mapping[Area, AreaScore]):
    """A read's scores held as rows ``start``..``stop`` of a file's :class:`PackedScores`, in
    the method's area order: a read-only mapping like the dict of a read parsed row by row
    (equal to it), made into a dict only when asked for one area (never, in an analysis:
    :meth:`scorer.reports.score_matrix.ScoreMatrix.of` takes the rows as they are)."""

    __slots__ = ("_dict", "packed", "start", "stop")

    def __init__(self, packed: PackedScores, start: int, stop: int) -> None:
        self.packed = packed
        self.start = start
        self.stop = stop
        self._dict: dict[Area, AreaScore] | None = None

    def _scores(self) -> dict[Area, AreaScore]:
        if self._dict is None:
            p = self.packed
            picked = p.codes[self.start : self.stop].tolist()
            areas = map(p.areas.__getitem__, picked)
            self._dict = dict(zip(areas, map(p.values.__getitem__, picked), strict=True))
        return self._dict

    def __getitem__(self, area: Area) -> AreaScore:
        return self._scores()[area]

    def __iter__(self) -> Iterator[Area]:
        return iter(self._scores())

    def __len__(self) -> int:
        return self.stop - self.start

    def __repr__(self) -> str:
        return repr(self._scores())
