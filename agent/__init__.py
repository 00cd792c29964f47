"""edgewatch agent."""
