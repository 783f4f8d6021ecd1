"""BM25 search over a catalogue (bm25s), with the index cached on disk.

The original indexes, per product, the lower-cased title, description, first bullet
point and option text with Lucene (English analyzer: stop words removed, Porter-style
stemming) and returns the top 50 hits. Here bm25s scores the same text, tokenised with
its English stop words and the Snowball stemmer (PyStemmer) when installed. Hits with a
score of 0 are dropped, like Lucene's; equal scores keep catalogue order.

The index is built once per catalogue and saved under
``<cache_dir>/index-<catalogue key>``; later processes load it in a fraction of the
time. Within a process, environments with the same catalogue share one engine.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from agentgym.envs.webshop.catalog import Catalog, Product

SEARCH_RETURN_N = 50
INDEX_FORMAT = 1
_TOKEN = re.compile(r"(?u)\b\w\w+\b")   # bm25s's (and scikit-learn's) token pattern


def default_cache_dir() -> Path:
    """``$AGENTGYM_CACHE/webshop``, else ``~/.cache/agentgym/webshop``."""
    root = os.environ.get("AGENTGYM_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "agentgym"
    return base / "webshop"


def document_text(product: Product) -> str:
    option_text = ", and ".join(f"{name}: {', '.join(values)}"
                                for name, values in product.options.items())
    first_bullet = product.bullets[0] if product.bullets else ""
    return " ".join([product.title, product.description, first_bullet, option_text]).lower()


def _stemmer():
    try:
        import Stemmer
    except ImportError:
        return None
    return Stemmer.Stemmer("english")


class SearchEngine:
    """Top-``k`` products for a keyword query."""

    def __init__(self, catalog: Catalog, cache_dir: str | Path | None = None):
        import bm25s

        self._bm25s = bm25s
        self.catalog = catalog
        self.stemmer = _stemmer()
        self.loaded_from_cache = False
        stem_tag = "snowball" if self.stemmer is not None else "nostem"
        directory = None
        if cache_dir is not False:
            root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
            directory = root / f"index{INDEX_FORMAT}-{stem_tag}-{catalog.key}"
        if directory is not None and (directory / "params.index.json").is_file():
            self.retriever = bm25s.BM25.load(str(directory), show_progress=False)
            self.loaded_from_cache = True
        else:
            self.retriever = self._build()
            if directory is not None:
                self._save(directory)
        self._lock = threading.Lock()  # bm25s scoring reuses internal buffers
        from bm25s.stopwords import STOPWORDS_EN
        self._stopwords = frozenset(STOPWORDS_EN)

    def query_tokens(self, query: str) -> list[str]:
        """The query as bm25s tokenises documents (lower case, stop words out, stemmed),
        without bm25s's per-call set-up, which costs more than the scoring of a short query."""
        words = [w for w in _TOKEN.findall(query.lower()) if w not in self._stopwords]
        return self.stemmer.stemWords(words) if self.stemmer is not None else words

    def _tokenize(self, texts: list[str], ids: bool):
        return self._bm25s.tokenize(texts, stopwords="en", stemmer=self.stemmer,
                                    return_ids=ids, show_progress=False)

    def _build(self):
        tokens = self._tokenize([document_text(p) for p in self.catalog.products], ids=True)
        retriever = self._bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        return retriever

    def _save(self, directory: Path) -> None:
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=directory.parent))
        try:
            self.retriever.save(str(tmp), show_progress=False)
            try:
                tmp.rename(directory)   # atomic publish; a concurrent writer may win
            except OSError:
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def search(self, query: str, k: int = SEARCH_RETURN_N) -> list[Product]:
        tokens = self.query_tokens(query)
        if not tokens:
            return []
        with self._lock:
            scores = self.retriever.get_scores(tokens)
        if scores.size > k:
            # the k-th best score; everything at least as good is a candidate, so ties at
            # the cut are broken by catalogue order below, not by argpartition's whim
            cutoff = max(scores[np.argpartition(scores, scores.size - k)[scores.size - k]], 0.0)
            hits = np.flatnonzero(scores >= cutoff) if cutoff > 0 else np.flatnonzero(scores > 0)
        else:
            hits = np.flatnonzero(scores > 0)
        order = hits[np.argsort(-scores[hits], kind="stable")][:k]
        return [self.catalog.products[i] for i in order]


_engines: dict[tuple[str, str], SearchEngine] = {}
_engines_lock = threading.Lock()


def engine_for(catalog: Catalog, cache_dir: str | Path | None = None) -> SearchEngine:
    """The shared engine of ``catalog`` in this process (built or loaded on first use)."""
    key = (catalog.key, str(cache_dir))
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None or engine.catalog is not catalog:
            engine = _engines[key] = SearchEngine(catalog, cache_dir)
        return engine
