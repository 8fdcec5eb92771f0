"""A reader for the block-style YAML that `bgwctl -o yaml` writes (stdlib only), to parse its output back.

It covers what that output uses: block mappings and sequences (sequences under a key may be indented or not),
plain scalars resolved by the YAML 1.2 core schema (null, true/false, integers, floats, else strings),
'single-quoted' and "double-quoted" scalars (one line, with escapes), and the empty flow collections [] and
{}. Anything else raises ValueError: the output must stay inside this subset, which keeps it simple to read
for people and tools alike.
"""

import re

_INT = re.compile(r"^[-+]?[0-9]+$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_OCT = re.compile(r"^0o[0-7]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")

_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f",
            "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85", "_": "\xa0",
            "L": "\u2028", "P": "\u2029"}


def resolve_plain(s):
    """A plain scalar's value under the core schema."""
    if s in ("", "~", "null", "Null", "NULL"):
        return None
    if s in ("true", "True", "TRUE"):
        return True
    if s in ("false", "False", "FALSE"):
        return False
    if _INT.match(s):
        return int(s, 10)
    if _HEX.match(s):
        return int(s[2:], 16)
    if _OCT.match(s):
        return int(s[2:], 8)
    if _FLOAT.match(s):
        return float(s)
    if s.lstrip("+-") in (".inf", ".Inf", ".INF") or s in (".nan", ".NaN", ".NAN"):
        raise ValueError("non-JSON float %r" % s)
    return s


def _double_quoted(text, pos):
    """Parse a double-quoted scalar starting at text[pos] == '"': (value, index after the closing quote)."""
    out = []
    i = pos + 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            e = text[i + 1]
            if e in _ESCAPES:
                out.append(_ESCAPES[e])
                i += 2
            elif e in "xuU":
                n = {"x": 2, "u": 4, "U": 8}[e]
                out.append(chr(int(text[i + 2:i + 2 + n], 16)))
                i += 2 + n
            else:
                raise ValueError("unknown escape \\%s" % e)
            continue
        out.append(c)
        i += 1
    raise ValueError("unterminated double-quoted scalar: %r" % text)


def _single_quoted(text, pos):
    out = []
    i = pos + 1
    while i < len(text):
        c = text[i]
        if c == "'":
            if text[i + 1:i + 2] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise ValueError("unterminated single-quoted scalar: %r" % text)


def _scalar(text):
    text = text.strip()
    if text.startswith('"'):
        v, end = _double_quoted(text, 0)
    elif text.startswith("'"):
        v, end = _single_quoted(text, 0)
    elif text == "[]":
        return []
    elif text == "{}":
        return {}
    else:
        if text.startswith(("[", "{", "&", "*", "!", "|", ">", "%", "@", "`")):
            raise ValueError("outside the supported subset: %r" % text)
        return resolve_plain(text)
    if text[end:].strip():
        raise ValueError("text after a quoted scalar: %r" % text)
    return v


def _split_key(text):
    """(key, rest) when text is 'key: rest' or 'key:', else None."""
    if text.startswith('"'):
        key, end = _double_quoted(text, 0)
    elif text.startswith("'"):
        key, end = _single_quoted(text, 0)
    else:
        if _is_item(text):
            return None
        idx = text.find(": ")
        if idx < 0 and text.endswith(":"):
            idx = len(text) - 1
        if idx <= 0:
            return None
        return text[:idx], text[idx + 1:]
    if text[end:end + 1] != ":" or not (end + 1 == len(text) or text[end + 1] == " "):
        return None
    return key, text[end + 1:]


class _Lines:
    def __init__(self, text):
        self.lines = []
        for raw in text.split("\n"):
            if not raw.strip() or raw.strip() in ("---", "...") or raw.lstrip().startswith("#"):
                continue
            if "\t" in raw[:len(raw) - len(raw.lstrip())]:
                raise ValueError("tab in indentation")
            self.lines.append([len(raw) - len(raw.lstrip(" ")), raw.strip(" ")])
        self.i = 0

    def peek(self):
        return self.lines[self.i] if self.i < len(self.lines) else None


def _is_item(text):
    return text == "-" or text.startswith("- ")


def _node(ls, indent):
    line = ls.peek()
    if line is None or line[0] < indent:
        return None
    ind, text = line
    if _is_item(text):
        return _sequence(ls, ind)
    if _split_key(text) is not None:
        return _mapping(ls, ind)
    ls.i += 1
    return _scalar(text)


def _sequence(ls, ind):
    out = []
    while True:
        line = ls.peek()
        if line is None or line[0] != ind or not _is_item(line[1]):
            return out
        rest = line[1][1:].lstrip(" ")
        if not rest:
            ls.i += 1
            out.append(_node(ls, ind + 1))
        else:
            # the item's content becomes a line of its own, at the column where it starts
            line[0], line[1] = ind + (len(line[1]) - len(rest)), rest
            out.append(_node(ls, line[0]))


def _mapping(ls, ind):
    out = {}
    while True:
        line = ls.peek()
        if line is None or line[0] != ind or _is_item(line[1]):
            return out
        kv = _split_key(line[1])
        if kv is None:
            raise ValueError("expected 'key:' at %r" % line[1])
        key, rest = kv
        if key in out:
            raise ValueError("duplicate key %r" % key)
        ls.i += 1
        if rest.strip():
            out[key] = _scalar(rest)
            continue
        nxt = ls.peek()
        if nxt is not None and (nxt[0] > ind or (nxt[0] == ind and _is_item(nxt[1]))):
            out[key] = _node(ls, nxt[0])
        else:
            out[key] = None


def loads(text):
    """The value of one YAML document in the subset described above."""
    ls = _Lines(text)
    if ls.peek() is None:
        return None
    v = _node(ls, ls.peek()[0])
    if ls.peek() is not None:
        raise ValueError("unparsed YAML from %r" % ls.peek()[1])
    return v
