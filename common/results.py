"""Where outputs go, atomic file writes, and the results contract (CSV + JSON provenance).

Every results CSV has one row per measurement and starts with ``dataset`` and ``profile``
columns; beside it a JSON sidecar of the same stem records provenance (profile, seed, git commit,
device and kind of machine, library versions, wall time, command line) and the sha256 of the CSV
it describes, so that a CSV edited, damaged or copied in is refused when read (``read_rows``).
"""

from __future__ import annotations

import csv
import glob
import hashlib
import importlib.metadata
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import torch

from common.errors import UserError
from common.numerics import cpu_model, machine_kind

# Where outputs go (no torch there, so the runner's first line needs none): re-exported here.
from common.paths import PROJECT_ROOT, results_root, run_folder  # noqa: E402


def results_dir(dataset: str, profile: str, task: str) -> Path:
    """``results/<dataset>-<profile>/<task>/``, created."""
    path = results_root() / run_folder(dataset, profile) / task
    path.mkdir(parents=True, exist_ok=True)
    return path


@lru_cache(maxsize=None)
def _sha256_of(path: Path, stamp: tuple[int, int]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 (hex) of the bytes of ``path``. Computed once per process while the file's size and
    modification time stay the same: a memo of this process only, which decides nothing."""
    path = Path(path).resolve()
    stat = path.stat()
    return _sha256_of(path, (stat.st_size, stat.st_mtime_ns))


def _new_file_mode() -> int:
    """The permission bits ``open()`` gives a new file under the current umask (0644 usually)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # another user's process
        return True
    return True


def remove_orphaned_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files that ``atomic_path`` made for ``path`` in processes that no
    longer run (killed before they could clean up: SIGKILL, power loss); returns them."""
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            with suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    Readers never see a half-written file, and a crash leaves the old file (if any) in place. The
    temporary file (``.<name>.<pid>.<random>.tmp``) is removed when the block fails or is
    interrupted; one left by a process that was killed outright is removed by the next write of
    ``path`` (``remove_orphaned_temporaries``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphaned_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _new_file_mode())  # mkstemp makes 0600; a result is as readable as any new file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# What a run writes is not the code that wrote it: results (CSVs, figures, completion records) a
# stage writes would otherwise make every later stage of the same run "dirty".
NOT_CODE = (":(exclude)results",)


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, check=True)


def git_state() -> dict:
    """Which code wrote a result: ``git_commit`` (HEAD's hash; 'unknown' outside git), ``dirty``
    (True when tracked files outside ``results/`` differ from HEAD or files git does not ignore are
    untracked there: a new
    module counts) and, when dirty, ``diff_sha256``: the sha256 of ``git diff HEAD`` followed by
    the path and content of every untracked, not-ignored file, so two dirty runs of the same
    changes carry the same hash."""
    try:
        commit = _git("rev-parse", "HEAD").stdout.decode().strip()
        diff = _git("diff", "HEAD", "--binary", "--", ".", *NOT_CODE).stdout
        untracked = _git("ls-files", "--others", "--exclude-standard", "-z", "--", ".", *NOT_CODE
                         ).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        return {"git_commit": "unknown", "dirty": None}
    untracked = sorted(p for p in untracked if p)
    if not diff and not untracked:
        return {"git_commit": commit, "dirty": False}
    digest = hashlib.sha256(diff)
    for name in untracked:
        path = PROJECT_ROOT / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b""))
    return {"git_commit": commit, "dirty": True, "diff_sha256": digest.hexdigest()}


def git_commit() -> str:
    """HEAD's hash with ``-dirty`` when the tree differs from it (``git_state``), for checkpoint
    metadata; 'unknown' outside git."""
    state = git_state()
    return state["git_commit"] + ("-dirty" if state["dirty"] else "")


def library_versions() -> dict:
    """Versions of the libraries whose behaviour the numbers depend on."""
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("torchvision", "torchao", "grad-cam", "numpy"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_description(device: torch.device | str) -> str:
    """Human-readable device, e.g. 'cpu (AMD EPYC, 2 threads)' or 'cuda (NVIDIA H100)'."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({cpu_model()}, {torch.get_num_threads()} threads)"


def command_line() -> str:
    """How this process was started, e.g. ``python -m common.train --profile cpu``."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name != "__main__":
        head = f"python -m {spec.name.removesuffix('.__main__')}"
    else:
        script = Path(sys.argv[0]).resolve()
        head = f"python {script.relative_to(PROJECT_ROOT) if script.is_relative_to(PROJECT_ROOT) else script}"
    return " ".join([head] + sys.argv[1:])


def provenance(profile: str, dataset: str, seed: int, device: torch.device | str,
               started: float, **extra) -> dict:
    """The JSON sidecar's content; ``started`` is a ``time.time()`` stamp for the wall time.
    ``git_commit``, ``dirty`` and (when dirty) ``diff_sha256`` tie the numbers to code
    (``git_state``); committed results come from a clean tree (``dirty: false``)."""
    return {
        "dataset": dataset,
        "profile": profile,
        "seed": seed,
        **git_state(),
        "device": device_description(device),
        "machine": machine_kind(device),
        "versions": library_versions(),
        "command": command_line(),
        "wall_seconds": round(time.time() - started, 2),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
    }


def write_results(rows: list[dict], csv_path: str | os.PathLike, prov: dict) -> Path:
    """Write ``rows`` as CSV (``dataset`` and ``profile`` columns first) and ``<stem>.json``
    (``prov`` plus ``csv_sha256``, the sha256 of the CSV's bytes).

    Both files are written atomically. Returns the CSV path.
    """
    csv_path = Path(csv_path)
    rows = [{"dataset": prov["dataset"], "profile": prov["profile"], **row} for row in rows]
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    with atomic_path(csv_path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        digest = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()
    with atomic_path(csv_path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({**prov, CSV_SHA256: digest}, indent=2, sort_keys=True) + "\n")
    print(f"[results] wrote {csv_path} ({len(rows)} rows) and {csv_path.with_suffix('.json').name}")
    return csv_path


def read_sidecar(csv_path: str | os.PathLike) -> dict:
    """The provenance JSON beside a results CSV ({} if there is none)."""
    sidecar = Path(csv_path).with_suffix(".json")
    if not sidecar.exists():
        return {}
    try:
        return json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{sidecar} is damaged ({exc}); rerun the script that writes it, or ./run_all.sh, "
                        "which reruns it") from None


CSV_SHA256 = "csv_sha256"   # the sidecar's record of the bytes of the CSV it describes


def read_rows(csv_path: str | os.PathLike) -> list[dict]:
    """Rows of a results CSV as dicts of strings ([] if the file does not exist). A CSV whose
    bytes are not those its sidecar records (edited, damaged, copied in), or, without a sidecar's
    record, one cut short (its last line unfinished, a row of fewer or more cells than the header),
    is a ``UserError`` naming it and the script that wrote it, to be rerun."""
    csv_path = Path(csv_path)
    if not csv_path.exists():
        return []
    data = csv_path.read_bytes()
    sidecar = read_sidecar(csv_path)
    script = (sidecar.get("command") or "the script that writes it").split(" --")[0]
    if CSV_SHA256 in sidecar and hashlib.sha256(data).hexdigest() != sidecar[CSV_SHA256]:
        raise UserError(f"{csv_path} is not the file its script wrote (edited, damaged or copied in: its "
                        f"sha256 differs from the one in {csv_path.with_suffix('.json').name}); rerun "
                        f"{script}, or ./run_all.sh, which reruns it")
    damaged = f"{csv_path} is damaged (%s); rerun {script}, or ./run_all.sh, which reruns it"
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise UserError(damaged % "not text") from None
    if text and not text.endswith("\n"):      # csv.writer ends every row with a line break
        raise UserError(damaged % "its last line is cut short")
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    for number, row in enumerate(rows, start=2):
        if None in row or None in row.values():
            raise UserError(damaged % f"line {number} has not the {len(reader.fieldnames)} cells of the header")
    return rows
