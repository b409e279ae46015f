"""Schema of a project database, one DDL script per version, and the migrations between them.

A migration runs only after ``Project.open`` has copied the database into ``backups/``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

# "ALDK" as a big-endian int: lets us tell our databases from any other SQLite file.
APPLICATION_ID = 0x414C444B

SCHEMA_VERSION = 5

SCHEMA_V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE classes (
    idx  INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

-- A folder that was imported. Scans live at root.path / scan.relpath, so moving the data
-- means changing one row (``aldesk relink``).
CREATE TABLE roots (
    id   INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE
);

CREATE TABLE imports (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL,          -- running | done | cancelled | failed
    paths       TEXT NOT NULL,          -- JSON list
    summary     TEXT                    -- JSON object
);

CREATE TABLE scans (
    id              INTEGER PRIMARY KEY,
    uid             TEXT NOT NULL UNIQUE,   -- SOP Instance UID, else "sha:" + pixel hash
    pixel_hash      TEXT NOT NULL,
    root_id         INTEGER NOT NULL REFERENCES roots(id),
    relpath         TEXT NOT NULL,
    file_size       INTEGER NOT NULL,
    file_mtime      REAL NOT NULL,
    format          TEXT NOT NULL,
    study_uid       TEXT,
    series_uid      TEXT,
    patient_key     TEXT,                   -- salted hash of Patient ID, never the ID itself
    modality        TEXT,
    body_part       TEXT,
    view            TEXT,
    rows            INTEGER NOT NULL,
    columns         INTEGER NOT NULL,
    frames          INTEGER NOT NULL,
    samples         INTEGER NOT NULL,
    bits_allocated  INTEGER NOT NULL,
    bits_stored     INTEGER NOT NULL,
    signed          INTEGER NOT NULL,
    photometric     TEXT NOT NULL,
    spacing_row     REAL,
    spacing_col     REAL,
    transfer_syntax TEXT,
    windows         TEXT NOT NULL DEFAULT '[]',   -- JSON [[center, width, name], ...]
    import_id       INTEGER REFERENCES imports(id),
    imported_at     TEXT NOT NULL,
    UNIQUE (root_id, relpath)
);
CREATE INDEX scans_pixel_hash ON scans(pixel_hash);
CREATE INDEX scans_patient ON scans(patient_key);

CREATE TABLE previews (
    scan_id  INTEGER PRIMARY KEY REFERENCES scans(id) ON DELETE CASCADE,
    height   INTEGER NOT NULL,
    width    INTEGER NOT NULL,
    channels INTEGER NOT NULL,
    data     BLOB NOT NULL                 -- raw uint8, row-major (height, width[, channels])
);

-- Files that were looked at and not imported, so re-running an import can report them without
-- reading them again, and the GUI can list them.
CREATE TABLE file_problems (
    root_id    INTEGER NOT NULL REFERENCES roots(id),
    relpath    TEXT NOT NULL,
    file_size  INTEGER NOT NULL,
    file_mtime REAL NOT NULL,
    kind       TEXT NOT NULL,               -- skipped | failed | duplicate
    code       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    scan_id    INTEGER REFERENCES scans(id) ON DELETE SET NULL,   -- the original, for duplicates
    import_id  INTEGER REFERENCES imports(id),
    PRIMARY KEY (root_id, relpath)
);

CREATE TABLE annotators (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL DEFAULT 'annotator',   -- annotator | reviewer | lead
    created_at TEXT NOT NULL
);

-- Every label ever given. A change adds a row and points the old one at it (history kept);
-- the current label of a reader is the row with replaced_by IS NULL.
CREATE TABLE labels (
    id           TEXT PRIMARY KEY,          -- uuid4: unique across workstations
    scan_id      INTEGER NOT NULL REFERENCES scans(id),
    annotator_id INTEGER NOT NULL REFERENCES annotators(id),
    value        TEXT NOT NULL,             -- a class name, 'unsure' or 'skip'
    note         TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    duration_ms  INTEGER,
    workstation  TEXT NOT NULL DEFAULT '',
    source       TEXT NOT NULL DEFAULT '',  -- gui | csv | package
    replaced_by  TEXT REFERENCES labels(id) DEFERRABLE INITIALLY DEFERRED
);
CREATE UNIQUE INDEX labels_current ON labels(scan_id, annotator_id) WHERE replaced_by IS NULL;
CREATE INDEX labels_annotator ON labels(annotator_id);

CREATE TABLE feature_sets (
    id         INTEGER PRIMARY KEY,
    extractor  TEXT NOT NULL,
    version    TEXT NOT NULL,
    dim        INTEGER NOT NULL,
    state      BLOB,                        -- fitted extractor state as .npz (no pickles)
    created_at TEXT NOT NULL,
    UNIQUE (extractor, version)
);

CREATE TABLE features (
    set_id  INTEGER NOT NULL REFERENCES feature_sets(id) ON DELETE CASCADE,
    scan_id INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
    vector  BLOB NOT NULL,                  -- float32 little-endian, dim values
    PRIMARY KEY (set_id, scan_id)
) WITHOUT ROWID;

CREATE TABLE models (
    id         INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    extractor  TEXT NOT NULL,
    estimator  TEXT NOT NULL,
    n_labels   INTEGER NOT NULL,
    metrics    TEXT NOT NULL DEFAULT '{}',  -- JSON
    arrays     BLOB                         -- .npz of plain arrays (no pickles), or NULL
);

-- A reviewer's final label for a scan; it overrides every reader. Rows never change: a scan's
-- newest row (created_at, then id) is its decision, older rows its history, so copies made on
-- several workstations merge by id alone.
CREATE TABLE adjudications (
    id          TEXT PRIMARY KEY,              -- uuid4
    scan_id     INTEGER NOT NULL REFERENCES scans(id),
    reviewer_id INTEGER NOT NULL REFERENCES annotators(id),
    value       TEXT NOT NULL,                 -- a class name
    reason      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    workstation TEXT NOT NULL DEFAULT ''
);
CREATE INDEX adjudications_scan ON adjudications(scan_id, created_at);

-- A reviewer asks for one more independent read of a scan. Rows never change: a request is met once
-- a reader who had not read the scan when it was made has read it, or the scan is adjudicated later.
CREATE TABLE read_requests (
    id          TEXT PRIMARY KEY,              -- uuid4
    scan_id     INTEGER NOT NULL REFERENCES scans(id),
    reviewer_id INTEGER NOT NULL REFERENCES annotators(id),
    reason      TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    workstation TEXT NOT NULL DEFAULT ''
);
CREATE INDEX read_requests_scan ON read_requests(scan_id, created_at);

-- Labels the model confidently disagrees with (confident learning on out-of-fold probabilities),
-- from the latest search only: a new search replaces every row.
CREATE TABLE suspect_labels (
    scan_id         INTEGER PRIMARY KEY REFERENCES scans(id) ON DELETE CASCADE,
    given           TEXT NOT NULL,         -- the training label when flagged
    suggested       TEXT NOT NULL,         -- the class the model believes
    self_confidence REAL NOT NULL,         -- out-of-fold probability of the given label
    margin          REAL NOT NULL,         -- p(suggested) - p(given)
    extractor       TEXT NOT NULL,
    found_at        TEXT NOT NULL
);
"""

