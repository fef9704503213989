"""Build the study's report: tables and numbers from the results, then the PDF.

    python report/build.py --profile cpu --dataset cifar10   # -> results/cifar10-cpu/report.pdf

Writes the generated LaTeX (tables/*.tex, numbers.tex, paths.tex) into
report/build/<dataset>-<profile>/, runs pdflatex + bibtex there, checks the log and the PDF
(no undefined reference or citation, no '??', no overfull box, no number missing from the results,
main part within the page range), and copies the PDF to results/<dataset>-<profile>/report.pdf.
Where LaTeX is not installed it writes the tables, says how to install it, and exits 0.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPORT = Path(__file__).resolve().parent
sys.path.insert(0, str(REPORT.parent))  # run as a script from anywhere

from common.flags import Parser, add_variant_args  # noqa: E402
from common.profiles import run_profile  # noqa: E402
from common.results import atomic_path, results_root, run_folder  # noqa: E402
from report.content import TABLES, numbers  # noqa: E402
from report.latex import number_macros  # noqa: E402

LATEX_PACKAGES = "texlive-latex-base texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended"
MAIN_PAGES = (6, 10)
OVERFULL_TOLERANCE_PT = 1.0


def generate(results: Path, build: Path, dataset: str, profile: str) -> dict[str, str]:
    """Write tables/<name>.tex for every table of ``report.content.TABLES``, numbers.tex and
    paths.tex into ``build``; return the numbers (key -> LaTeX value)."""
    (build / "tables").mkdir(parents=True, exist_ok=True)
    for name, make in TABLES.items():
        (build / "tables" / f"{name}.tex").write_text(make(results))
    values = numbers(results, dataset, profile)
    (build / "numbers.tex").write_text(number_macros(values))
    (build / "paths.tex").write_text("\\renewcommand{\\resultsdir}{" + results.resolve().as_posix() + "/}\n")
    return values


def used_numbers(tex: str) -> set[str]:
    """Keys of every ``\\N{key}`` in ``tex``."""
    return set(re.findall(r"\\N\{([^}]+)\}", tex))


def log_problems(log: str) -> list[str]:
    """What in a pdflatex/bibtex log makes the PDF unfit: undefined references or citations,
    missing files, overfull boxes wider than OVERFULL_TOLERANCE_PT."""
    problems = []
    for pattern, what in ((r"Reference `([^']+)' on page \d+ undefined", "undefined reference"),
                          (r"Citation `([^']+)' on page \d+ undefined", "undefined citation"),
                          (r"File `([^']+)' not found", "missing file")):
        problems += [f"{what}: {m}" for m in sorted(set(re.findall(pattern, log)))]
    for amount, where in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\) (.*)", log):
        if float(amount) > OVERFULL_TOLERANCE_PT:
            problems.append(f"overfull box {amount}pt {where.strip()}")
    return problems


def main_part_pages(aux: str) -> int | None:
    """Page of ``\\label{lastmainpage}`` (the end of the main part) from the .aux text."""
    found = re.search(r"\\newlabel\{lastmainpage\}\{\{[^}]*\}\{(\d+)\}", aux)
    return int(found.group(1)) if found else None


def _run(cmd: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, errors="replace")
    if done.returncode != 0 and cmd[0] != "bibtex":
        tail = "\n".join(done.stdout.splitlines()[-25:])
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd}:\n{tail}")
    return done.stdout


def results_epoch(results: Path) -> int:
    """The report's date, in seconds since 1970: the latest ``finished_utc`` among the provenance
    sidecars of ``results`` (0 without any), so the same results give a byte-identical PDF."""
    import calendar
    import json
    import time

    stamps = []
    for sidecar in results.glob("*/*.json"):
        finished = json.loads(sidecar.read_text()).get("finished_utc")
        if isinstance(finished, str) and finished.endswith("Z"):
            stamps.append(calendar.timegm(time.strptime(finished, "%Y-%m-%dT%H:%M:%SZ")))
    return max(stamps, default=0)


def compile_pdf(build: Path, epoch: int = 0) -> tuple[Path, str]:
    """pdflatex, bibtex, pdflatex x2 on report/main.tex inside ``build``, dated ``epoch`` (seconds
    since 1970: creation date, ``\\today`` and the PDF's ID, so a rebuild of the same results is
    byte-identical); returns (PDF, last log)."""
    env = {**os.environ, "TEXINPUTS": f".:{REPORT}:", "BIBINPUTS": f"{REPORT}:", "BSTINPUTS": ":",
           "SOURCE_DATE_EPOCH": str(epoch), "FORCE_SOURCE_DATE": "1"}
    latex = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error",
             str(REPORT / "main.tex")]
    _run(latex, build, env)
    _run(["bibtex", "main"], build, env)
    _run(latex, build, env)
    _run(latex, build, env)
    return build / "main.pdf", (build / "main.log").read_text(errors="replace")


def pdf_text(pdf: Path) -> str | None:
    """The PDF's text via pdftotext (None where poppler-utils is not installed)."""
    if not shutil.which("pdftotext"):
        return None
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, errors="replace").stdout


