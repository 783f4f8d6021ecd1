"""WebShop rebuilt: a generated (or original) catalogue, BM25 search, the original text
pages, actions and reward. ``env.WebShopEnv`` is ``agentgym/WebShop-v0``; ``server``
serves the same shop as web pages.

Importing this package imports nothing heavy; bm25s and rapidfuzz load with the env.
"""

CATEGORIES = ("beauty", "food", "fashion", "furniture", "electronics")

__all__ = ["CATEGORIES"]