# Series and studies. In a project whose labelling unit is a series or a study (meta 'unit'), a
# `scans` row is one unit (uid = Series or Study Instance UID), so everything keyed by scan id
# (labels, queue, review, export, packages) works on units; its files are `slices` rows, grouped in
# `series` rows whose `layout` says how the viewer stacks them. Image projects leave both empty.
UNITS_DDL = """
CREATE TABLE IF NOT EXISTS series (
    id          INTEGER PRIMARY KEY,
    uid         TEXT NOT NULL UNIQUE,   -- Series Instance UID, or a multi-frame file's SOP Instance UID
    scan_id     INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,   -- the unit it belongs to
    study_uid   TEXT,
    number      INTEGER,
    description TEXT,
    modality    TEXT,
    images      INTEGER NOT NULL DEFAULT 0,
    layout      TEXT NOT NULL DEFAULT '[]',  -- JSON [{"label", "n", "spacing", "problems"}] per stack
    dirty       INTEGER NOT NULL DEFAULT 1   -- slices added since the layout was computed
);
CREATE INDEX IF NOT EXISTS series_scan ON series(scan_id);

CREATE TABLE IF NOT EXISTS slices (
    id              INTEGER PRIMARY KEY,
    series_id       INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
    uid             TEXT NOT NULL UNIQUE,      -- SOP Instance UID
    pixel_hash      TEXT NOT NULL,
    root_id         INTEGER NOT NULL REFERENCES roots(id),
    relpath         TEXT NOT NULL,
    file_size       INTEGER NOT NULL,
    file_mtime      REAL NOT NULL,
    rows            INTEGER NOT NULL,
    columns         INTEGER NOT NULL,
    frames          INTEGER NOT NULL,
    position        TEXT,                      -- JSON Image Position (Patient), mm
    orientation     TEXT,                      -- JSON Image Orientation (Patient)
    instance_number INTEGER,
    echo            INTEGER,
    temporal        INTEGER,
    acquisition     INTEGER,
    image_type      TEXT,
    stack           INTEGER NOT NULL DEFAULT 0,   -- index into series.layout
    ordinal         INTEGER NOT NULL DEFAULT 0,   -- place within the stack
    z               REAL,                         -- position along the slice normal, mm
    import_id       INTEGER REFERENCES imports(id),
    UNIQUE (root_id, relpath)
);
CREATE INDEX IF NOT EXISTS slices_series ON slices(series_id, stack, ordinal);

-- Pooled feature vectors of each series, so "why this study" can name the series behind a score.
CREATE TABLE IF NOT EXISTS series_features (
    set_id    INTEGER NOT NULL REFERENCES feature_sets(id) ON DELETE CASCADE,
    series_id INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
    vector    BLOB NOT NULL,
    PRIMARY KEY (set_id, series_id)
) WITHOUT ROWID;
"""


