"""edgewatch: device health monitoring and predictive maintenance.

This package is the top floor: the `edgewatch` command line, the demo, the simulator and the
benchmarks. What every component shares lives below, in `common/`."""

from common import __version__

__all__ = ["__version__"]
