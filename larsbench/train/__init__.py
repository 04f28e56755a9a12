"""The training side: what torchrun runs on every rank (imports torch; viewers never import it)."""
