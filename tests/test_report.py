"""The report's LaTeX generators on small hand-made rows, and the builder on a tiny results folder."""

import os
import shutil
import subprocess

import pytest

from report import build as builder
from report.content import TABLES, numbers, students
from report.latex import Column, acc, escape, fmt_megabytes, fmt_number, number_macros, table, tabular

HAS_LATEX = shutil.which("pdflatex") is not None


def test_escape_and_number_formats():
    assert escape("a_b 50% & $x #1 {y} ~^") == r"a\_b 50\% \& \$x \#1 \{y\} \textasciitilde{}\textasciicircum{}"
    assert fmt_number("84.8") == "84.80" and fmt_number(-73.38) == "$-$73.38"
    assert fmt_number(2375978, 0, thousands=True) == r"2\,375\,978"
    assert fmt_number("") == "--" and fmt_number("n/a") == "n/a" and fmt_number(float("nan")) == "--"
    assert fmt_megabytes(9532939) == "9.533" and fmt_megabytes("") == "--"


def test_tabular_has_one_cell_per_column_and_booktabs_rules():
    rows = [{"model": "vgg_11", "top1_acc": "84.8"}, {"model": "S_I", "top1_acc": ""}]
    tex = tabular(rows, [Column("model", "model"), acc("top1_acc"),
                         Column(lambda r: r["model"].upper(), "upper")])
    lines = tex.splitlines()
    assert lines[0] == r"\begin{tabular}{lrl}" and lines[1] == r"\toprule" and lines[-2] == r"\bottomrule"
    body = [line for line in lines if line.endswith(r"\\")]
    assert body == [r"model & top-1 (\%) & upper \\", r"vgg\_11 & 84.80 & VGG\_11 \\", r"S\_I & -- & S\_I \\"]


def test_table_float_caption_label_and_width_guard():
    tex = table([{"a": 1}], [Column("a", "a")], "Caption.", "tab:x", wide=True)
    assert tex.startswith(r"\begin{table*}[tbp]") and tex.rstrip().endswith(r"\end{table*}")
    assert tex.index(r"\caption{Caption.}") < tex.index(r"\begin{tabular}")   # ICML: caption above
    assert r"\label{tab:x}" in tex and r"\begin{adjustbox}{max width=\linewidth}" in tex
    assert number_macros({"b": "2", "a": "1"}) == "\\setnumber{a}{1}\n\\setnumber{b}{2}\n"


def test_every_table_says_what_is_missing_on_an_empty_folder(tmp_path):
    for name, make in TABLES.items():
        tex = make(tmp_path)
        assert r"\missingresult" in tex and r"\label{" in tex, name
    assert numbers(tmp_path, "cifar10", "smoke") == {"dataset": "CIFAR-10", "profile": "smoke"}


def test_students_table_against_hand_computed_gain(tmp_path, write_csv):
    write_csv(tmp_path / "distillation/students.csv", [
        {"method": "independent", "teacher": "none", "seed": "0", "top1_acc": "80.0", "train_seconds": "10",
         "selected_settings": ""},
        {"method": "dkd_tuned", "teacher": "vgg16", "seed": "0", "top1_acc": "81.25", "train_seconds": "12",
         "selected_settings": "dkd_beta2"}])
    write_csv(tmp_path / "distillation/alignment.csv", [
        {"method": "dkd_tuned", "kl_to_teacher": "0.01234", "top1_agreement": "90", "prob_cosine": "0.95"}])
    tex = students(tmp_path)
    assert r"independent & 1 & 80.00 & 0.00 & -- & -- & -- & 10 \\" in tex
    assert r"dkd\_tuned (dkd\_beta2) & 1 & 81.25 & 1.25 & 0.0123 & 90.00 & 0.950 & 12 \\" in tex
    # several seeds: mean +- sample std, gains paired by seed (+3 and +2: 2.50 +- 0.71)
    write_csv(tmp_path / "distillation/students.csv", [
        {"method": m, "teacher": "none", "seed": seed, "top1_acc": acc, "train_seconds": "10", "selected_settings": ""}
        for m, accs in (("independent", ("80.0", "82.0")), ("kd", ("83.0", "84.0")), ("label_smoothing", ("80.0", "81.0")))
        for seed, acc in enumerate(accs)])
    tex = students(tmp_path)
    assert r"independent & 2 & 81.00 $\pm$ 1.41 & 0.00 $\pm$ 0.00 &" in tex
    assert r"kd & 2 & 83.50 $\pm$ 0.71 & 2.50 $\pm$ 0.71 &" in tex
    assert r"label\_smoothing & 2 & 80.50 $\pm$ 0.71 & $-$0.50 $\pm$ 0.71 &" in tex  # a real minus


