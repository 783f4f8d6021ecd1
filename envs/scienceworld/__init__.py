"""ScienceWorld on its real simulator: ``agentgym/ScienceWorld-v0``.

Importing this package starts no JVM and imports neither py4j nor scienceworld. Modules:

- ``tasks``: the 30 task types (from the package's task table) and suites of them;
- ``engine``: one JVM running the simulator jar over py4j, always stopped;
- ``actions``: the bounded list of admissible actions drawn from the engine's valid ones;
- ``env``: the Gymnasium environment;
- ``baselines``: gold-path, random and model-free baselines by task type.
"""
