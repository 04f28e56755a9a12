"""The sweep summary: rows, advice, table, figure, scaling and the files (import the submodules)."""
