"""The sweep layer: a profile's runs in turn, one torchrun group at a time (see its modules)."""
