"""edgewatch server."""
