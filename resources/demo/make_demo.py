"""Writes resources/demo/demo.jsonl: the demo project's sentences, composed from the hand-written
templates and name lists below (all written for this project; no copied data).

Run `python resources/demo/make_demo.py` to regenerate; the output is deterministic and committed.

Line format (the project JSONL): {"text", "entities": [{"start", "end", "type"}],
"relations": [{"head", "tail", "type"}]}; head/tail index the line's entities.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

OUT = Path(__file__).with_name("demo.jsonl")
SEED = 7
N_SENTENCES = 320

NAMES = {
    "Person": [
        "Maria Okafor", "Lena Fischer", "Tomas Varga", "Aiko Tanaka", "Rahul Mehta", "Sofia Lindqvist",
        "Daniel Reyes", "Hannah Brooks", "Kwame Mensah", "Ines Duarte", "Pavel Novak", "Chen Wei",
        "Amara Nwosu", "Lucas Moreau", "Yara Haddad", "Oskar Berg", "Priya Nair", "Mateo Silva",
        "Elif Demir", "Jonas Keller", "Nadia Petrova", "Samuel Owusu", "Clara Jensen", "Diego Romero",
    ],
    "City": [
        "Lisbon", "Nairobi", "Osaka", "Toronto", "Krakow", "Valencia", "Bergen", "Porto Alegre",
        "Leipzig", "Hanoi", "Accra", "Montreal", "Lyon", "Pune", "Tallinn", "Cordoba", "Adelaide",
        "Gothenburg",
    ],
    "Company": [
        "Northwind Analytics", "Bluefield Foods", "Harbor Robotics", "Copperleaf Energy", "Vantera Bank",
        "Greenline Logistics", "Solace Pharma", "Ironbridge Steel", "Lumen Textiles", "Quartzwave Systems",
        "Redpine Media", "Atlas Orchard", "Meridian Biotech", "Stonegate Insurance", "Kestrel Motors",
        "Brightwell Labs",
    ],
    "Drug": [
        "ibuprofen", "amoxicillin", "metformin", "insulin", "salbutamol", "paracetamol", "oseltamivir",
        "atorvastatin", "lisinopril", "doxycycline", "omeprazole", "levothyroxine", "sumatriptan",
        "prednisolone",
    ],
    "Disease": [
        "influenza", "asthma", "type 2 diabetes", "hypertension", "pneumonia", "migraine", "malaria",
        "tuberculosis", "hypothyroidism", "gastritis", "bronchitis", "arthritis", "Lyme disease",
        "high cholesterol",
    ],
}

# Sensible (drug, disease) pairs for sentences that state a treats relation.
TREATS = [
    ("ibuprofen", "arthritis"), ("ibuprofen", "migraine"), ("amoxicillin", "pneumonia"),
    ("amoxicillin", "bronchitis"), ("metformin", "type 2 diabetes"), ("insulin", "type 2 diabetes"),
    ("salbutamol", "asthma"), ("paracetamol", "influenza"), ("oseltamivir", "influenza"),
    ("atorvastatin", "high cholesterol"), ("lisinopril", "hypertension"), ("doxycycline", "Lyme disease"),
    ("doxycycline", "malaria"), ("omeprazole", "gastritis"), ("levothyroxine", "hypothyroidism"),
    ("sumatriptan", "migraine"), ("prednisolone", "asthma"), ("prednisolone", "arthritis"),
]

# A slot is {Type} or {Type#n} (two different names of one type); a template lists its relations
# as (head slot, tail slot, relation type).
TEMPLATES: list[tuple[str, list[tuple[str, str, str]]]] = [
    # Person / Company / City
    ("{Person} has worked for {Company} since last spring.", [("Person", "Company", "works_for")]),
    ("{Company} hired {Person} as its new head of research.", [("Person", "Company", "works_for")]),
    ("As an engineer at {Company}, {Person} spends most days testing prototypes.",
     [("Person", "Company", "works_for")]),
    ("{Person}, a spokesperson for {Company}, declined to comment.", [("Person", "Company", "works_for")]),
    ("{Person} joined {Company} after finishing a degree in chemistry.", [("Person", "Company", "works_for")]),
    ("{Company} opened a new office in {City} this year.", [("Company", "City", "located_in")]),
    ("The headquarters of {Company} are in {City}.", [("Company", "City", "located_in")]),
    ("{Company}, based in {City}, reported higher sales in the third quarter.",
     [("Company", "City", "located_in")]),
    ("Most of the staff of {Company} commute to its plant outside {City}.", [("Company", "City", "located_in")]),
    ("{Person} was born in {City} and moved abroad at nineteen.", [("Person", "City", "born_in")]),
    ("A native of {City}, {Person} still spends every summer there.", [("Person", "City", "born_in")]),
    ("{Person} grew up in {City}, where the family ran a bakery.", [("Person", "City", "born_in")]),
    ("{Person}, who was born in {City}, now leads the sales team of {Company}.",
     [("Person", "City", "born_in"), ("Person", "Company", "works_for")]),
    ("{Person} works for {Company} in {City}.",
     [("Person", "Company", "works_for"), ("Company", "City", "located_in")]),
    ("{Company} moved {Person} from its branch in {City} to the main office.",
     [("Person", "Company", "works_for"), ("Company", "City", "located_in")]),
    ("{Person#1} and {Person#2} founded {Company} in a garage.",
     [("Person#1", "Company", "works_for"), ("Person#2", "Company", "works_for")]),
    ("{Person#1} met {Person#2} at a conference in {City}.", []),
    ("Tickets for the festival in {City} sold out within an hour.", []),
    ("{City} and {City#2} are linked by a new high-speed rail line.", []),
    ("Shares of {Company} fell after the merger with {Company#2} was called off.", []),
    ("{Person} gave a talk about urban gardens in {City}.", []),
    # Drug / Disease
    ("{Drug} is commonly prescribed to treat {Disease}.", [("Drug", "Disease", "treats")]),
    ("Doctors often use {Drug} against {Disease}.", [("Drug", "Disease", "treats")]),
    ("Patients with {Disease} usually respond well to {Drug}.", [("Drug", "Disease", "treats")]),
    ("A daily dose of {Drug} keeps the symptoms of {Disease} under control.", [("Drug", "Disease", "treats")]),
    ("The trial showed that {Drug} shortens the course of {Disease}.", [("Drug", "Disease", "treats")]),
    ("For {Disease}, the first choice is still {Drug}.", [("Drug", "Disease", "treats")]),
    ("{Drug} should not be combined with {Drug#2} without medical advice.", []),
    ("Cases of {Disease} rose sharply in {City} last winter.", []),
    ("The pharmacy in {City} ran out of {Drug} during the holidays.", []),
    ("{Person} was treated for {Disease} at a clinic in {City}.", []),
    ("{Company} announced a cheaper version of {Drug}.", []),
    ("{Person} studies how {Disease} spreads among children.", []),
    ("{Company} began a study of {Drug} in patients with {Disease}.", [("Drug", "Disease", "treats")]),
    ("{Person}, a researcher at {Company}, showed that {Drug} eases {Disease}.",
     [("Person", "Company", "works_for"), ("Drug", "Disease", "treats")]),
    ("Early signs of {Disease} are easy to miss.", []),
    ("{Drug} tablets should be stored in a cool, dry place.", []),
]

SLOT = re.compile(r"\{([A-Za-z]+)(?:#(\d))?\}")


def compose(rng: random.Random, template: str, relations: list[tuple[str, str, str]]) -> dict:
    text, entities, slot_index = "", [], {}
    used: dict[str, set[str]] = {}
    fixed: dict[str, str] = {}
    if any(r == "treats" for _, _, r in relations):
        fixed["Drug"], fixed["Disease"] = rng.choice(TREATS)
    pos = 0
    for m in SLOT.finditer(template):
        text += template[pos : m.start()]
        etype, key = m.group(1), m.group(0)[1:-1]
        if key in fixed:
            name = fixed[key]
        else:
            name = rng.choice([n for n in NAMES[etype] if n not in used.get(etype, set())])
        used.setdefault(etype, set()).add(name)
        if not text and name[0].islower():  # a sentence starts with a capital letter
            name = name[0].upper() + name[1:]
        slot_index[key] = len(entities)
        entities.append({"start": len(text), "end": len(text) + len(name), "type": etype})
        text += name
        pos = m.end()
    text += template[pos:]
    rels = [{"head": slot_index[h], "tail": slot_index[t], "type": r} for h, t, r in relations]
    return {"text": text, "entities": entities, "relations": rels}


def main() -> None:
    rng = random.Random(SEED)
    lines, seen = [], set()
    while len(lines) < N_SENTENCES:
        template, relations = TEMPLATES[len(lines) % len(TEMPLATES)]
        line = compose(rng, template, relations)
        if line["text"] in seen:
            continue
        seen.add(line["text"])
        lines.append(line)
    rng.shuffle(lines)
    with OUT.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for line in lines:
        for e in line["entities"]:
            counts[e["type"]] = counts.get(e["type"], 0) + 1
        for r in line["relations"]:
            counts[r["type"]] = counts.get(r["type"], 0) + 1
    print(f"wrote {len(lines)} sentences to {OUT}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
