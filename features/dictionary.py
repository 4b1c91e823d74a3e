"""`python -m features.dictionary [PATH]`: write the feature dictionary for the demo world.

The pipeline writes the dictionary of the user's own catalogue and data to
`<data root>/outputs/feature_dictionary.md` (the `feature_dictionary` asset); this module keeps the
checked-in `docs/feature_dictionary.md` in step with the code (a test compares them).
"""

from __future__ import annotations

import sys
from pathlib import Path

from features.catalogue import load_catalogue
from features.days import touch_days
from features.feature import FeatureDef
from features.registry import data_dictionary
from features.simulator import WorldConfig, simulate
from features.sources import feature_registry

DOCS_PATH = Path(__file__).resolve().parents[1] / "docs" / "feature_dictionary.md"


def demo_registry() -> list[FeatureDef]:
    """The registry the pipeline builds on a demo world with the packaged catalogue."""
    world = simulate(WorldConfig(customers=300, weeks=20, dirty_rows=False))
    support = world.support.drop("_bad", "_rank", "_opened_s")
    catalogue = load_catalogue()
    days = touch_days(world.clickstream, support, world.surveys, catalogue)
    return feature_registry(world.customers, days, support, world.surveys, catalogue)


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DOCS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data_dictionary(demo_registry()))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
