"""The plan: a profile expanded into resolved runs, with their data sizes and step counts."""
