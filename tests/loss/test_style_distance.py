"""scripts/style_distance.py: a painting's style distance from photos, relative to a reference painting."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_style_distance_ranks_paintings_against_the_reference(shared: Path, vgg_weights: Path) -> None:
    styles = shared / "data" / "style"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "style_distance.py"), "--vgg-weights", str(vgg_weights),
         "--photos", str(shared / "data" / "content" / "eval"), "--reference", str(styles / "starry_night.jpg"),
         "--styles", str(styles / "starry_night.jpg"), str(styles / "mondrian_composition_1913.jpg"),
         "--count", "4"],  # the defaults: the zoo preset's 160-px photos, style at 256 px
        capture_output=True, text=True, timeout=300, check=True)
    ratios = {Path(name).stem: float(ratio)
              for name, ratio in re.findall(r"^\| (\S+) \| \S+ \| ([0-9.]+) \|$", result.stdout, re.M)}
    assert ratios["starry_night"] == 1.0  # the reference against itself
    # Mondrian's flat colour fields are far from any photo's statistics (3.2x Starry Night's at the zoo's sizes)
    assert ratios["mondrian_composition_1913"] > 2
