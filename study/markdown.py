"""Markdown tables of results rows for the READMEs' generated blocks (``study.readme``)."""

from __future__ import annotations


def readable(value, digits: int = 4) -> str:
    """A table cell: a number with more than ``digits`` decimals (a float32 artefact such as
    85.97999811172485, or a ratio such as 0.0833...) rounded to ``digits`` decimals; the rest as is."""
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    decimals = text.split(".", 1)[1] if "." in text and "e" not in text.lower() else ""
    if len(decimals) <= digits:
        return text
    short = f"{number:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if short == "-0" else short


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """A GitHub markdown table of ``columns`` from ``rows`` (missing values left blank, long
    decimals rounded by ``readable``)."""
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(readable(r.get(c, "")) for c in columns) + " |\n" for r in rows)


def captioned(caption: str, rows: list[dict], columns: list[str]) -> list[str]:
    """``[caption, a blank line, the table]`` as one part, or no part when there are no rows."""
    return [f"{caption}:\n\n" + markdown_table(rows, columns)] if rows else []
