"""Tool use: ``agentgym/ToolUse-v0`` (``env``), its sandboxed Python interpreter
(``sandbox``), the generated search corpus (``corpus``, ``search``) and task sources
(``tasks``). Importing this package imports none of them."""
