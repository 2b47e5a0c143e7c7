"""text2json: a context-intensive extraction benchmark in the shape of the published Text2JSON.

Subcommands of the ``text2json`` console script (``text2json.cli``): ``build`` (deterministic
synthetic samples fitted to a token-length distribution), ``score`` (the published IoU rules, or a
robust variant), ``eval`` (resumable runs against an OpenAI-compatible server), ``gate`` (regression
check against a baseline) and ``stats``. Modules: ``words`` (hand-made lists), ``domains`` (entities,
attributes, selection rules), ``prose`` and ``templates`` (text), ``tokenizer`` (token counting on
the chat-templated prompt), ``build`` and ``writer`` (samples and files), ``data`` (loaders),
``score``, ``results`` and ``runner`` (evaluation), ``gate``, ``stats``, ``provenance``.
This package does not depend on ``sglang_kv``.
"""
