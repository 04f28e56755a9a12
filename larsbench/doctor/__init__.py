"""`larsbench doctor`: a preflight of this node for a profile, as a table of verdicts."""
