"""Stand-in servers: OpenAI-compatible endpoints that answer by rule, for tests, `make tiny` and benchmarks
where no real model or judge may run (no Hub, no GPU).

All share one base: ``chat_server.ChatServer`` (request checks, auth, `/v1/chat/completions` and
`/v1/models`, `--port_file`) on ``http_server`` (one reader thread, bounded bodies). Each stand-in adds only
its reply rule:

- ``synth_server``: the synthetic-data workflows' model (plurality answers, Q&A, rewrites, critiques);
- ``judge_server``: the rule-based judge of judge-guided DPO.

    python -m phi4_recipes.standins.synth_server --port 8321
    python -m phi4_recipes.standins.judge_server --port 8322
"""
