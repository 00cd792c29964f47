"""Fixtures of the reliability suite (faults, bad input, security, load).

Every test starts the real processes it needs on 127.0.0.1 and stops them; long versions run
with EDGEWATCH_SOAK=1 (`edgewatch bench reliability` sets it), short ones by default.
"""

from __future__ import annotations

import pytest

from tests.reliability.figures import Figures, figures_path


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    return Figures(figures_path(), request.node.nodeid)
