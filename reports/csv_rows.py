"""CSV of a report section or of its tickets: the rows behind each figure and chart."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from reports.figures import TICKET_COLUMNS


def csv_lines(rows: Iterable[dict], columns: list[str]) -> Iterator[str]:
    """The header, then one CSV line per row (a generator, so long exports stream)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def csv_text(rows: Iterable[dict], columns: list[str]) -> str:
    return "".join(csv_lines(rows, columns))


def ticket_csv_lines(rows: Iterable[dict]) -> Iterator[str]:
    return csv_lines(rows, list(TICKET_COLUMNS))
