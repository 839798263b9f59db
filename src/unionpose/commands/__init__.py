"""One module per `unionpose` verb; see `unionpose.cli`."""
