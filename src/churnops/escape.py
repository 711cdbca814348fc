"""One escaping function per medium a data-derived value can reach.

Column names, category labels, file names and error texts come from files nobody vetted. Each
medium has its own syntax that such a value could abuse, so each has exactly one function here,
used everywhere that medium is written:

* :func:`terminal` - control characters (ANSI escape sequences, carriage returns that rewrite a
  line, bidirectional overrides that reorder what is shown) made visible;
* :func:`slack` - Slack ``mrkdwn``: ``<!channel>`` pings and ``<url|text>`` links;
* :func:`teams` - the Markdown subset of Adaptive Cards: links, emphasis, lists;
* :func:`csv_cell` - spreadsheet formulas in CSV cells (OWASP CSV injection);
* :func:`header` - e-mail headers (a line break would start a new header).

HTML is escaped by Jinja2's autoescape in the report and e-mail templates, and URLs that become
links are checked by :func:`safe_link`. This module imports nothing from churnops.
"""

from __future__ import annotations

import re
import unicodedata

_INVISIBLE = (
    "\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b\u2060-\u2064\u2800\u3164\ufe00-\ufe0f\ufeff"
    "\uffa0\ufff9-\ufffb\U0001d159\U0001d173-\U0001d17a\U000e0000-\U000e007f\U000e0100-\U000e01ef"
)
"""Characters that show nothing - a soft hyphen, zero-width spaces, a byte order mark, fillers
(Hangul, braille blank), a combining grapheme joiner, variation selectors, tags - and make two
names look the same (``Balance`` and ``Balance\u200b``). The joiners U+200C and U+200D are left
alone: Persian and Indic words and emoji sequences need them."""
_CONTROL = re.compile(
    f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029{_INVISIBLE}]"
)
_CONTROL_AND_BREAKS = re.compile(
    f"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029{_INVISIBLE}]"
)


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def terminal(text: object, keep_newlines: bool = True) -> str:
    """Text safe to print on a terminal: control characters shown as ``\\xNN`` / ``\\uNNNN``.

    Tabs are kept; newlines too unless ``keep_newlines`` is false (one-line messages).

    >>> terminal("Balance\\x1b[2J")
    'Balance\\\\x1b[2J'
    >>> terminal("a\\nb", keep_newlines=False), terminal("a\\nb")
    ('a\\\\x0ab', 'a\\nb')
    >>> terminal("abc\\u202edef")
    'abc\\\\u202edef'
    >>> terminal("Balance\\u200b"), terminal("x\\U000e0041")
    ('Balance\\\\u200b', 'x\\\\U000e0041')
    """
    pattern = _CONTROL if keep_newlines else _CONTROL_AND_BREAKS
    text = str(text)
    if keep_newlines:
        text = text.replace("\r\n", "\n")
    return pattern.sub(_visible, text)


def has_controls(text: str) -> bool:
    """Whether :func:`terminal` would change ``text`` (a quick test for the common case).

    >>> has_controls("Balance"), has_controls("a\\r\\nb"), has_controls("a\\u202eb")
    (False, True, True)
    """
    return _CONTROL.search(text) is not None


def one_line(text: object) -> str:
    """:func:`terminal` for text that must stay on one line (errors, log lines, message fields).

    >>> one_line("bad\\r\\nname")
    'bad\\\\x0d\\\\x0aname'
    """
    return terminal(text, keep_newlines=False)


def prose_line(text: object) -> str:
    """A message of several lines from another tool, on one line: its lines joined with ``; ``
    (rather than shown as ``\\x0a``), then :func:`one_line`.

    >>> prose_line("config is invalid:\\n  remote 'x' not found\\n")
    "config is invalid:; remote 'x' not found"
    """
    return one_line("; ".join(line.strip() for line in str(text).splitlines() if line.strip()))


def one_line_short(text: object, limit: int = 60) -> str:
    """:func:`one_line`, cut to ``limit`` characters with an ellipsis (a value inside a message).

    >>> one_line_short("a" * 10, 5)
    'aaaa\u2026'
    """
    line = one_line(text)
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


def plural(n: int, one: str, many: str) -> str:
    """``one`` for one thing, ``many`` for any other count.

    >>> f"1 {plural(1, 'cell', 'cells')}, 0 {plural(0, 'value is', 'values are')}"
    '1 cell, 0 values are'
    """
    return one if n == 1 else many


def names_line(names: list[str], shown: int = 8) -> str:
    """Column names for a one-line message: at most ``shown``, each cut to one short line, then
    how many more.

    >>> names_line(["a", "b" * 50]), names_line([str(i) for i in range(10)], 3)
    ('a, bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\u2026', '0, 1, 2 and 7 more')
    """
    return ", ".join(one_line_short(name, 40) for name in names[:shown]) + (
        f" and {len(names) - shown} more" if len(names) > shown else ""
    )


