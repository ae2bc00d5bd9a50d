"""The LLM backend's translation prompt: a template with ``{source}``, ``{target}``, ``{text}``.

``{source}`` and ``{target}`` become the English names of the languages in the
language registry (``Javanese``, ``Toba Batak``), ``{text}`` the sentence to
translate. The model continues the prompt and its first line is the translation,
so the template should end where the translation starts. Few-shot examples are
written into the template itself, e.g.::

    English: Good morning.
    Indonesian: Selamat pagi.
    {source}: {text}
    {target}:

Literal braces are doubled (``{{`` and ``}}``), as in :meth:`str.format`.
"""

from __future__ import annotations

import string
from pathlib import Path

from flare_xlt.errors import FlareError

DEFAULT_PROMPT = "Translate the following {source} text to {target}.\n{source}: {text}\n{target}:"
FIELDS = ("source", "target", "text")


def check_prompt(template: str) -> str:
    """``template`` if it holds ``{text}`` and no field but those in :data:`FIELDS`.

    Raises:
        FlareError: a missing ``{text}``, an unknown field, a format spec or conversion,
            or an unmatched brace, in one line.
    """
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(template)
            if name is not None
        ]
    except ValueError as err:
        hint = "write a literal brace twice"
        raise FlareError(f"prompt template {template!r}: {err} ({hint})") from None
    for name, spec, conversion in fields:
        if name not in FIELDS or spec or conversion:
            field = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise FlareError(
                f"prompt template has the field {{{field}}}; use only "
                f"{', '.join('{' + f + '}' for f in FIELDS)} (write a literal brace twice)"
            )
    if "text" not in {name for name, _, _ in fields}:
        raise FlareError("prompt template has no {text} field: where does the text go?")
    return template


def render_prompt(template: str, source: str, target: str, text: str) -> str:
    """The prompt for ``text``; braces inside ``text`` and the names are kept as they are."""
    return template.format(source=source, target=target, text=text)


def read_prompt_file(path: Path) -> str:
    """The checked template in a UTF-8 file; the line break that ends the file is not part of it.

    Raises:
        FlareError: the file cannot be read, or the template is invalid.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or err
        raise FlareError(f"cannot read prompt file {path}: {reason}") from None
    return check_prompt(text.removesuffix("\n").removesuffix("\r"))
