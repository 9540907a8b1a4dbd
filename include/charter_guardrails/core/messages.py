"""Messages of the checks: a message id with parameters, rendered in English or French.

A check declares its sentences as module constants of :class:`Template`, whose ``msgid`` is the English
sentence with ``%(name)s`` placeholders (gettext's ``python-format``), and calls the template with the
parameters to get a :class:`Message`::

    NO_GROUPS = Template("use case %(use_case)s declares no equity groups: nothing to compare")
    CheckResult(..., message=NO_GROUPS(use_case=policy.id))

The result's ``summary`` is then the English rendering. :func:`render` renders a message in a language;
:func:`render_summary` renders a stored summary, falling back to the stored English text when the
message is unknown to the catalogue.

Parameters are JSON-safe and structural: counts, thresholds, column names, chunk numbers, check names,
masks or keyed hashes; never a raw personal value. A parameter may itself be a message (or a list of
messages, joined by ``"; "``, or :func:`joined` items), so that composite summaries translate part by part.

The French catalogue is ``locale/fr/LC_MESSAGES/charter.po``, compiled in memory with Babel when first
needed: no build step and no binary file. English is the identity. The ids are extractable with
``pybabel extract -k Template`` (see :func:`extract_msgids`).
"""

from __future__ import annotations

import functools
import gettext
import importlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, Literal, cast

from charter_guardrails.core.json_values import GENERIC, json_safe

_log = logging.getLogger(__name__)

#: The languages a message renders in; English is the language of the ids.
Language = Literal["en", "fr"]
LANGUAGES: tuple[Language, ...] = ("en", "fr")
DEFAULT_LANGUAGE: Language = "en"

#: gettext domain and folder of the catalogues.
DOMAIN = "charter"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"

#: Joins a list of messages given as one parameter, per language (French puts a space before the semicolon).
LIST_SEPARATORS: dict[str, str] = {"en": "; ", "fr": " ; "}
#: Joins a list of plain values (column names) given as one parameter.
VALUE_SEPARATOR = ", "

#: The modules that declare the templates of each check (by check name, as ``CheckName`` spells it).
CHECK_MESSAGE_MODULES: dict[str, tuple[str, ...]] = {
    "kill_switch": ("charter_guardrails.decision.model_registry",),
    "declaration": ("charter_guardrails.checks.declaration",),
    "integrity": ("charter_guardrails.checks.integrity.outcome",),
    "personal_data": ("charter_guardrails.checks.privacy.verdict", "charter_guardrails.cli.privacy"),
    "quality": ("charter_guardrails.checks.quality.suite_run",),
    "representativeness": (
        "charter_guardrails.checks.quality.representativeness",
        "charter_guardrails.checks.quality.checks",
    ),
    "proportionality": ("charter_guardrails.checks.proportionality",),
    "training": ("charter_guardrails.refresh.training_check",),
    "performance": ("charter_guardrails.refresh.evaluation", "charter_guardrails.refresh.evaluation_checks"),
    "fairness": ("charter_guardrails.refresh.evaluation_checks",),
    "footprint": ("charter_guardrails.refresh.footprint",),
    "drift": ("charter_guardrails.checks.quality.drift", "charter_guardrails.checks.quality.checks"),
}
#: Every module that declares templates; importing them fills :data:`TEMPLATES`.
MESSAGE_MODULES: tuple[str, ...] = tuple(sorted({m for modules in CHECK_MESSAGE_MODULES.values() for m in modules}))

#: Every declared template by message id.
TEMPLATES: dict[str, Template] = {}

#: Message ids whose French text is the same as the English on purpose (no words to translate).
IDENTICAL: frozenset[str] = frozenset({"%(text)s", "%(what)s", "%(column)s (%(entities)s)"})


class MessageError(ValueError):
    """A message's parameters do not fit its template."""


def _message_as_dict(value: Any) -> Any:
    return {"msgid": value.msgid, "params": value.params} if isinstance(value, Message) else GENERIC


def _plain(value: Any) -> Any:
    """A parameter value as plain JSON: messages become ``{"msgid", "params"}`` dicts."""
    return json_safe(value, _message_as_dict)


@dataclass(frozen=True)
class Message:
    """A message id (the English template) with its JSON-safe parameters.

    :param msgid: the English sentence with ``%(name)s`` placeholders.
    :param params: the values of the placeholders; a value may be a nested message dict or a list.
    """

    msgid: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _plain(self.params or {}))

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> Message:
        return cls(msgid=str(data["msgid"]), params=dict(data.get("params") or {}))

    def to_json_dict(self) -> dict[str, Any]:
        return {"msgid": self.msgid, "params": self.params}

    def render(self, lang: str = DEFAULT_LANGUAGE) -> str:
        """This message in ``lang``."""
        return render(self, lang)

    @property
    def english(self) -> str:
        return render(self, "en")

    def msgids(self) -> list[str]:
        """This message's id and the ids of its nested messages."""
        return [self.msgid, *_nested_ids(self.params)]


@dataclass(frozen=True)
class Template:
    """A sentence a check can emit; calling it with the parameters gives a :class:`Message`."""

    msgid: str

    def __post_init__(self) -> None:
        TEMPLATES[self.msgid] = self

    def __call__(self, **params: Any) -> Message:
        message = Message(msgid=self.msgid, params=params)
        render(message, "en")  # a parameter missing or of the wrong type fails here, where the check is written
        return message


#: The template of a text given as is (a structural value, or a sentence from another component).
TEXT = Template("%(text)s")


def joined(items: Iterable[Message | str], separator: str = VALUE_SEPARATOR) -> dict[str, Any]:
    """A parameter value that renders as ``items`` joined by ``separator`` (a list renders joined by ``"; "``
    when it holds messages, by ``", "`` otherwise)."""
    return {"join": separator, "items": [_plain(item) for item in items]}


