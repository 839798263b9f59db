"""The end-to-end jobs a user runs: the demo experiment and DOPE-style pseudo-labelling."""
