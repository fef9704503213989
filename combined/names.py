"""The pipelines of the combined study by name, as plain strings (no torch), in the order they
run: ``combined/01_pipelines.py``'s ``--pipelines`` chooses from them without importing a model,
and ``combined.pipelines.PIPELINES`` gives each its start and steps."""

PIPELINE_NAMES = ("kd_prune_int8", "structured_int8_qat", "kd_int4_qat")
