"""`python -m demo.dictionary [PATH]`: write the feature dictionary for the demo world.

The pipeline writes the dictionary of the user's own catalogue and data to
`<data root>/outputs/feature_dictionary.md` (the `feature_dictionary` asset); this module keeps the
checked-in `docs/feature_dictionary.md` in step with the code (a test compares them).
"""

from __future__ import annotations

import sys
from pathlib import Path

from demo.simulator import WorldConfig, simulate
from features.catalogue import load_catalogue
from features.dictionary import data_dictionary
from features.feature import FeatureDef
from features.feature_plan import feature_set
from features.touchpoint_days import fold_touchpoint_days

DOCS_PATH = Path(__file__).resolve().parents[1] / "docs" / "feature_dictionary.md"


def demo_registry() -> list[FeatureDef]:
    """The registry the pipeline builds on a demo world with the packaged catalogue."""
    world = simulate(WorldConfig(customers=300, weeks=20, dirty_rows=False))
    catalogue = load_catalogue()
    days = fold_touchpoint_days(world.clickstream, world.support, world.surveys, catalogue)
    return feature_set(world.customers, days, world.support, world.surveys, catalogue).registry(
        catalogue, WorldConfig.horizon_days
    )


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DOCS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data_dictionary(demo_registry()))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
