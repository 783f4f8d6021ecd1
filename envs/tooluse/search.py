"""BM25 search over a corpus's documents (the ``bm25s`` library)."""

from __future__ import annotations

import threading
from functools import lru_cache

import bm25s

from agentgym.envs.tooluse.corpus import Document, build_corpus


class SearchIndex:
    """Top-k BM25 passages for a query; deterministic (ties keep corpus order)."""

    def __init__(self, documents: list[Document]):
        self.documents = documents
        tokens = bm25s.tokenize([f"{d.title}. {d.text}" for d in documents], stopwords="en",
                                show_progress=False)
        self.retriever = bm25s.BM25()
        self.retriever.index(tokens, show_progress=False)
        self.vocab = set(tokens.vocab)
        self._lock = threading.Lock()   # retrieval is shared by environments in threads

    def search(self, query: str, k: int = 3) -> list[tuple[Document, float]]:
        words = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)[0]
        words = [w for w in words if w in self.vocab]
        if not words:
            return []
        k = min(k, len(self.documents))
        with self._lock:
            ids, scores = self.retriever.retrieve([words], k=k, show_progress=False, n_threads=1)
        hits = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if s > 0]
        hits.sort(key=lambda h: (-round(h[1], 6), h[0]))
        return [(self.documents[i], s) for i, s in hits]

    def render(self, query: str, k: int = 3) -> str:
        """The observation for a search: numbered passages, or a note that none matched."""
        hits = self.search(query, k)
        if not hits:
            return f"No passages match {query!r}."
        return "\n".join(f"[{n}] {doc.title}: {doc.text}" for n, (doc, _) in enumerate(hits, 1))


@lru_cache(maxsize=8)
def index_for(corpus_seed: int) -> SearchIndex:
    return SearchIndex(build_corpus(corpus_seed).documents)
