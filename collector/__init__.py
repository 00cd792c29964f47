"""edgewatch collector."""
