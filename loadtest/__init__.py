"""Locust load tests for SGLang servers (stock or with ``--kv-offload``).

Modules: ``records`` (the per-request record and its JSON-lines files), ``summary`` (records ->
bench_serving-style metrics, pure), ``client`` (streaming requests and their timing), ``prompts``
(text2json or synthetic workloads), ``shapes`` (constant, concurrency sweep, Poisson arrivals),
``report`` (summary JSON and table on disk), ``merge`` (``python -m loadtest.merge``) and
``locustfile`` (the Locust wiring). See ``loadtest/README.md``.
"""