def _add_units(conn: sqlite3.Connection) -> None:
    # statement by statement: executescript would commit the migration's transaction
    statement = ""
    for line in UNITS_DDL.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""


# Version 3: the audit sample and the stop set ("when can I stop?", aldesk.app.progress).
AUDIT_V3 = [
    """-- Scans mixed into a reader's queue as audit scans (unmarked to the reader), drawn in a fixed random
-- order: their labels estimate the model's accuracy without the active queue's bias.
CREATE TABLE IF NOT EXISTS audit_draws (
    scan_id   INTEGER PRIMARY KEY REFERENCES scans(id) ON DELETE CASCADE,
    drawn_at  TEXT NOT NULL,
    annotator TEXT NOT NULL,              -- whose queue it was mixed into
    n_labels  INTEGER NOT NULL            -- training labels when drawn
)""",
    """-- Each model's predicted class on the fixed stop set, as plain arrays: successive models' agreement
-- says when the model has stopped changing. Only the newest few models keep a row.
CREATE TABLE IF NOT EXISTS stop_predictions (
    model_id  INTEGER PRIMARY KEY REFERENCES models(id) ON DELETE CASCADE,
    scan_ids  BLOB NOT NULL,              -- int64 little-endian
    predicted BLOB NOT NULL               -- int16 little-endian class index, one per scan id
)""",
]


def _v2_to_v3(conn: sqlite3.Connection) -> None:
    for statement in AUDIT_V3:
        conn.execute(statement)