def _is_joined(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("join"), str) and isinstance(value.get("items"), list)


def _nested_ids(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        if "msgid" in value and isinstance(value.get("params"), Mapping):
            return [str(value["msgid"]), *_nested_ids(value["params"])]
        return [i for v in value.values() for i in _nested_ids(v)]
    if isinstance(value, list):
        return [i for v in value for i in _nested_ids(v)]
    return []


def _is_message(value: Any) -> bool:
    return isinstance(value, Mapping) and "msgid" in value and isinstance(value.get("params"), Mapping)


def _render_value(value: Any, lang: str) -> Any:
    if _is_message(value):
        return _render(str(value["msgid"]), value["params"], lang)
    if _is_joined(value):
        return str(value["join"]).join(str(_render_value(v, lang)) for v in value["items"])
    if isinstance(value, list):
        if any(_is_message(v) for v in value):
            return LIST_SEPARATORS.get(lang, "; ").join(str(_render_value(v, lang)) for v in value)
        return VALUE_SEPARATOR.join(str(v) for v in value)
    return value


def _render(msgid: str, params: Mapping[str, Any], lang: str) -> str:
    translate = translator(lang)
    values = {name: _render_value(value, lang) for name, value in params.items()}
    try:
        return translate(msgid) % values
    except (KeyError, TypeError, ValueError) as exc:
        raise MessageError(
            f"message {msgid!r} cannot be rendered with parameters {sorted(values)}: {type(exc).__name__}"
        ) from None


@dataclass(frozen=True)
class _Catalogue:
    translations: gettext.NullTranslations
    known: frozenset[str]


def catalogue_path(lang: str, ext: str = "po") -> Path:
    """The catalogue of ``lang`` (``ext="pot"`` for the template of every language)."""
    if ext == "pot":
        return LOCALE_DIR / f"{DOMAIN}.pot"
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.{ext}"


@functools.cache
def _catalogue(lang: str) -> _Catalogue:
    """The catalogue of ``lang``, compiled in memory from its ``.po`` file; English is the identity."""
    if lang == "en":
        return _Catalogue(gettext.NullTranslations(), frozenset(TEMPLATES))
    if lang not in LANGUAGES:
        raise MessageError(f"unknown language {lang!r}; expected one of {', '.join(LANGUAGES)}")
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    path = catalogue_path(lang)
    if not path.is_file():
        # An install without the catalogue: every summary stays in English rather than failing the page.
        _log.warning("no %s catalogue at %s: summaries are shown in English", lang, path)
        return _Catalogue(gettext.NullTranslations(), frozenset())
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=lang, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    known = frozenset(str(m.id) for m in catalog if m.id and m.string and not m.fuzzy)
    return _Catalogue(gettext.GNUTranslations(compiled), known)


def translator(lang: str) -> Callable[[str], str]:
    """gettext for ``lang``: the translated template of a message id (the id itself when unknown)."""
    return _catalogue(lang).translations.gettext


def knows(lang: str, msgid: str) -> bool:
    """Whether the catalogue of ``lang`` translates ``msgid`` (English knows every id)."""
    return lang == "en" or msgid in _catalogue(lang).known


def render(message: Message, lang: str = DEFAULT_LANGUAGE) -> str:
    """``message`` in ``lang``; an id unknown to the catalogue renders in English.

    :raises MessageError: the parameters do not fit the English template either.
    """
    try:
        return _render(message.msgid, message.params, lang)
    except MessageError:
        if lang == "en":
            raise
        return _render(message.msgid, message.params, "en")


def render_summary(
    summary: str, message_id: str | None, message_params: Mapping[str, Any] | None, lang: str = DEFAULT_LANGUAGE
) -> str:
    """A stored summary in ``lang``: the stored English ``summary`` when the language is English, when there is
    no message, or when the catalogue does not know one of its ids or its parameters do not fit."""
    if lang == "en" or not message_id:
        return summary
    message = Message(msgid=message_id, params=dict(message_params or {}))
    if not all(knows(lang, msgid) for msgid in message.msgids()):
        return summary
    try:
        return _render(message.msgid, message.params, lang)
    except MessageError:
        return summary


def as_language(value: str | None) -> Language:
    """``value`` as a known language, English when empty."""
    if not value:
        return DEFAULT_LANGUAGE
    if value not in LANGUAGES:
        raise MessageError(f"unknown language {value!r}; expected one of {', '.join(LANGUAGES)}")
    return cast("Language", value)


def load_all_templates() -> dict[str, Template]:
    """Every template the checks can emit, by message id (imports :data:`MESSAGE_MODULES`)."""
    for module in MESSAGE_MODULES:
        importlib.import_module(module)
    return dict(TEMPLATES)


def templates_of(check: str) -> list[Template]:
    """The templates declared by the modules of ``check`` (see :data:`CHECK_MESSAGE_MODULES`)."""
    found: dict[str, Template] = {}
    for name in CHECK_MESSAGE_MODULES[check]:
        module = importlib.import_module(name)
        found.update({value.msgid: value for value in vars(module).values() if isinstance(value, Template)})
    return list(found.values())


def extract_msgids(paths: Iterable[Path]) -> set[str]:
    """The message ids that ``pybabel extract -k Template`` finds in the Python files ``paths``."""
    from babel.messages.extract import extract_from_file

    found: set[str] = set()
    for path in paths:
        for _line, msgid, _comments, _context in extract_from_file(
            "python", str(path), keywords={"Template": None}, comment_tags=(), strip_comment_tags=True
        ):
            if isinstance(msgid, str) and msgid:
                found.add(msgid)
    return found
