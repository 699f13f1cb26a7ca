"""The 0007 migration: images imported before the QC gate pass if nothing was flagged and wait
for the coordinator if something was; their decoded pixels' hash is left unknown."""

from __future__ import annotations

import sqlalchemy as sa

from scorer.store.database import make_engine
from scorer.store.migrate import upgrade


def test_the_0007_migration_passes_unflagged_images_and_holds_flagged_ones(fresh_db: str) -> None:
    url = fresh_db if "://" in fresh_db else f"sqlite:///{fresh_db}"
    engine = make_engine(url)
    upgrade(engine, "0006")
    with engine.begin() as con:
        con.execute(
            sa.text(
                "INSERT INTO trials (id, code, name, methods, design, config, locked, created_at) "
                "VALUES (1, 'T1', 'Trial', 'svh', 'paired_blinded', '{}', :f, 'x')"
            ),
            {"f": False},
        )
        for code, flags in (("CLEAN", ""), ("FLAGGED", "patient unknown; visit unknown")):
            con.execute(
                sa.text(
                    "INSERT INTO images (trial_id, code, sha256, reader_path, original_path, "
                    "flags, created_at) VALUES (1, :c, :h, 'r', 'o', :f, 'x')"
                ),
                {"c": code, "h": code.lower() * 4, "f": flags},
            )
    upgrade(engine, key=b"k" * 32)
    with engine.connect() as con:
        rows = con.execute(
            sa.text("SELECT code, qc_state, qc_reason, pixel_sha256 FROM images ORDER BY code")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("CLEAN", "passed", "", None),
        ("FLAGGED", "pending", "", None),
    ]