# Version 4: who may send this project labels. A package is accepted only with a valid HMAC-SHA256 under
# a key the project holds: its own (meta 'package_secret', shared by its raw copies and backups), the
# key of a hand-out it issued, or a key a trusted project exported ("aldesk package trust").
PACKAGE_KEYS_V4 = """
-- A reader's offline copy, issued by this project. Its secret is shared with that copy only.
CREATE TABLE IF NOT EXISTS handouts (
    id           TEXT PRIMARY KEY,              -- uuid4: the key id the copy's packages name
    annotator_id INTEGER NOT NULL REFERENCES annotators(id),
    role         TEXT NOT NULL,                 -- the reader's role when issued: annotator | reviewer | lead
    secret       TEXT NOT NULL,                 -- hex, 32 random bytes
    issued_at    TEXT NOT NULL,
    deidentified INTEGER NOT NULL
);

-- The scans a hand-out was issued for, by the reference the copy's packages use for them.
CREATE TABLE IF NOT EXISTS handout_scans (
    handout_id TEXT NOT NULL REFERENCES handouts(id) ON DELETE CASCADE,
    ref        TEXT NOT NULL,
    scan_id    INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
    PRIMARY KEY (handout_id, ref)
) WITHOUT ROWID;

-- Keys exchanged with other projects: 'sign' keys this project made and gave away (its packages
-- carry a MAC under each), 'verify' keys another project gave this one (its packages are accepted).
CREATE TABLE IF NOT EXISTS package_keys (
    id           TEXT PRIMARY KEY,              -- uuid4
    use          TEXT NOT NULL CHECK (use IN ('sign', 'verify')),
    secret       TEXT NOT NULL,                 -- hex, 32 random bytes
    project_id   TEXT NOT NULL,                 -- the project that made the key
    project_name TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
"""


def _v3_to_v4(conn: sqlite3.Connection) -> None:
    import secrets

    for statement in _statements(PACKAGE_KEYS_V4):
        conn.execute(statement)
    conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('package_secret', ?)", (secrets.token_hex(32),))


def _statements(script: str) -> list[str]:
    """The statements of a DDL script (executescript would commit the migration's transaction)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return out


# Version 5: the label table is looked up by scan (history, read requests, "is this scan labelled") and by
# replaced_by (undo, and the deferred foreign-key check SQLite runs when a changed label's new row is
# inserted): without these, every changed label scanned the whole table (2,000 changes at 200k rows: 157 s).
# features_set_scan repeats the key of a table whose rows carry the vectors: counting a set's vectors
# (is any missing? has the set changed?) reads its small pages, not 120 MB of vectors at 100k scans.
INDEXES_V5 = """
CREATE INDEX IF NOT EXISTS labels_scan ON labels(scan_id, annotator_id, created_at);
CREATE INDEX IF NOT EXISTS labels_replaced_by ON labels(replaced_by) WHERE replaced_by IS NOT NULL;
CREATE INDEX IF NOT EXISTS features_set_scan ON features(set_id, scan_id);
"""


def _v4_to_v5(conn: sqlite3.Connection) -> None:
    for statement in _statements(INDEXES_V5):
        conn.execute(statement)


# version -> DDL that creates it from nothing
CREATE_SCRIPTS: dict[int, str] = {1: SCHEMA_V1, 2: SCHEMA_V1 + UNITS_DDL,
                                  3: SCHEMA_V1 + UNITS_DDL + "\n" + ";\n".join(AUDIT_V3) + ";\n"}
CREATE_SCRIPTS[4] = CREATE_SCRIPTS[3] + PACKAGE_KEYS_V4
CREATE_SCRIPTS[5] = CREATE_SCRIPTS[4] + INDEXES_V5

# from_version -> function upgrading the open connection to from_version + 1 (inside a transaction)
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _add_units, 2: _v2_to_v3, 3: _v3_to_v4,
                                                              4: _v4_to_v5}
