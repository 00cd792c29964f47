"""edgewatch: device health monitoring and predictive maintenance."""

__version__ = "0.1.0"
