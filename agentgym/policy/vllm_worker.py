"""Methods added to vLLM's worker (``LLM(worker_extension_cls=...)``) for weight sync.

vLLM runs the model in a separate worker process; ``llm.collective_rpc(name, args)``
calls these methods there. This module is imported by that process only, so it keeps
its imports inside the methods and depends on nothing else in agentgym.
"""

from __future__ import annotations


class WeightSyncExtension:
    """Mixed into vLLM's ``Worker``: ``self.model_runner`` is the worker's model runner."""

    def agentgym_reload_weights(self, path: str) -> int:
        """Load the checkpoint at ``path`` into the running model, in place.

        vLLM's layer-wise reload re-runs each layer's post-load processing. On the
        CPU backend that processing repacks linear weights into a kernel layout; a
        tied ``lm_head`` is not reloaded itself (the checkpoint has no ``lm_head``
        weight), so its packed copy of the embedding matrix would stay stale and is
        repacked here. Returns the number of parameters in the model.
        """
        from vllm.platforms import current_platform

        self.reload_weights(weights_path=path)
        model = self.model_runner.get_model()
        if current_platform.is_cpu():
            from vllm.model_executor.layers.utils import dispatch_cpu_unquantized_gemm

            for module in model.modules():
                weight = getattr(module, "weight", None)
                if hasattr(module, "cpu_linear") and weight is not None and weight.ndim == 2 \
                        and weight.numel() > 0 and not weight.is_meta:
                    dispatch_cpu_unquantized_gemm(module, remove_weight=False)
        return sum(p.numel() for p in model.parameters())
