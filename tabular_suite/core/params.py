"""Documented dataclass fields: one place for a parameter's default, type and description.

An architecture's config dataclass (``nn/``), the training settings (``training/``) and the
estimators that inherit them declare each parameter once with :func:`param`;
:func:`params_doc` renders the numpydoc "Parameters" entries from those declarations, so a
default is never written twice. Config dataclasses use ``@dataclass(kw_only=True, eq=False)``:
estimators inherit their fields, and an estimator must keep identity equality and hashing.
"""

from __future__ import annotations

import copy
import dataclasses
import textwrap
from typing import Any

__all__ = ["param", "params_doc"]

_INDENT = " " * 4
_WIDTH = 100


def param(default: Any, doc: str, *, type: str | None = None) -> Any:
    """A dataclass field with a default and its description (``metadata["doc"]``).

    ``type`` is the type as the docs show it (e.g. ``'{"relu", "gelu"}'``); by default the
    field's annotation, with ``X | None`` shown as ``X or None``. Lists, dicts and sets get a
    ``default_factory`` (a fresh copy per instance); tuples and other immutable values are
    plain defaults.

    Examples
    --------
    >>> from dataclasses import dataclass, fields
    >>> @dataclass
    ... class Config:
    ...     width: int = param(256, "Width of every hidden layer.")
    ...     widths: list = param([8, 8], "One list per instance.")
    >>> Config().width, fields(Config)[0].metadata["doc"]
    (256, 'Width of every hidden layer.')
    >>> Config().widths is Config().widths
    False
    """
    metadata = {"doc": doc} if type is None else {"doc": doc, "type": type}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def params_doc(*config_classes: type, skip=()) -> str:
    """numpydoc "Parameters" entries for the fields of ``config_classes``, in order.

    Each class contributes its fields in declaration order; a name already rendered (or in
    ``skip``) is left out. An entry reads ``name : type, default=value`` followed by the
    indented description, both indented for a class docstring (a field without a default
    reads ``name : type``). The default is the one the
    class passed sees, and the description and type are the nearest ones declared along its
    MRO, so a subclass that only overrides a default (``max_epochs: int = 500``) shows the
    overriding default with the base class's description.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(kw_only=True, eq=False)
    ... class Training:
    ...     max_epochs: int = param(300, "Upper bound on training epochs.")
    ...     device: str = param("auto", 'Torch device, or "auto".')
    >>> @dataclass(kw_only=True, eq=False)
    ... class Longer(Training):
    ...     max_epochs: int = 500
    >>> print(params_doc(Longer, skip=["device"]))
        max_epochs : int, default=500
            Upper bound on training epochs.
    """
    lines, seen = [], set(skip)
    for cls in config_classes:
        for f in dataclasses.fields(cls):
            if f.name in seen:
                continue
            seen.add(f.name)
            doc = _nearest(cls, f.name, "doc")
            if doc is None:
                raise ValueError(f"{cls.__name__}.{f.name} has no description: declare it with param(default, doc).")
            kind = _nearest(cls, f.name, "type") or _annotation(f.type)
            default = _default(f)
            shown = "" if default is dataclasses.MISSING else f", default={_show(default)}"
            lines.append(f"{_INDENT}{f.name} : {kind}{shown}")
            lines.append(
                textwrap.fill(" ".join(doc.split()), _WIDTH, initial_indent=_INDENT * 2, subsequent_indent=_INDENT * 2)
            )
    return "\n".join(lines)


def _nearest(cls: type, name: str, key: str):
    """``metadata[key]`` of field ``name`` in the first class of ``cls``'s MRO that declares one."""
    for base in cls.__mro__:
        f = vars(base).get("__dataclass_fields__", {}).get(name)
        if f is not None and key in f.metadata:
            return f.metadata[key]
    return None


def _annotation(annotation) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    return " or ".join(part.strip() for part in text.split("|"))


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _show(value) -> str:
    """A default as the docs show it: strings in double quotes, short floats (``1e-5``, ``1.33333``)."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float):
        text = repr(value)
        if "e" in text:
            mantissa, exponent = text.split("e")
            return f"{mantissa}e{int(exponent)}"
        return text if len(text) <= 8 else f"{value:.6g}"
    return repr(value)
