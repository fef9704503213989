"""The study's machinery: the stage declaration, the runner and its records, launchers, the cost plan, the device check, README blocks and benchmarks. The library (``common``) never imports it."""