_EXAMPLE_END = re.compile(r"""['"](?=, ['"])""")


def examples_cut(text: object, limit: int) -> str:
    """:func:`one_line_short`, but a message that lists quoted examples is cut after the last
    whole example that fits, so that no example loses its closing quote.

    >>> examples_cut("3 values the reference never had: 'alpha', 'beta', 'gamma'", 48)
    "3 values the reference never had: 'alpha', \u2026"
    >>> examples_cut("1 value is not a number, e.g. '" + "9" * 80 + "'", 40)
    "1 value is not a number, e.g. '99999999\u2026"
    """
    line = one_line(text)
    if len(line) <= limit:
        return line
    ends = [m.end() for m in _EXAMPLE_END.finditer(line, 0, limit - 3)]
    if ends and ends[-1] > limit // 2:
        return line[: ends[-1]] + ", \u2026"
    return one_line_short(line, limit)


def slack(text: object) -> str:
    """Text for Slack ``mrkdwn``: the three characters Slack uses for control sequences escaped.

    Together with ``"verbatim": true`` on the text object (no automatic links or mentions) a
    value cannot ping a channel or disguise a link.

    >>> slack("<!channel> <http://evil|click> & co")
    '&lt;!channel&gt; &lt;http://evil|click&gt; &amp; co'
    """
    text = one_line(text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_TEAMS_SPECIAL = re.compile(r"([\\*_\[\]()~])")
_TEAMS_BLOCK_START = re.compile(r"^(\s*)([-+](?=\s)|[#>]|\d+\.(?=\s))")


def teams(text: object) -> str:
    """Text for the Markdown of an Adaptive Card (Teams).

    Adaptive Cards render bold, italic, strike-through, lists and links; the characters that make
    them are backslashed (as the Adaptive Cards renderers read escapes), and a value that would
    start a list is escaped at its start. Other punctuation is shown as it is.

    >>> teams("[click](http://evil) **x**")
    '\\\\[click\\\\]\\\\(http://evil\\\\) \\\\*\\\\*x\\\\*\\\\*'
    >>> teams("0.188 (threshold 0.1)"), teams("- item")
    ('0.188 \\\\(threshold 0.1\\\\)', '\\\\- item')
    """
    escaped = _TEAMS_SPECIAL.sub(r"\\\1", one_line(text))
    return _TEAMS_BLOCK_START.sub(r"\1\\\2", escaped)


FORMULA_STARTS = (
    *("=", "+", "-", "@", "\t", "\r", "\n"),
    *("\uff1d", "\uff0b", "\uff0d", "\uff20"),  # fullwidth = + - @
    *("\ufe66", "\ufe62", "\ufe63", "\ufe6b"),  # small = + - @
)
FORMULA_BLANKS = (
    " \u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u202f\u205f\u3000\ufeff"
)
"""Blanks a spreadsheet may skip before a formula's sign: spaces of every width, no-break and
zero-width ones, a byte order mark."""


def csv_cell(value: object) -> object:
    """A CSV cell that no spreadsheet runs as a formula: text starting like one gets a ``'``.

    Numbers are left alone (a negative number is data, not a formula).

    >>> csv_cell("=HYPERLINK(1)"), csv_cell("-5 cheap"), csv_cell(-5.0), csv_cell("Balance")
    ("'=HYPERLINK(1)", "'-5 cheap", -5.0, 'Balance')
    >>> csv_cell(" =1+1"), csv_cell("\u00a0=1+1") != "\u00a0=1+1", csv_cell("\ufe661+1") != "\ufe661+1"
    ("' =1+1", True, True)
    """
    if isinstance(value, str) and value.lstrip(FORMULA_BLANKS).startswith(FORMULA_STARTS) and value:
        return "'" + value
    return value


def header(text: object, limit: int = 200) -> str:
    """An e-mail header value: one line, no control characters, at most ``limit`` characters.

    >>> header("Drift in x\\r\\nBcc: everyone@example.com")
    'Drift in x Bcc: everyone@example.com'
    """
    cleaned = _CONTROL_AND_BREAKS.sub(" ", str(text))
    cleaned = re.sub(r"  +", " ", cleaned).strip()
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def safe_link(url: str | None) -> str | None:
    """``url`` when it is a plain http(s) address that may become a link, else None.

    Links whose address hides another host behind user info (``https://bank.example@evil``) are
    refused too.

    >>> safe_link("https://ci.example/job/7/"), safe_link("javascript:alert(1)"), safe_link(" http://x")
    ('https://ci.example/job/7/', None, None)
    >>> safe_link("https://bank.example@evil.example/")
    """
    if not url or url != url.strip() or _CONTROL_AND_BREAKS.search(url):
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    if any(unicodedata.category(ch).startswith("Z") for ch in url):
        return None
    return url
