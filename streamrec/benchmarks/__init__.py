"""Benchmarks (``streamrec bench NAME``) and the demo's machinery: measurements, not tests.

Each benchmark is a module here exposing a click command named ``command``; the ``bench``
group (streamrec/cli/bench.py) lists the module names in BENCHMARK_MODULES. Shared parts:

- ``stack``: a broker, isolated topics and a scratch database for one run, cleaned up after;
- ``consumer_thread``: the real consumer loop in a thread of this process;
- ``topic_tap``: reads the input and output topics back, as an independent observer;
- ``initial_model``: trains and registers a first model version;
- ``results``: JSON and Markdown files under bench/results/.
"""
