"""LaTeX from results rows: escaped text, formatted numbers, booktabs tables, number macros.

Everything here is mechanical and tested on small hand-made rows; what the tables of the report
contain is decided in ``report/content.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
            "<": r"\textless{}", ">": r"\textgreater{}"}


def escape(text: object) -> str:
    """``text`` as LaTeX that prints it literally (special characters escaped)."""
    return "".join(_SPECIAL.get(ch, ch) for ch in str(text))


def fmt_number(value: object, digits: int = 2, thousands: bool = False) -> str:
    """A CSV value as a fixed-point number (``digits`` decimals; ``thousands`` groups with thin
    spaces); blank or non-numeric values come back escaped as they are ('' prints as a dash)."""
    if value in ("", None):
        return "--"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return escape(value)
    if math.isnan(number):
        return "--"
    text = (f"{number:,.{digits}f}" if thousands else f"{number:.{digits}f}").replace(",", r"\,")
    return "$-$" + text[1:] if text.startswith("-") else text


def fmt_megabytes(value: object, digits: int = 3) -> str:
    """Bytes as megabytes (10^6 bytes) with ``digits`` decimals."""
    if value in ("", None):
        return "--"
    return fmt_number(float(value) / 1e6, digits)


@dataclass(frozen=True)
class Column:
    """One table column: where its value comes from (a row key or a function of the row), its
    header (LaTeX, not escaped), how a value prints (a function to a LaTeX string; the default
    escapes the text) and its alignment."""

    value: str | Callable[[dict], object]
    header: str
    fmt: Callable[[object], str] = escape
    align: str = "l"

    def cell(self, row: dict) -> str:
        """The LaTeX of this column's cell in ``row``."""
        raw = self.value(row) if callable(self.value) else row.get(self.value, "")
        return self.fmt(raw)


def acc(key: str, header: str = "top-1 (\\%)") -> Column:
    """A right-aligned accuracy column, two decimals."""
    return Column(key, header, lambda v: fmt_number(v, 2), "r")


def tabular(rows: list[dict], columns: list[Column]) -> str:
    """A booktabs tabular of ``rows`` (one line per row) under the columns' headers."""
    lines = [r"\begin{tabular}{" + "".join(c.align for c in columns) + "}", r"\toprule",
             " & ".join(c.header for c in columns) + r" \\", r"\midrule"]
    lines += [" & ".join(c.cell(r) for c in columns) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def table(rows: list[dict], columns: list[Column], caption: str, label: str, wide: bool = False,
          placement: str = "tbp") -> str:
    """A floating table (``table*`` across both columns when ``wide``): caption above, as ICML
    sets it, the tabular shrunk to the column width only when it is wider."""
    env = "table*" if wide else "table"
    return "\n".join([
        rf"\begin{{{env}}}[{placement}]", r"\centering", rf"\caption{{{caption}}}", rf"\label{{{label}}}",
        r"\small", r"\begin{adjustbox}{max width=\linewidth}", tabular(rows, columns),
        r"\end{adjustbox}", rf"\end{{{env}}}", ""])


def missing_table(caption: str, label: str, what: str, wide: bool = False) -> str:
    """The float a table takes when its results file is absent: same caption and label, and a
    box naming what to run (so references resolve and the gap is visible)."""
    env = "table*" if wide else "table"
    return "\n".join([rf"\begin{{{env}}}[tbp]", r"\centering", rf"\caption{{{caption}}}",
                      rf"\label{{{label}}}", rf"\missingresult{{{escape(what)}}}", rf"\end{{{env}}}", ""])


def number_macros(numbers: dict[str, str]) -> str:
    """``\\setnumber{key}{value}`` lines for the report's ``\\N{key}`` (values are LaTeX)."""
    return "".join(rf"\setnumber{{{key}}}{{{value}}}" + "\n" for key, value in sorted(numbers.items()))
