"""MiniWoB++ web tasks in headless Chromium: ``agentgym/MiniWoB-v0``.

Importing this package imports neither ``miniwob`` nor Selenium; the environment is
``agentgym.envs.miniwob.env``, the text action syntax ``.actions``, the observation
rendering ``.render``, the browser ``.browser`` and a scripted agent ``.solver``.
"""
