"""Write resources/joint_templates.json: the three-click fit's hand and foot templates.

Each template is where the joints of the synthetic generator's mean right hand or foot lie
(:func:`scorer.imaging.synthetic.mean_anatomy_joints`): mm, x to the right (towards the thumb
or great toe of a right hand or foot as a film shows it), y down, rounded to 0.01 mm. The fit
mirrors them for the left side. Run ``python scripts/make_joint_templates.py`` after changing
the generator's anatomy; tests/core/test_joint_fit.py checks the file matches this output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def templates_json() -> str:
    """The file's text: the mean right hand's and right foot's joint positions in mm."""
    from scorer.imaging.synthetic import mean_anatomy_joints

    about = (
        "Joint positions (mm) of the synthetic generator's mean right hand and foot, as a "
        "film shows them (x to the right, y down); made by scripts/make_joint_templates.py."
    )
    lines = ["{", f' "about": {json.dumps(about)},']
    for kind in ("hand", "foot"):
        joints = sorted(mean_anatomy_joints(kind).items())
        lines.append(f' "{kind}": {{')
        for i, (joint, (x, y)) in enumerate(joints):
            comma = "," if i < len(joints) - 1 else ""
            lines.append(f'  "{joint}": [{round(x, 2)}, {round(y, 2)}]{comma}')
        lines.append(" }," if kind == "hand" else " }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> int:
    out = Path(__file__).resolve().parents[1] / "resources" / "joint_templates.json"
    out.write_text(templates_json(), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
