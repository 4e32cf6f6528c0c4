"""Reading an arrived file: its bytes judged before pandas parses them (then `table.py`).

pandas crashes on a UTF-16 export, silently mis-parses a European (`;` and decimal `,`) one and
reads a cut-off copy as if it were whole. These checks name such problems in plain words first,
so a quarantined file comes with a reason its owner can act on, and they never raise.
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass, field
from typing import Literal

from bioprocessml.spec import CsvFormat

BOMS = [  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]
SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"PK\x03\x04": "a ZIP archive (an Excel .xlsx workbook?)",
    b"\xd0\xcf\x11\xe0": "an old Excel .xls / OLE document",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip archive",
}
UTF8_FAMILY = {"ascii", "utf-8", "utf-8-sig"}
DELIMITERS = ",;\t|"
SAMPLE_LINES = 20
COMMA_NUMBER = re.compile(r"^\s*[+-]?\d+,\d+\s*$")
DOT_NUMBER = re.compile(r"^\s*[+-]?\d*\.\d+([eE][+-]?\d+)?\s*$")


@dataclass(frozen=True)
class Finding:
    """One problem found in the raw file; `name` is the check id the report shows."""

    name: str
    reason: str
    severity: Literal["error", "warning"] = "error"
    column: str | None = None


@dataclass
class Sniffed:
    """The decoded text (None when the file cannot be read as text) and what was found."""

    text: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(f.severity == "error" for f in self.findings)


def sniff_file(data: bytes, fmt: CsvFormat) -> Sniffed:
    """Decode and inspect a file's bytes against the spec's CSV dialect; never raises."""
    out = Sniffed()
    if not data.strip():
        reason = "empty file (0 bytes)" if not data else "file holds only whitespace, no table"
        out.findings.append(Finding("empty", reason))
        return out
    text = decode_text(data, fmt.encoding, out.findings)
    if text is None:
        return out
    out.text = text
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:  # Unicode whitespace and line breaks that bytes.strip() keeps (U+0085, U+2028)
        out.findings.append(Finding("empty", "file holds only whitespace, no table"))
        return out
    first = lines[0].lstrip()
    if first[:1] in "{[<":
        kind = "HTML/XML" if first.startswith("<") else "JSON"
        out.findings.append(Finding("format", f"content looks like {kind}, not a CSV table"))
    elif len(lines) == 1:
        out.findings.append(Finding("rows", "header only, no data rows"))
    else:
        out.findings.extend(check_dialect(lines, fmt))
        if not out.failed:
            out.findings.extend(check_ending(text, lines, fmt.delimiter))
    return out


def detect_encoding(data: bytes) -> str | None:
    """A codec name for the bytes, or None for binary content. BOMs and UTF-16's NUL pattern
    are trusted before charset-normalizer, whose guesses on short files are often odd."""
    for bom, name in BOMS:
        if data.startswith(bom):
            return name
    if b"\x00" in data:
        even, odd = data[0::2].count(0), data[1::2].count(0)
        half = len(data) / 2
        if odd > 0.3 * half and even < 0.05 * half:
            return "utf-16-le (no byte-order mark)"
        if even > 0.3 * half and odd < 0.05 * half:
            return "utf-16-be (no byte-order mark)"
        return None
    for name in ("ascii", "utf-8"):
        try:
            data.decode(name)
            return name
        except UnicodeDecodeError:
            continue
    return _guess_8bit(data)


def _guess_8bit(data: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(data[:65536]).best()
    guess = codecs.lookup(best.encoding).name if best is not None else None
    high = bytes(range(128, 256))
    if guess is not None and len(high.decode(guess, errors="replace")) == len(high):
        return guess  # a single-byte code page: a plausible name to show the user
    try:
        data.decode("cp1252")
        return "cp1252 or latin-1 (8-bit)"
    except UnicodeDecodeError:
        return guess


def decode_text(data: bytes, expected: str, findings: list[Finding]) -> str | None:
    """The text if the bytes are readable in the spec's encoding, else None plus a finding."""
    for signature, kind in SIGNATURES.items():
        if data.startswith(signature):
            findings.append(Finding("binary", f"binary content, not text: {kind}"))
            return None
    found = detect_encoding(data)
    if found is None:
        findings.append(Finding("binary", "binary content (NUL bytes), not a text file"))
        return None
    text: str | None = None
    detail = ""
    try:
        text = data.decode(expected)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        detail = f" (byte 0x{data[exc.start]:02x} on line {line} is not {expected})"
    if text is None or not _compatible(found, codecs.lookup(expected).name):
        reason = f"encoding {found} detected; the spec expects {expected}{detail}"
        findings.append(Finding("encoding", reason))
        return None
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n")
    if controls > 0.01 * len(text):
        findings.append(
            Finding("binary", f"mostly non-text content ({controls} control characters)")
        )
        return None
    return text.removeprefix("\ufeff")


