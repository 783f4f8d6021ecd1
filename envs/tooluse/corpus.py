"""A generated knowledge corpus and multi-hop questions that only searching can answer.

From one seed: fictional countries, cities, people and companies (invented names, so
no model knows them from pre-training), relations between them (city -> country,
person -> birth city and employer, company -> founder and headquarters city), one
document per entity stating its facts, and questions whose answer needs 2 or 3 of
those documents. Each question keeps the minimal sequence of searches that finds its
answer (the scripted agent's plan).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
           "br", "dr", "gr", "kr", "st", "tr", "th", "sh", "qu", "vel"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou"]
_CODAS = ["", "n", "r", "l", "s", "th", "x", "nd", "rk", "m"]
_FIELDS = ["shipbuilding", "textiles", "software", "mining", "publishing", "glassware",
           "pharmaceuticals", "logistics", "farming equipment", "optics"]
_COMPANY_SUFFIX = ["Works", "Industries", "Labs", "Holdings", "Guild", "Systems", "Foundry"]
_PROFESSIONS = ["engineer", "chemist", "architect", "economist", "designer", "geologist"]


@dataclass
class Document:
    doc_id: str
    title: str
    text: str


@dataclass
class Question:
    qid: str
    question: str
    answer: str
    hops: int
    searches: list[str]            # a minimal plan: one search per hop


@dataclass
class Corpus:
    seed: int
    documents: list[Document] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)

    def save(self, path: str | Path) -> None:
        """Write the corpus and its questions as JSON lines (one object per line)."""
        with open(path, "w") as f:
            for d in self.documents:
                f.write(json.dumps({"type": "document", **asdict(d)}) + "\n")
            for q in self.questions:
                f.write(json.dumps({"type": "question", **asdict(q)}) + "\n")


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _name(rng: random.Random, syllables: int) -> str:
    word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables))
    return (word + rng.choice(_CODAS)).capitalize()


def _unique_names(rng: random.Random, n: int, syllables: tuple[int, int], taken: set[str],
                  words: int = 1) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        name = " ".join(_name(rng, rng.randint(*syllables)) for _ in range(words))
        if name not in taken and all(w not in taken for w in name.split()):
            taken.add(name)
            taken.update(name.split())
            out.append(name)
    return out


@lru_cache(maxsize=8)
def build_corpus(seed: int = 0, countries: int = 6, cities: int = 18, people: int = 48,
                 companies: int = 24) -> Corpus:
    """The corpus for ``seed`` (cached: same arguments, same object)."""
    rng = random.Random(seed)
    taken: set[str] = set()
    country_names = _unique_names(rng, countries, (2, 3), taken)
    city_names = _unique_names(rng, cities, (2, 3), taken)
    person_names = _unique_names(rng, people, (1, 2), taken, words=2)
    company_names = [f"{n} {rng.choice(_COMPANY_SUFFIX)}"
                     for n in _unique_names(rng, companies, (2, 2), taken)]

    city_country = {c: rng.choice(country_names) for c in city_names}
    born = {p: rng.choice(city_names) for p in person_names}
    founders = rng.sample(person_names, companies)
    company = {c: {"founder": f, "hq": rng.choice(city_names), "field": rng.choice(_FIELDS),
                   "year": rng.randint(1850, 2015)} for c, f in zip(company_names, founders)}
    employer = {p: rng.choice(company_names) for p in person_names}

    docs: list[Document] = []
    for country in country_names:
        members = sorted(c for c in city_names if city_country[c] == country)
        listed = ", ".join(members) if members else "no large cities"
        docs.append(Document(f"country:{country}", country,
                             f"{country} is a country. Its cities include {listed}."))
    for city in city_names:
        docs.append(Document(f"city:{city}", city,
                             f"{city} is a city in the country of {city_country[city]}. "
                             f"It has a population of {rng.randint(20, 900) * 1000}."))
    for person in person_names:
        docs.append(Document(f"person:{person}", person,
                             f"{person} is {_article(rng.choice(_PROFESSIONS))} who was born in the city "
                             f"of {born[person]}. {person} works for {employer[person]}."))
    for name, c in company.items():
        docs.append(Document(f"company:{name}", name,
                             f"{name} is {_article(c['field'])} company founded in {c['year']} by "
                             f"{c['founder']}. Its headquarters are in the city of {c['hq']}."))

    questions: list[Question] = []

    def add(question: str, answer: str, searches: list[str]) -> None:
        questions.append(Question(f"q{len(questions)}", question, answer, len(searches), searches))

    for name in company_names:        # the question kinds alternate within each company
        c = company[name]
        add(f"In which city was the founder of {name} born?", born[c["founder"]],
            [name, c["founder"]])
        add(f"In which country are the headquarters of {name}?", city_country[c["hq"]],
            [name, c["hq"]])
        add(f"In which country was the founder of {name} born?",
            city_country[born[c["founder"]]], [name, c["founder"], born[c["founder"]]])
    for person in person_names:
        boss = company[employer[person]]["founder"]
        add(f"Who founded the company that {person} works for?", boss,
            [person, employer[person]])
    order = list(range(len(questions)))
    random.Random(seed + 1).shuffle(order)
    questions = [questions[i] for i in order]
    return Corpus(seed, docs, questions)
