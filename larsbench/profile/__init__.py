"""The profile: its schema, the reading of profile files, and `--set` overrides."""
