"""Data layer: dataset readers, validation, the union mixture, top-down transforms and the SimCC codec."""
