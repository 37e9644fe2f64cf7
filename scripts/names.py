"""Layer names short enough for a printed table column or a plot's axis labels.

ONNX exports name nodes by their module path
(``/features/features.1/conv/conv.0/conv.0.0/Conv``): such names break a
table's columns and take much of a plot's height. ``short_names`` shortens
the names of one network for display only (JSON and CSV keep the full name):

1. a name of at most ``width`` characters is kept as it is;
2. a path (``/`` separated) drops each component that the next component
   starts with (``features`` before ``features.1``, ``conv`` and ``conv.0``
   before ``conv.0.0``) and its leading ``/``:
   ``features.1/conv.0.0/Conv``;
3. if that is still too long, the middle gives way to ``...``, keeping
   the distinctive tail (two thirds of the room) and the head;
4. names whose short forms would coincide are cut together at the first
   place (compacted first, then in full; the head growing or shrinking
   from one third) where their short forms all differ;
5. if there is none (names differing only deep in the middle), a ``~N``
   counter ends the head of each.

Every result has at most ``width`` characters, and the results are unique
whenever the full names are.
"""

from __future__ import annotations

ELLIPSIS = "..."
NAME_WIDTH = 28
"""Width of the layer-name column of the printed tables."""
MIN_WIDTH = 8


def compact_path(name: str) -> str:
    """``/a/a.1/b/b.0/Op`` -> ``a.1/b.0/Op``: path components the next component starts with are dropped."""
    if "/" not in name:
        return name
    parts = [p for p in name.split("/") if p]
    kept = [p for p, following in zip(parts, parts[1:] + [""]) if not following.startswith(p)]
    return "/".join(kept) or name


def _cut(text: str, width: int, head: int) -> str:
    """``text`` with its middle replaced by '...': ``head`` leading characters, the rest of ``width`` from the end."""
    tail = width - len(ELLIPSIS) - head
    return text[:head] + ELLIPSIS + text[len(text) - tail:]


def short_names(names, width: int = NAME_WIDTH) -> list[str]:
    """Display names of at most ``width`` characters, unique within ``names``; short names unchanged."""
    if width < MIN_WIDTH:
        raise ValueError(f"width must be at least {MIN_WIDTH}, got {width}")
    names = [str(n) for n in names]
    out = [n if len(n) <= width else None for n in names]
    taken = {n for n in out if n is not None}
    pending = [i for i, n in enumerate(out) if n is None]
    room = width - len(ELLIPSIS)
    preferred = room // 3
    heads = [preferred] + [h for d in range(1, room + 1) for h in (preferred + d, preferred - d) if 0 <= h <= room]

    def shorten(name: str, head: int, compact: bool) -> str:
        text = compact_path(name) if compact else name
        return text if len(text) <= width else _cut(text, width, head)

    first = {i: shorten(names[i], preferred, True) for i in pending}
    groups: dict[str, list[int]] = {}
    for i in pending:
        groups.setdefault(first[i], []).append(i)
    for choice, group in groups.items():
        if len(group) == 1 and choice not in taken:
            out[group[0]] = choice
            taken.add(choice)
    for choice, group in groups.items():
        if out[group[0]] is not None:
            continue
        for compact, head in ((c, h) for c in (True, False) for h in heads):
            cuts = [shorten(names[i], head, compact) for i in group]
            if len(set(cuts)) == len(cuts) and not taken.intersection(cuts):
                break
        else:
            cuts = [_numbered(names[i], n, width, preferred, taken) for n, i in enumerate(group, start=1)]
        for i, cut in zip(group, cuts):
            out[i] = cut
            taken.add(cut)
    return out


def _numbered(name: str, number: int, width: int, preferred: int, taken: set[str]) -> str:
    """``name`` cut to ``width`` with a ``~N`` counter ending its head, the first N >= ``number`` not taken."""
    while True:
        mark = f"~{number}"
        head = name[:max(0, preferred - len(mark))] + mark
        choice = head + ELLIPSIS + name[len(name) - (width - len(ELLIPSIS) - len(head)):]
        if choice not in taken:
            return choice
        number += 1