def build_report(dataset: str, profile: str, pages: tuple[int, int] = MAIN_PAGES,
                 build: Path | None = None) -> tuple[Path | None, list[str]]:
    """Generate, compile and check in ``build`` (default report/build/<dataset>-<profile>/);
    returns (results/<run>/report.pdf, or None without LaTeX; the problems found). The PDF is
    copied even with problems, so they can be looked at."""
    run = run_folder(dataset, profile)
    results = results_root() / run
    if not results.is_dir():
        raise FileNotFoundError(f"no results in {results}: run ./run_all.sh with PROFILE={profile} "
                                f"DATASET={dataset} first")
    build = build or REPORT / "build" / run
    values = generate(results, build, dataset, profile)
    sources = [REPORT / "main.tex", *sorted((build / "tables").glob("*.tex"))]
    used = set().union(*(used_numbers(path.read_text()) for path in sources))
    problems = [f"no number for \\N{{{key}}} (its results file is missing)" for key in sorted(used - set(values))]
    if not shutil.which("pdflatex"):
        print(f"[report] LaTeX is not installed, so no PDF: tables and numbers are in {build}. "
              f"Install it with: apt-get install {LATEX_PACKAGES}")
        return None, problems
    pdf, log = compile_pdf(build, results_epoch(results))
    problems += log_problems(log + (build / "main.blg").read_text(errors="replace")
                             if (build / "main.blg").exists() else log)
    text = pdf_text(pdf)
    if text is not None and "??" in text:
        problems.append("'??' in the PDF (an unresolved reference)")
    main_pages = main_part_pages((build / "main.aux").read_text(errors="replace"))
    if main_pages is None or not pages[0] <= main_pages <= pages[1]:
        problems.append(f"main part is {main_pages} pages, outside {pages[0]}-{pages[1]}")
    target = results / "report.pdf"
    if target.exists() and target.read_bytes() == pdf.read_bytes():
        print(f"[report] {target} is unchanged (main part {main_pages} pages)")
        return target, problems
    with atomic_path(target) as tmp:
        shutil.copyfile(pdf, tmp)
    print(f"[report] wrote {target} (main part {main_pages} pages)")
    return target, problems


def main(argv=None):
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", required=True, choices=["smoke", "cpu", "full"])
    add_variant_args(parser)   # a variant's run (--set / --variant) builds from its own folder
    parser.add_argument("--dataset", default="cifar100", choices=["cifar100", "cifar10"])
    parser.add_argument("--pages", type=int, nargs=2, default=list(MAIN_PAGES), metavar=("MIN", "MAX"),
                        help="allowed pages of the main part (before the references)")
    args = parser.parse_args(argv)
    profile = run_profile(args, announce=False).name   # a variant's own folder under --set / $OVERRIDES
    _, problems = build_report(args.dataset, profile, tuple(args.pages))
    for problem in problems:
        print(f"[report] problem: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
