"""Writes a held-out labelled file for `conpet evaluate` on the demo: sentences composed by the demo's own
generator (resources/demo/make_demo.py: the same templates and name lists) with another seed, leaving out
every sentence whose text is in the demo project. With --new-names the slots are filled from the name lists
below (written for this file: no name of the demo), a harder test of the same templates.
Usage: python make_heldout.py OUT.jsonl [N] [SEED] [--new-names]"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[3] / "resources" / "demo"

NEW_NAMES = {
    "Person": ["Ruth Abernathy", "Kofi Asante", "Marta Kowalczyk", "Hiro Sato", "Anjali Rao", "Felix Brandt",
               "Lucia Ferreira", "Omar Farouk", "Greta Holm", "Tariq Aziz", "Nina Volkova", "Pablo Ortega"],
    "City": ["Bilbao", "Kumasi", "Sapporo", "Winnipeg", "Gdansk", "Malaga", "Tromso", "Recife", "Dresden",
             "Hue", "Tamale", "Quebec City"],
    "Company": ["Silverbirch Software", "Oakridge Dairy", "Polaris Drones", "Emberlight Solar", "Tidewater Credit",
                "Frostpeak Freight", "Cobalt Health", "Granite Works", "Willowby Fabrics", "Nimbus Circuits"],
    "Drug": ["naproxen", "azithromycin", "sitagliptin", "montelukast", "codeine", "zanamivir", "rosuvastatin",
             "losartan", "ranitidine", "propranolol"],
    "Disease": ["sinusitis", "eczema", "angina", "gout", "cystitis", "tonsillitis", "psoriasis", "anaemia",
                "glaucoma", "shingles"],
}
NEW_TREATS = [("naproxen", "gout"), ("azithromycin", "tonsillitis"), ("sitagliptin", "anaemia"),
              ("montelukast", "eczema"), ("codeine", "sinusitis"), ("zanamivir", "shingles"),
              ("rosuvastatin", "angina"), ("losartan", "glaucoma"), ("ranitidine", "cystitis"),
              ("propranolol", "psoriasis")]


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--new-names"]
    out, n, seed = Path(args[0]), int(args[1]) if len(args) > 1 else 200, int(args[2]) if len(args) > 2 else 2026
    spec = importlib.util.spec_from_file_location("make_demo", DEMO / "make_demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    if "--new-names" in sys.argv:
        demo.NAMES, demo.TREATS = NEW_NAMES, NEW_TREATS
    seen = {json.loads(line)["text"] for line in (DEMO / "demo.jsonl").open(encoding="utf-8")}
    rng, lines, k = random.Random(seed), [], 0
    while len(lines) < n:
        template, relations = demo.TEMPLATES[k % len(demo.TEMPLATES)]
        k += 1
        line = demo.compose(rng, template, relations)
        if line["text"] not in seen:
            seen.add(line["text"])
            lines.append(line)
    out.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    print(f"wrote {len(lines)} held-out sentences to {out} (seed {seed})")


if __name__ == "__main__":
    main()
