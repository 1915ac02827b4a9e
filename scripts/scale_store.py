"""Build (or reuse from the cache) an anvil-anchored scale data set: see ``supply_chain/scale.py``.

    python scripts/scale_store.py --events 100000 [--verify K] [--cache DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from supply_chain.scale import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
