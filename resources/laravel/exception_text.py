"""Read the `exception` column of Laravel's failed_jobs table, and group failures by fingerprint.

Laravel stores `(string) $exception`, which PHP renders as

    RuntimeException: Order 5 failed: flaky in /app/Jobs/FlakyJob.php:31
    Stack trace:
    #0 ...

(or `RuntimeException in /file.php:31` when the message is empty; a chained exception starts
with the innermost cause and continues with "\\n\\nNext ..."). A trace can be megabytes long, so
only the first `HEAD_CHARS` characters are ever looked at.

Two failures belong together when the same job class fails with the same exception class and a
message that differs only in the values it mentions (ids, uuids, e-mail addresses, quoted
values). `normalise_message` replaces those values with placeholders and `fingerprint` hashes
the triple, so "Order 5 failed" and "Order 77 failed" land in one group.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

HEAD_CHARS = 16_384
MESSAGE_CHARS = 2_000  # longest first line we keep (and normalise)

STACK_TRACE = "\nStack trace:"  # where the first block of `(string) $exception` ends
LEADING_SPACE = "\ufeff \t\r\n"  # stripped before parsing
_CLASS_AND_MESSAGE = re.compile(r"(?P<cls>\\?[A-Za-z_\x80-\uffff][\w\\]*)(?:: (?P<msg>.*))?\Z", re.DOTALL)
_FILE_AND_LINE = re.compile(r"(?P<file>\S.*):(?P<line>\d+)\Z")

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_SINGLE_QUOTED = re.compile(r"(?<![\w'])'[^'\n]*'(?!\w)")
_DOUBLE_QUOTED = re.compile(r'"[^"\n]*"')
# A hex id has at least one letter; all-digit runs are numbers and get the number placeholder.
_HEX_ID = re.compile(r"\b(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b")
# Not after a letter, so identifiers such as V2Sync or utf8mb4 keep their digits. Written as
# `\d(?<![A-Za-z_]\d)\d*` rather than `(?<![A-Za-z_])\d+`: the same matches, but a pattern that
# starts with a character class lets re skip ahead to the next digit instead of trying every position.
_NUMBER = re.compile(r"\d(?<![A-Za-z_]\d)\d*(?:\.\d+)?")
_HEX_RUN = re.compile(r"[0-9a-fA-F][0-9a-fA-F]{7}")  # in every _HEX_ID match, and cheaper to look for


@dataclass(frozen=True, slots=True)
class ParsedException:
    """The head of a stored exception; `parse_error` is None when it had PHP's shape."""

    exception_class: str | None = None
    message: str | None = None  # first line of the message, without the " in FILE:LINE" tail
    file: str | None = None
    line: int | None = None
    parse_error: str | None = None


def parse_exception(text: str | bytes | None) -> ParsedException:
    """Parse the head of `(string) $exception`; never raises, never scans the whole trace."""
    if text is None:
        return ParsedException(parse_error="exception is NULL")
    decode_error: str | None = None
    if isinstance(text, str):
        head = text[:HEAD_CHARS]
    elif isinstance(text, bytes | bytearray | memoryview):
        head_bytes = bytes(text[:HEAD_CHARS])
        try:
            head = head_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            head = head_bytes.decode("utf-8", errors="replace")
            cut_at_end = exc.reason == "unexpected end of data" and len(text) > HEAD_CHARS
            if not cut_at_end:
                decode_error = (
                    f"exception is not valid UTF-8 (byte 0x{head_bytes[exc.start]:02x} at offset {exc.start})"
                )
    else:
        return ParsedException(parse_error=f"exception is a {type(text).__name__}, not text")

    parsed = _parse_head(head.lstrip(LEADING_SPACE))
    if decode_error is None:
        return parsed
    error = decode_error if parsed.parse_error is None else f"{decode_error}; {parsed.parse_error}"
    return ParsedException(parsed.exception_class, parsed.message, parsed.file, parsed.line, error)


def _parse_head(head: str) -> ParsedException:
    if not head:
        return ParsedException(parse_error="exception is empty")
    end = head.find(STACK_TRACE)
    # Without "Stack trace:" in the head the message is huge or the text is not PHP's; use line one.
    block = head[:end] if end >= 0 else head.split("\n", 1)[0]

    file = line = None
    body = block
    last_nl = block.rfind("\n")
    last_line = block[last_nl + 1 :]
    cut = last_line.rfind(" in ")
    while cut >= 0:
        match = _FILE_AND_LINE.match(last_line, cut + 4)
        if match:
            file, line = match["file"], int(match["line"])
            body = block[: last_nl + 1 + cut]
            break
        cut = last_line.rfind(" in ", 0, cut)

    match = _CLASS_AND_MESSAGE.match(body)
    if match is None:
        first = block.split("\n", 1)[0].strip()[:MESSAGE_CHARS]
        return ParsedException(
            message=first or None,
            file=file,
            line=line,
            parse_error="exception text does not start with a class",
        )
    message = (match["msg"] or "").split("\n", 1)[0].strip()[:MESSAGE_CHARS]
    return ParsedException(exception_class=match["cls"].lstrip("\\"), message=message, file=file, line=line)


def normalise_message(message: str | None) -> str:
    """Replace the values a message mentions with placeholders and collapse whitespace.

    E-mail addresses -> <email>, UUIDs -> <uuid>, '...' / "..." -> '<str>' / "<str>",
    hex ids of 8+ characters -> <hex>, numbers -> <n>.
    """
    if not message:
        return ""
    text = message[:MESSAGE_CHARS]
    # This runs once per failed job, so a pass runs only when what it needs is there (every
    # check is implied by its pattern, so the result is that of running all of them).
    if "@" in text:
        text = _replace_emails(text)
    if text.count("-") >= 4:
        text = _UUID.sub("<uuid>", text)
    if text.count("'") >= 2:
        text = _SINGLE_QUOTED.sub("'<str>'", text)
    if text.count('"') >= 2:
        text = _DOUBLE_QUOTED.sub('"<str>"', text)
    if _HEX_RUN.search(text):
        text = _HEX_ID.sub("<hex>", text)
    text = _NUMBER.sub("<n>", text)
    return " ".join(text.split())


def _replace_emails(text: str) -> str:
    """`_EMAIL.sub("<email>", text)`, with the pattern tried only where a match can start.

    A match holds exactly one "@" and, by the leftmost rule, starts where the run of local-part
    characters ending at that "@" starts (or where the previous match ended). re.sub would
    retry the pattern at every character of every word; in a long message that is most of
    the normalisation's time.
    """
    parts: list[str] = []
    pos = 0
    at = text.find("@")
    while at >= 0:
        start = at
        while start > pos and _is_local_part_char(text[start - 1]):
            start -= 1
        match = _EMAIL.match(text, start) if start < at else None
        if match is None:
            at = text.find("@", at + 1)
            continue
        parts += (text[pos:start], "<email>")
        pos = match.end()
        at = text.find("@", pos)
    if not parts:
        return text
    parts.append(text[pos:])
    return "".join(parts)


def _is_local_part_char(char: str) -> bool:
    r"""`[\w.+-]` for one character: re's \w is str.isalnum() plus the underscore."""
    return char.isalnum() or char in "_.+-"


def fingerprint(job_class: str | None, exception_class: str | None, message: str | None) -> str:
    """Hex SHA-1 of (job class, exception class, normalised message): one value per kind of failure."""
    key = "\x1f".join((job_class or "", exception_class or "", normalise_message(message)))
    return hashlib.sha1(key.encode("utf-8", errors="surrogatepass"), usedforsecurity=False).hexdigest()
