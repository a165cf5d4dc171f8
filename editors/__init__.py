"""Knowledge-editing methods (installed as ``editguard.editors``). Nothing here knows about
pytest, benchmarks or backends."""