def _compatible(found: str, expected: str) -> bool:
    """Whether text detected as `found` reads correctly with the spec's codec `expected`."""
    if found == "ascii":
        return expected != "utf-16"
    if expected in UTF8_FAMILY:
        return found in UTF8_FAMILY
    if expected == "utf-16":
        return found == "utf-16"
    # A single-byte spec codec (latin-1, cp1252) decodes anything; real UTF-8 or UTF-16 would
    # turn into mojibake, so those are refused.
    return found not in UTF8_FAMILY and not found.startswith(("utf-16", "utf-32"))


def _rows(lines: list[str], delimiter: str) -> list[list[str]]:
    return list(csv.reader(lines, delimiter=delimiter))


def sniff_delimiter(lines: list[str]) -> str | None:
    """The candidate delimiter that splits the header into most fields while the data lines
    split into the same number (csv.Sniffer is thrown off by decimal commas)."""
    sample = lines[:SAMPLE_LINES]
    best: tuple[int, int, str] | None = None
    for delimiter in DELIMITERS:
        counts = [len(row) for row in _rows(sample, delimiter)]
        if counts[0] < 2:
            continue
        score = (sum(c == counts[0] for c in counts[1:]), counts[0], delimiter)
        if best is None or score[:2] > best[:2]:
            best = score
    return best[2] if best else None


def sniff_decimal(lines: list[str], delimiter: str) -> str | None:
    values = [v for row in _rows(lines[1:SAMPLE_LINES], delimiter) for v in row]
    commas = sum(bool(COMMA_NUMBER.match(v)) for v in values)
    dots = sum(bool(DOT_NUMBER.match(v)) for v in values)
    if commas == dots == 0:
        return None
    return "," if commas > dots else "."


def check_dialect(lines: list[str], fmt: CsvFormat) -> list[Finding]:
    delimiter = sniff_delimiter(lines) or fmt.delimiter
    decimal = sniff_decimal(lines, delimiter) or fmt.decimal
    if (delimiter, decimal) == (fmt.delimiter, fmt.decimal):
        return []
    reason = (
        f"delimiter {delimiter!r} with decimal {decimal!r} found; "
        f"the spec expects {fmt.delimiter!r} and {fmt.decimal!r}"
    )
    return [Finding("dialect", reason)]


def check_ending(text: str, lines: list[str], delimiter: str) -> list[Finding]:
    """A transfer that died mid-file leaves a short last row, usually without a newline."""
    header, last = (len(row) for row in _rows([lines[0], lines[-1]], delimiter))
    ends_in_newline = text.endswith(("\n", "\r"))
    if last < header:
        where = "file ends mid-line" if not ends_in_newline else "last row is short"
        reason = f"{where} (truncated?): the last row has {last} of {header} fields"
        return [Finding("truncated", reason)]
    if not ends_in_newline:
        return [Finding("truncated", "file does not end with a newline", "warning")]
    return []
