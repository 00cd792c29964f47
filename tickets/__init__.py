"""edgewatch tickets."""
