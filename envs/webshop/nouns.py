"""Title nouns for the type score.

The original tags the product name with spaCy's ``en_core_web_sm`` and keeps NOUN and
PROPN tokens. When spaCy and that model are installed we do the same. Otherwise the
substitute keeps every alphabetic word of two or more letters that is not an English
stop word, a number, a unit or a common product adjective: nouns and brand names
survive, most modifiers do not. Generated catalogues know their nouns and need neither.
"""

from __future__ import annotations

import functools
import re

_WORD = re.compile(r"[a-z][a-z'\-]+")
_NOT_NOUNS = frozenset("""
a an the and or of for with without in on to by from at as is are be it its this that these
those your you our we my me i he she they them his her their not no all any each every some
new best top great good high low long short small large big extra super ultra mini free
premium classic original deluxe modern soft hard light dark easy quick fast slow natural
organic pure fresh clean portable wireless adjustable durable heavy duty lightweight
compatible waterproof resistant proof non plus pro max oz fl ounce ounces lb lbs pound pounds
inch inches ft feet cm mm ml count pack pcs pieces piece set x
""".split())


@functools.lru_cache(maxsize=1)
def _spacy_model():
    import importlib.util

    if importlib.util.find_spec("en_core_web_sm") is None:  # don't import spaCy for nothing
        return None
    try:
        import spacy
        return spacy.load("en_core_web_sm", disable=["parser", "ner", "lemmatizer"])
    except Exception:  # noqa: BLE001 - spaCy or the model missing: use the substitute
        return None


def tagger_name() -> str:
    """Which noun finder is in use: 'spacy' or 'substitute'."""
    return "spacy" if _spacy_model() is not None else "substitute"


@functools.lru_cache(maxsize=65536)
def title_nouns(title: str) -> tuple[str, ...]:
    """Lower-case nouns of a product title (spaCy when available, else the substitute)."""
    nlp = _spacy_model()
    if nlp is not None:
        return tuple(t.text.lower() for t in nlp(title) if t.pos_ in ("NOUN", "PROPN"))
    return substitute_nouns(title)


def substitute_nouns(title: str) -> tuple[str, ...]:
    return tuple(w for w in _WORD.findall(title.lower()) if w not in _NOT_NOUNS)
