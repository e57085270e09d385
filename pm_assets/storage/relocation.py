"""A data directory that was copied or moved works on its own.

MLflow's tracking database records absolute artifact locations, so a copy would read (and train
into) the original's files. On first use in a process, the default store (`mlflow.db` in the data
directory) is checked against the directory it is in now; if it was made elsewhere, every path under
the old directory is rewritten to the new one, in one transaction, and so is the champion pointer.
Everything else under the data directory is stored relative to it (or, like dbt's parse state,
rebuilt when it no longer matches).
"""

import functools
import json
import logging
import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlparse

from pm_assets.storage.atomic import write_atomic

log = logging.getLogger(__name__)


def _recorded_root(con: sqlite3.Connection, experiment: str) -> Path | None:
    """The data directory the store was made in: where the platform experiment's artifacts were to go."""
    try:
        row = con.execute("select artifact_location from experiments where name = ?", (experiment,)).fetchone()
    except sqlite3.OperationalError:  # not an MLflow store yet
        return None
    if not row or not row[0]:
        return None
    location = Path(unquote(urlparse(row[0]).path) if row[0].startswith("file:") else row[0])
    return location.parent if location.name == "mlartifacts" else None


def _text_columns(con: sqlite3.Connection) -> list[tuple[str, str]]:
    tables = [r[0] for r in con.execute("select name from sqlite_master where type = 'table'")]
    return [(t, c[1]) for t in tables for c in con.execute(f'pragma table_info("{t}")')
            if any(kind in (c[2] or "").upper() for kind in ("CHAR", "TEXT", "CLOB"))]


class DamagedPointer(ValueError):
    """The champion pointer file cannot be read as one."""


def read_pointer(pointer: Path) -> dict:
    """The champion pointer (`{"model", "version", "tracking_uri", …}`), or a one-line error naming the file and the remedy."""
    try:
        champion = json.loads(pointer.read_text())
        if not isinstance(champion, dict) or not str(champion.get("version", "")).isdigit() or not champion.get("model"):
            raise ValueError("not a JSON object with a model and a numeric version")
    except (ValueError, UnicodeDecodeError) as error:
        raise DamagedPointer(f"the champion pointer {pointer} is damaged ({error}): remove it; the next promotion writes it "
                             "again, and the service follows the registry's champion alias meanwhile") from None
    return champion


def relocate(database: Path, root: Path, experiment: str, pointer: Path) -> Path | None:
    """Rewrite `database` (and `pointer`) from the directory they were made in to `root`; return the old one,
    or None when nothing had moved. A damaged pointer stops it before anything is rewritten."""
    if not database.exists():
        return None
    champion = read_pointer(pointer) if pointer.exists() else None
    with sqlite3.connect(database) as con:  # one transaction: committed whole or not at all
        old = _recorded_root(con, experiment)
        if old is None or old == root:
            return None
        columns = _text_columns(con)
        for before, after in ((old.as_uri() + "/", root.as_uri() + "/"), (str(old) + "/", str(root) + "/")):
            for table, column in columns:
                con.execute(f'update "{table}" set "{column}" = replace("{column}", ?, ?) where instr("{column}", ?) = 1',
                            (before, after, before))
    if champion is not None:
        champion["tracking_uri"] = f"sqlite:///{database}"
        write_atomic(pointer, json.dumps(champion))
    log.warning("the data directory moved from %s to %s: rewrote the MLflow store's paths to point here", old, root)
    return old


@functools.cache
def relocate_once(database: str, root: str, experiment: str, pointer: str) -> Path | None:
    """`relocate`, once per process and directory."""
    return relocate(Path(database), Path(root), experiment, Path(pointer))