def test_log_checks_find_what_makes_a_pdf_unfit():
    log = ("LaTeX Warning: Reference `fig:x' on page 3 undefined on input line 5.\n"
           "LaTeX Warning: Citation `foo2020' on page 1 undefined on input line 9.\n"
           "Overfull \\hbox (12.5pt too wide) in paragraph at lines 10--12\n"
           "Overfull \\hbox (0.4pt too wide) in paragraph at lines 20--21\n")
    assert builder.log_problems(log) == ["undefined reference: fig:x", "undefined citation: foo2020",
                                         "overfull box 12.5pt in paragraph at lines 10--12"]
    assert builder.main_part_pages(r"\newlabel{lastmainpage}{{6.5}{7}{Recommendation}{}{}}") == 7
    assert builder.used_numbers(r"top-1 \N{vgg11.top1}\% and \N{dataset}") == {"vgg11.top1", "dataset"}


@pytest.mark.skipif(not HAS_LATEX, reason="pdflatex not installed (CI installs texlive)")
def test_generated_table_compiles_with_the_report_style(tmp_path):
    rows = [{"model": "vgg_11 & co", "top1_acc": "84.8", "size_bytes": "9532939"}]
    body = table(rows, [Column("model", "model"), acc("top1_acc"), Column("size_bytes", "MB", fmt_megabytes, "r")],
                 "A table of 50\\% things.", "tab:t")
    (tmp_path / "doc.tex").write_text("\\documentclass[10pt,twocolumn]{article}\\usepackage{icml_study}"
                                      "\\usepackage{adjustbox}\\begin{document}" + body + "\\end{document}\n")
    env = {"TEXINPUTS": f".:{builder.REPORT}:", "PATH": os.environ["PATH"]}
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


@pytest.mark.skipif(not HAS_LATEX, reason="pdflatex not installed (CI installs texlive)")
def test_builder_marks_missing_results_and_reports_the_page_count(tmp_path, monkeypatch, write_csv):
    results = tmp_path / "results"
    write_csv(results / "cifar10-smoke/baselines/baselines.csv", [
        {"model": m, "width": "0.125", "epochs": "1", "top1_acc": "50", "params": "1000"}
        for m in ("vgg11", "vgg16", "vgg19")])
    monkeypatch.setenv("RESULTS_DIR", str(results))
    pdf, problems = builder.build_report("cifar10", "smoke", build=tmp_path / "build")
    assert pdf == results / "cifar10-smoke" / "report.pdf" and pdf.stat().st_size > 10_000
    # numbers of absent files are reported, as is the page count; references all resolve
    assert any("no number for \\N{teacher.top1}" in p for p in problems)
    assert not [p for p in problems if p.startswith(("undefined", "missing file", "overfull"))]
    assert builder.main_part_pages((tmp_path / "build" / "main.aux").read_text()) is not None


def test_latency_captions_say_how_busy_the_machine_was():
    from report.content import load_caption
    assert load_caption([{"latency_ms": ""}]) == ""
    assert "not recorded" in load_caption([{"latency_ms": "5"}])
    assert "at most 30\\% of the cores" in load_caption([{"latency_ms": "5", "other_cpu_fraction": "0.3"},
                                                        {"latency_ms": "4", "other_cpu_fraction": "0.1"}])
