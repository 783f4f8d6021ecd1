"""The policy interface shared by every backend (HF transformers, vLLM, OpenAI-compatible HTTP).

A policy turns prompts into completions. Token-level backends (``trainable=True``)
return exactly the sampled token ids with their logprobs and entropies, and the trainer
trains on those ids: text is never re-tokenized between sampling and training.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from agentgym.errors import AgentGymError

FINISH_STOP = "stop"      # eos or a stop string was produced
FINISH_LENGTH = "length"  # max_new_tokens (or the context window) ran out


@dataclass
class SamplingParams:
    """How to sample one response per prompt.

    ``temperature <= 0`` means greedy decoding; logprobs and entropies are then those
    of the untempered model distribution (temperature 1).
    ``top_k = 0`` and ``top_p = 1.0`` switch those filters off.
    ``stop_strings``: generation of a sequence stops at the first token whose text
    completes one of them; that token is kept (in ``token_ids`` and ``text``, so the
    text may run a few characters past the stop string when the last token spans it).
    """

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    stop_strings: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if int(self.max_new_tokens) < 1:
            raise AgentGymError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not 0.0 < float(self.top_p) <= 1.0:
            raise AgentGymError(f"top_p must be in (0, 1], got {self.top_p}")
        if int(self.top_k) < 0:
            raise AgentGymError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if any(not isinstance(s, str) or not s for s in self.stop_strings):
            raise AgentGymError(f"stop_strings must be non-empty strings, got {self.stop_strings!r}")

    @property
    def greedy(self) -> bool:
        return float(self.temperature) <= 0.0


@dataclass
class Completion:
    """One sampled response.

    ``prompt_ids``: exactly what the model was conditioned on ([] for HTTP backends).
    ``token_ids``: exactly the sampled ids, including the eos / stop-string token once
    if one was produced; no padding ([] for HTTP backends unless the server reports them).
    ``logprobs``: log-probability of each sampled id under ``softmax(logits / T)`` —
    the tempered distribution *before* top-k/top-p truncation, i.e. what the trainer
    recomputes with a plain forward pass (T = 1 when decoding greedily).
    ``entropies``: entropy of that same distribution at each sampled position.
    ``text``: the decoded response with special tokens removed.
    ``finish_reason``: ``"stop"`` (eos or stop string) or ``"length"``.
    """

    prompt_ids: list[int]
    token_ids: list[int]
    logprobs: list[float]
    entropies: list[float]
    text: str
    finish_reason: str

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


class Policy(ABC):
    """A text policy. Subclasses set ``trainable`` and ``max_context``."""

    trainable: bool = False
    max_context: int | None = None
    name: str = ""

    def encode_chat(self, messages: list[dict]) -> list[int]:
        """Render a conversation with the chat template and ``add_generation_prompt``."""
        raise NotImplementedError(f"{type(self).__name__} does not expose token ids")

    @abstractmethod
    def generate(self, prompts: list[list[int]], sampling: SamplingParams) -> list[Completion]:
        """One completion per prompt (token ids), in order; ``[]`` for ``[]``."""

    def generate_chat(self, conversations: list[list[dict]], sampling: SamplingParams) -> list[Completion]:
        """One completion per conversation: chat template, then :meth:`generate`."""
        return self.generate([self.encode_chat(c) for c in conversations], sampling)

    def sleep(self) -> None:
        """Free generation-only memory while the trainer updates (vLLM on a GPU)."""

    def sync_weights(self, model, version: int) -> dict[str, float]:
        """Make generation use ``model``'s current weights. Backends that generate with
        the trained model itself (HF) have nothing to do; vLLM copies them over."""
        return {}

    def close(self) -> None:
        """Release resources (HTTP sessions, ...). Safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TokenizerPolicy(Policy):
    """A policy that holds a Hugging Face tokenizer (``self.tokenizer``) and works on its ids."""

    tokenizer = None

    def encode_chat(self, messages: list[dict]) -> list[int]:
        return chat_template_ids(self.tokenizer, messages)

    def decode(self, token_ids: list[int]) -> str:
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)


def chat_template_ids(tokenizer, messages: list[dict]) -> list[int]:
    """The ids of ``messages`` rendered with the chat template and ``add_generation_prompt``."""
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if ids and isinstance(ids[0], list):  # some tokenizers return a batch of one
        ids = ids[0]
    return [int(t) for t in ids]


def prompt_budgets(prompts: list[list[int]], sampling: SamplingParams,
                   max_context: int | None) -> tuple[list[list[int]], list[int]]:
    """The prompts as plain int lists and each one's new-token budget: ``max_new_tokens``,
    or less where the context window leaves less room; an error if it leaves none."""
    prompts = [[int(t) for t in p] for p in prompts]
    budgets = []
    for i, p in enumerate(prompts):
        if not p:
            raise AgentGymError(f"prompt {i} is empty; a prompt needs at least one token")
        room = sampling.max_new_tokens
        if max_context is not None:
            room = min(room, max_context - len(p))
            if room < 1:
                raise AgentGymError(
                    f"prompt {i} has {len(p)} tokens, which leaves no room in the model's context "
                    f"window of {max_context} tokens; shorten the prompt (e.g. a shorter history window)")
        budgets.append(room)
    return prompts, budgets
